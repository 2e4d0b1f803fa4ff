//! Which processes take part in a shared object (a channel's producers or
//! consumers, a pipe end's holders, a barrier's parties), so that a waiter
//! can learn from the OS, through their liveness tokens, that they died.
//! The one registry of the crate.
//!
//! A table of `N` entries ([`QUEUE_ENTRIES`] for a queue's sides,
//! [`ENTRIES`] for a pipe end's holders, [`BARRIER_ENTRIES`] for barriers), each a process's owner id (thread slot bits cleared), pid
//! and nonce. A process registers on its first use of the role (the first
//! `put`, the first `get`, a barrier's `wait`, ...). A channel's entry
//! whose process died is reused by the next registration (after `reclaim`
//! saw it); a barrier keeps it, since that death broke the barrier, until
//! a reset forgets the dead. A `JoinableQueue` consumer entry also counts
//! the items its process took and has not marked done, so the items of a
//! dead consumer are counted as abandoned exactly once (the count is taken
//! with one `swap`).
//!
//! A registration takes a free entry if there is one (no system call) and
//! only then asks the OS about the taken ones, to reuse a dead process's.
//! If every entry is taken by a live process, a new process is simply not
//! registered: it still works, and the table notes the overflow, so from
//! then on the role never reads as "all dead" (an unregistered process may
//! be alive), and waiters on the other side cannot learn of its death.
//!
//! | `id` | meaning | made by |
//! |---|---|---|
//! | `0` | free | creation, `unregister` |
//! | `me \| CLAIMING` | being claimed by `me`; `nonce` may still be the previous holder's | `register` (CAS) |
//! | `me` | held by `me`, whose `nonce` is written | `register` (Release store) |
//!
//! An entry is read as dead only if the OS confirms its process dead. While
//! it is `CLAIMING`, the recorded nonce is ignored (it may belong to the
//! previous, dead holder of a reused tag) and the token is asked by tag
//! alone, so a registration in progress never reads as a death, and a
//! process killed mid-registration still reads as dead.

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::owner;

/// Entries of a table by default (a pipe end's holders).
pub(crate) const ENTRIES: usize = 32;
/// Entries of a queue's producer and consumer tables: one side of this
/// many processes is watched in full.
#[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the queues
pub(crate) const QUEUE_ENTRIES: usize = 256;
/// Entries of a barrier's table (the processes whose deaths it notices).
pub(crate) const BARRIER_ENTRIES: usize = 64;

/// One registered process.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Entry {
    id: AtomicU32,
    /// The process id, for messages ("broken by pid 123"); liveness is
    /// judged by the token, never by the pid.
    pid: AtomicU32,
    nonce: AtomicU64,
    /// Items taken and not yet marked done (JoinableQueue consumers); in
    /// a typed channel's registries, the handles the process holds (a
    /// stamp of the process in the high half, the count in the low half:
    /// see `channel/typed.rs`).
    pub(crate) taken: AtomicU64,
}

impl Entry {
    /// Whether the process that wrote `id` (loaded from this entry) is
    /// confirmed dead (a system call).
    fn dead(&self, id: u32) -> bool {
        if id & CLAIMING != 0 {
            // The nonce may still be the previous holder's: ask by tag only.
            owner::owner_dead(id & !CLAIMING, 0)
        } else {
            owner::owner_dead(id, self.nonce.load(Ordering::Relaxed))
        }
    }
}

/// A table of the processes playing one role.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawRegistry<const N: usize = ENTRIES> {
    /// Non-zero once any process registered.
    ever: AtomicU32,
    /// Non-zero once a registration found every entry taken.
    overflow: AtomicU32,
    entries: [Entry; N],
}

impl<const N: usize> Default for RawRegistry<N> {
    fn default() -> Self {
        RawRegistry {
            ever: AtomicU32::new(0),
            overflow: AtomicU32::new(0),
            entries: std::array::from_fn(|_| Entry::default()),
        }
    }
}

/// What the table says about the role's processes.
#[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peers {
    /// Nobody ever registered.
    Never,
    /// At least one registered process is alive (or could not be probed).
    Alive,
    /// Processes registered, and the OS confirmed each of them dead.
    AllDead,
}

/// Set in an entry's id while its process writes its nonce (the thread
/// slot bits of a registered id are clear, so this bit is free).
const CLAIMING: u32 = 1;

/// Field offsets of a [`RawRegistry`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::{Entry, RawRegistry};
    /// The first entry.
    pub(crate) const ENTRIES: usize = core::mem::offset_of!(RawRegistry, entries);
    const _: () = assert!(core::mem::offset_of!(RawRegistry<{ super::BARRIER_ENTRIES }>, entries) == ENTRIES);
    const _: () = assert!(core::mem::offset_of!(RawRegistry<{ super::QUEUE_ENTRIES }>, entries) == ENTRIES);
    /// Bytes per entry.
    pub(crate) const ENTRY_SIZE: usize = core::mem::size_of::<Entry>();
    /// An entry's id word (0: free) within the entry.
    pub(crate) const ENTRY_ID: usize = core::mem::offset_of!(Entry, id);
    /// An entry's process nonce within the entry.
    pub(crate) const ENTRY_NONCE: usize = core::mem::offset_of!(Entry, nonce);
    /// The claiming bit of an id.
    pub(crate) const CLAIMING: u32 = super::CLAIMING;
}

/// The calling process's id (thread slot bits cleared) and nonce.
pub(crate) fn process_id() -> std::io::Result<(u32, u64)> {
    let (me, nonce) = owner::me()?;
    Ok((crate::owner::id::process_of(me), nonce))
}

/// What a registration does with the entry of a process that died.
#[derive(Clone, Copy)]
pub(crate) enum Dead<'a> {
    /// Takes it over, after `reclaim` saw it (to account what it held).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
    Reuse(&'a dyn Fn(&Entry)),
    /// Leaves it: the death must stay visible (a barrier's).
    Keep,
}

impl<const N: usize> RawRegistry<N> {
    /// The index of the calling process's entry, registering it if needed;
    /// `None` if the table is full (of live processes, or of any with
    /// [`Dead::Keep`]).
    pub(crate) fn register(&self, dead: Dead<'_>) -> std::io::Result<Option<usize>> {
        let (me, nonce) = process_id()?;
        if let Some(i) = self.find(me, nonce) {
            return Ok(Some(i));
        }
        self.ever.store(1, Ordering::Relaxed);
        // First a free entry (no system call), then a dead process's.
        for reuse in [false, true] {
            for (i, e) in self.entries.iter().enumerate() {
                let cur = e.id.load(Ordering::Acquire);
                let free = cur == 0;
                if free == reuse || (reuse && (matches!(dead, Dead::Keep) || !e.dead(cur))) {
                    continue;
                }
                // AcqRel: the entry's fields written by its previous holder
                // are visible to us. The CLAIMING bit keeps readers from
                // judging us by the previous holder's nonce until ours is
                // written.
                if e.id.compare_exchange(cur, me | CLAIMING, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    if let (true, Dead::Reuse(reclaim)) = (!free, dead) {
                        reclaim(e);
                    }
                    e.pid.store(crate::sys::process::pid(), Ordering::Relaxed);
                    e.nonce.store(nonce, Ordering::Relaxed);
                    // Release: pairs with the Acquire loads of `id` in
                    // `peers` and `register`: whoever sees `me` sees our
                    // nonce.
                    e.id.store(me, Ordering::Release);
                    return Ok(Some(i));
                }
            }
        }
        self.overflow.store(1, Ordering::Relaxed);
        Ok(None)
    }

    /// The entry of process `me` with `nonce`, if registered (the nonce
    /// tells us from a dead process that had our tag).
    fn find(&self, me: u32, nonce: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.id.load(Ordering::Acquire) == me && e.nonce.load(Ordering::Relaxed) == nonce)
    }

    /// The entry at `i` (an index from `register`).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
    pub(crate) fn entry(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Whether the entry at `i` still belongs to the calling process (it
    /// does unless this process is a fork child of the registrant).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
    pub(crate) fn is_mine(&self, i: usize) -> bool {
        match (process_id(), self.entries.get(i)) {
            (Ok((me, nonce)), Some(e)) => {
                e.id.load(Ordering::Relaxed) == me && e.nonce.load(Ordering::Relaxed) == nonce
            }
            _ => false,
        }
    }

    /// The pid of a registered process the OS confirms dead, if any (a
    /// system call per registered process).
    pub(crate) fn first_dead(&self) -> Option<u32> {
        self.entries.iter().find_map(|e| {
            let id = e.id.load(Ordering::Acquire);
            (id != 0 && e.dead(id)).then(|| e.pid.load(Ordering::Relaxed))
        })
    }

    /// Frees the entries of processes the OS confirms dead (a barrier's
    /// reset: their deaths are forgotten).
    pub(crate) fn forget_dead(&self) {
        for e in &self.entries {
            let id = e.id.load(Ordering::Acquire);
            // The CAS from the exact id seen: a live process that took the
            // entry since is left alone.
            if id != 0 && e.dead(id) {
                let _ = e.id.compare_exchange(id, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    /// How many entries are taken (for inspection and tests).
    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        self.entries.iter().filter(|e| e.id.load(Ordering::Relaxed) != 0).count()
    }

    /// Asks the OS about the registered processes until one is alive (a
    /// system call each: call this at liveness-poll intervals, not per
    /// operation). Dead entries met on the way are passed to `reclaim`
    /// (and stay registered, so the role still reads as "all dead").
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
    pub(crate) fn peers(&self, reclaim: impl Fn(&Entry)) -> Peers {
        if self.ever.load(Ordering::Relaxed) == 0 {
            return Peers::Never;
        }
        for e in &self.entries {
            let id = e.id.load(Ordering::Acquire);
            if id == 0 {
                continue;
            }
            if !e.dead(id) {
                return Peers::Alive;
            }
            reclaim(e);
        }
        // Relaxed: set before the overflowing process's first use, which
        // the caller learns of only through the shared object itself.
        if self.overflow.load(Ordering::Relaxed) != 0 { Peers::Alive } else { Peers::AllDead }
    }

    /// Whether every registered process that holds something is confirmed
    /// dead by the OS (a system call per such process, stopping at the
    /// first live one; entries that hold nothing are skipped without one).
    /// `held(e)` reads what an entry holds (0: nothing), *before* its
    /// owner is read and asked about, and `reclaim(e, seen)` takes what a
    /// dead holder held only if the entry still holds `seen` (so an entry
    /// reused by a new process since is left alone); a `false` from it
    /// ends the question with "not all dead" (the next one asks again).
    /// A process without an entry (the table was full) holds nothing
    /// counted here.
    #[cfg(feature = "serde")]
    pub(crate) fn holders_dead(&self, held: impl Fn(&Entry) -> u64, reclaim: impl Fn(&Entry, u64) -> bool) -> bool {
        for e in &self.entries {
            let seen = held(e);
            if seen == 0 {
                continue;
            }
            let id = e.id.load(Ordering::Acquire);
            if id != 0 && (!e.dead(id) || !reclaim(e, seen)) {
                return false;
            }
        }
        true
    }

    /// Asks the OS about every registered process (a system call each) and
    /// passes the dead ones to `reclaim` (a join counts what they held).
    #[cfg(feature = "serde")]
    pub(crate) fn reclaim_dead(&self, reclaim: impl Fn(&Entry)) {
        for e in &self.entries {
            let id = e.id.load(Ordering::Acquire);
            if id != 0 && e.dead(id) {
                reclaim(e);
            }
        }
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::owner::id;

    /// An entry for a process with a tag that has no token file (dead, if
    /// the OS confirms it) and pid 4242.
    fn make_dead(e: &Entry) -> bool {
        let dead = id::compose(0x1f_fff0, 0);
        e.id.store(dead, Ordering::Relaxed);
        e.pid.store(4242, Ordering::Relaxed);
        e.nonce.store(0x1f_fff0, Ordering::Relaxed);
        e.dead(dead)
    }

    #[test]
    fn a_process_registers_once() {
        let reg = RawRegistry::<4>::default();
        assert_eq!(reg.peers(|_| {}), Peers::Never);
        let i = reg.register(Dead::Keep).expect("token").expect("room");
        assert_eq!(reg.register(Dead::Reuse(&|_| {})).expect("token"), Some(i), "found again");
        assert!(reg.is_mine(i));
        assert_eq!(reg.taken(), 1);
        assert_eq!(reg.peers(|_| {}), Peers::Alive);
        assert_eq!(reg.first_dead(), None);
    }

    #[test]
    fn dead_entries_are_kept_or_reused_as_asked() {
        let reg = RawRegistry::<1>::default();
        reg.ever.store(1, Ordering::Relaxed);
        if !make_dead(&reg.entries[0]) {
            return; // the made-up tag is taken by a live process here: nothing to check
        }
        assert_eq!(reg.first_dead(), Some(4242));
        assert_eq!(reg.peers(|_| {}), Peers::AllDead);
        assert_eq!(reg.register(Dead::Keep).expect("token"), None, "a kept death fills the table");
        let reclaimed = Cell::new(0);
        let got = reg.register(Dead::Reuse(&|_| reclaimed.set(reclaimed.get() + 1))).expect("token");
        assert_eq!((got, reclaimed.get()), (Some(0), 1), "reused once, after reclaim saw it");
        assert_eq!(reg.first_dead(), None);
    }

    #[test]
    fn forgetting_frees_only_dead_entries() {
        let reg = RawRegistry::<2>::default();
        let mine = reg.register(Dead::Keep).expect("token").expect("room");
        if !make_dead(&reg.entries[1 - mine]) {
            return;
        }
        reg.forget_dead();
        assert_eq!(reg.taken(), 1);
        assert!(reg.is_mine(mine));
    }
}

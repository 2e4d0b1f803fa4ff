//! Which processes play a role (producer, consumer, pipe end) on a shared
//! channel, so a waiter can learn that every process on the other side is
//! gone, as confirmed by the OS through their liveness tokens.
//!
//! A table of [`ENTRIES`] entries, each a process's owner id (thread slot
//! bits cleared) and nonce. A process registers on its first use of the role
//! (the first `put`, the first `get`, ...). An entry whose process died is
//! reused by the next registration; a `JoinableQueue` consumer entry also
//! counts the items its process took and has not marked done, so the items
//! of a dead consumer are counted as abandoned exactly once (the count is
//! taken with one `swap`).
//!
//! If every entry is taken by a live process, a new process is simply not
//! registered: it still works, but waiters on the other side cannot learn
//! of its death.
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

/// Entries per table.
pub(crate) const ENTRIES: usize = 32;

/// One registered process.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Entry {
    id: AtomicU32,
    _pad: AtomicU32,
    nonce: AtomicU64,
    /// Items taken and not yet marked done (JoinableQueue consumers).
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
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct RawRegistry {
    /// Non-zero once any process registered.
    ever: AtomicU32,
    _pad: AtomicU32,
    entries: [Entry; ENTRIES],
}

/// What the table says about the role's processes.
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
    Ok((me & !((1 << crate::owner::token::SLOT_BITS) - 1), nonce))
}

impl RawRegistry {
    /// The index of the calling process's entry, registering it if needed;
    /// `None` if the table is full of live processes.
    ///
    /// `reclaim` is called with each dead process's entry before it is
    /// reused (to account what it held).
    pub(crate) fn register(&self, reclaim: impl Fn(&Entry)) -> std::io::Result<Option<usize>> {
        let (me, nonce) = process_id()?;
        if let Some(i) = self.find(me) {
            return Ok(Some(i));
        }
        self.ever.store(1, Ordering::Relaxed);
        for (i, e) in self.entries.iter().enumerate() {
            let cur = e.id.load(Ordering::Acquire);
            if cur != 0 && !e.dead(cur) {
                continue;
            }
            // AcqRel: the entry's fields written by its previous holder are
            // visible to us. The CLAIMING bit keeps readers from judging us
            // by the previous holder's nonce until ours is written.
            if e.id.compare_exchange(cur, me | CLAIMING, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                if cur != 0 {
                    reclaim(e);
                }
                e.nonce.store(nonce, Ordering::Relaxed);
                // Release: pairs with the Acquire loads of `id` in `peers`
                // and `register`: whoever sees `me` sees our nonce.
                e.id.store(me, Ordering::Release);
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// The entry of process `me`, if registered.
    fn find(&self, me: u32) -> Option<usize> {
        self.entries.iter().position(|e| e.id.load(Ordering::Relaxed) == me)
    }

    /// The entry at `i` (an index from `register`).
    pub(crate) fn entry(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Whether the entry at `i` still belongs to the calling process (it
    /// does unless this process is a fork child of the registrant).
    pub(crate) fn is_mine(&self, i: usize) -> bool {
        match (process_id(), self.entries.get(i)) {
            (Ok((me, _)), Some(e)) => e.id.load(Ordering::Relaxed) == me,
            _ => false,
        }
    }

    /// Asks the OS about every registered process (a system call each:
    /// call this at liveness-poll intervals, not per operation). Dead
    /// entries are passed to `reclaim` once (and stay registered, so the
    /// role still reads as "all dead").
    pub(crate) fn peers(&self, reclaim: impl Fn(&Entry)) -> Peers {
        if self.ever.load(Ordering::Relaxed) == 0 {
            return Peers::Never;
        }
        let mut alive = false;
        for e in &self.entries {
            let id = e.id.load(Ordering::Acquire);
            if id == 0 {
                continue;
            }
            if e.dead(id) {
                reclaim(e);
            } else {
                alive = true;
            }
        }
        if alive { Peers::Alive } else { Peers::AllDead }
    }
}

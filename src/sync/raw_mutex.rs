//! `RawMutex`: a robust, process-shared futex mutex (the word and its
//! state table). The guards and lock errors built on it are in `guard.rs`,
//! the `Mutex<T>` data cell in `mutex.rs`.
//!
//! # The futex word
//!
//! | value | meaning | made by |
//! |---|---|---|
//! | `0` | unlocked | `unlock` (swap, Release) |
//! | `id` | locked by owner `id`, nobody sleeps | `lock` fast path (CAS 0 -> id, Acquire) |
//! | `id \| WAITERS` | locked, someone may sleep on the word | a waiter (CAS), or a taker from the slow path |
//!
//! `id` is the owner's `(process tag << 10) | thread slot` from the
//! liveness tokens (`owner/token.rs`), never 0. Beside the word:
//!
//! - `owner_nonce`: the owner's 64-bit process nonce, written by the owner
//!   right after it acquires (so a waiter can tell a reused tag from the
//!   real owner), and 0 while it is not known; never an earlier owner's
//!   (the rules are in `sync/owner_word.rs`, shared with the ring roles:
//!   the owner clears it before it unlocks, a taker clears a dead owner's
//!   before its CAS);
//! - `state`: CONSISTENT, INCONSISTENT (an owner died; the current owner
//!   holds a recovery guard) or NOT_RECOVERABLE (a recovery guard was
//!   dropped unmarked). Written only by the owner, before it releases.
//!
//! # When the holder dies
//!
//! Waiters sleep with a timeout (2 ms doubling to 25 ms). On each timeout a
//! waiter asks the kernel, through the owner's token, whether the owner is
//! dead (process killed, exec'd, or thread exited with a leaked guard). If
//! so it takes the lock over with a CAS from the exact word it saw, so of
//! several waiters exactly one wins; it marks the state INCONSISTENT and
//! returns `OwnerDied` with a guard. Nobody ever waits on a dead owner for
//! longer than one liveness interval.
//!
//! | event | word | state |
//! |---|---|---|
//! | lock (free) | 0 -> id | unchanged |
//! | lock (held, live owner) | id -> id\|W, sleep | unchanged |
//! | owner dies | unchanged (dead id) | unchanged |
//! | waiter sees dead owner | dead\|W -> me\|W | -> INCONSISTENT |
//! | recovery guard `mark_consistent` | unchanged | -> CONSISTENT |
//! | recovery guard dropped unmarked | -> 0, wake all | -> NOT_RECOVERABLE |
//! | recovering owner dies too | unchanged | stays INCONSISTENT: next taker gets `OwnerDied` again |
//! | unlock | -> 0 (CAS from the caller's id), wake one if W was set | unchanged |
//! | unlock by a thread that is not the owner | unchanged | unchanged |
#![allow(unsafe_code)]

use std::time::Instant;

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::{futex, owner};
use crate::shm::layout::ShmSafe;
use crate::sync::owner_word::OwnerWord;
use crate::sys::failpoint;

/// Set in the word when a waiter may sleep on it.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The owner-id bits of the word.
const OWNER: u32 = !WAITERS;

const CONSISTENT: u32 = 0;
const INCONSISTENT: u32 = 1;
const NOT_RECOVERABLE: u32 = 2;

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The data is as the previous owner left it on unlock.
    Clean,
    /// The previous owner died holding the lock; the data may be half-written.
    OwnerDied,
}

/// Why a lock was not acquired.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A recovery guard was dropped without `mark_consistent`.
    NotRecoverable,
    /// `try_lock` found it held.
    WouldBlock,
    /// The deadline passed.
    Timeout,
    /// This thread holds it already.
    Deadlock,
    /// No liveness token could be made.
    Os(std::io::Error),
}

/// What a waiter's look at the word found ([`RawMutex::look`]).
enum Look {
    /// The call ends: the lock was taken, or cannot be.
    Done(Result<Acquired, Fail>),
    /// Held by another owner, the waiters bit set: sleep while the word
    /// holds this value.
    Sleep(u32),
}

/// The robust futex mutex (see the module docs for the state table).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawMutex {
    word: AtomicU32,
    state: AtomicU32,
    owner_nonce: AtomicU64,
}

// SAFETY: repr(C) over three atomics: no pointers, every bit pattern is a
// valid value (unknown states are treated as NOT_RECOVERABLE, unknown owner
// ids as some other owner), all interior-mutable.
unsafe impl ShmSafe for RawMutex {
    const TAG: &'static str = "shmproc::RawMutex";
}

/// Field offsets and state names of a [`RawMutex`], for read-only
/// inspection (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::{CONSISTENT, INCONSISTENT, NOT_RECOVERABLE, RawMutex};
    /// The futex word: 0, or the owner id, with [`super::WAITERS`].
    pub(crate) const WORD: usize = core::mem::offset_of!(RawMutex, word);
    /// CONSISTENT, INCONSISTENT or NOT_RECOVERABLE.
    pub(crate) const STATE: usize = core::mem::offset_of!(RawMutex, state);
    /// The owner's process nonce.
    pub(crate) const OWNER_NONCE: usize = core::mem::offset_of!(RawMutex, owner_nonce);
    /// Owner-id bits of the word.
    pub(crate) const OWNER_MASK: u32 = super::OWNER;
    /// Offset of the protected value in a `Mutex<T>`'s state, for a `T`
    /// aligned to at most 8 (the value follows the lock).
    pub(crate) const MUTEX_DATA: usize = core::mem::size_of::<RawMutex>();

    /// The name of a `state` value.
    pub(crate) fn state_name(state: u32) -> &'static str {
        match state {
            CONSISTENT => "consistent",
            INCONSISTENT => "inconsistent (an owner died; being recovered)",
            NOT_RECOVERABLE => "not recoverable",
            _ => "unknown (garbage)",
        }
    }
}

impl RawMutex {
    /// An unlocked, consistent mutex (for tests and loom models).
    #[cfg(any(test, shmproc_loom))]
    pub(crate) fn new() -> RawMutex {
        RawMutex { word: AtomicU32::new(0), state: AtomicU32::new(CONSISTENT), owner_nonce: AtomicU64::new(0) }
    }

    /// Takes the lock, waiting until `deadline` (forever if `None`).
    #[inline(always)]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Result<Acquired, Fail> {
        let (me, nonce) = owner::me().map_err(Fail::Os)?;
        if let Some(r) = self.fast(me, nonce) {
            return r;
        }
        self.lock_slow(me, nonce, deadline)
    }

    /// The fast path of a lock call: one CAS on a free word (`None`: held).
    /// The state is read after the CAS, not before: a taker of a free
    /// NOT_RECOVERABLE lock finds it in [`acquired`](Self::acquired) and
    /// lets go again; a caller that finds the lock held learns it here.
    #[inline(always)]
    fn fast(&self, me: u32, nonce: u64) -> Option<Result<Acquired, Fail>> {
        failpoint::hit("mutex.lock.before_cas");
        // Acquire: pairs with the Release swap in `unlock`.
        if self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return Some(self.acquired(nonce));
        }
        if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
            return Some(Err(Fail::NotRecoverable));
        }
        None
    }

    /// Takes the lock if it is free (or its owner is dead).
    pub(crate) fn try_lock(&self) -> Result<Acquired, Fail> {
        let (me, nonce) = owner::me().map_err(Fail::Os)?;
        if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
            return Err(Fail::NotRecoverable);
        }
        // Acquire: pairs with the Release swap in `unlock`.
        if self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return self.acquired(nonce);
        }
        let w = self.word.load(Ordering::Relaxed);
        if w != 0 && self.is_mine(w, me, nonce) {
            return Err(Fail::Deadlock);
        }
        if w != 0
            && let Some(dead_nonce) = self.owner().dead_owner(w)
        {
            return self.take_over(w, dead_nonce, me, nonce).ok_or(Fail::WouldBlock)?;
        }
        Err(Fail::WouldBlock)
    }

    #[inline(always)]
    fn acquired(&self, nonce: u64) -> Result<Acquired, Fail> {
        failpoint::hit("mutex.lock.after_cas");
        self.owner().record(nonce);
        owner::note_acquired();
        // Relaxed: `state` is written by owners before their Release unlock,
        // which our Acquire CAS synchronises with.
        match self.state.load(Ordering::Relaxed) {
            CONSISTENT => Ok(Acquired::Clean),
            INCONSISTENT => Ok(Acquired::OwnerDied),
            _ => self.unrecoverable(),
        }
    }

    /// A taker found the state NOT_RECOVERABLE: it lets go (waking all)
    /// and reports it.
    #[cold]
    #[inline(never)]
    fn unrecoverable(&self) -> Result<Acquired, Fail> {
        self.release_all(NOT_RECOVERABLE);
        Err(Fail::NotRecoverable)
    }

    /// The word and the owner's nonce, with the rules they share with the
    /// ring roles.
    #[inline]
    fn owner(&self) -> OwnerWord<'_> {
        OwnerWord { word: &self.word, nonce: &self.owner_nonce, id_mask: OWNER, probe_mask: OWNER }
    }

    /// Replaces the dead owner seen in `seen` (recorded with `dead_nonce`)
    /// by `me`; `None` if the word changed meanwhile (another waiter won,
    /// or the owner was not dead).
    fn take_over(&self, seen: u32, dead_nonce: u64, me: u32, nonce: u64) -> Option<Result<Acquired, Fail>> {
        // The dead owner's writes (the data) become visible as far as they
        // reached memory; exactly one taker's replace succeeds, and our
        // nonce is recorded before anything below can release again.
        if !self.owner().replace(seen, dead_nonce, me | WAITERS, nonce) {
            return None;
        }
        failpoint::hit("mutex.takeover.after_cas");
        // Counted before anything can release it again (release_all
        // uncounts), so this thread's held-lock count stays exact.
        owner::note_acquired();
        if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
            self.release_all(NOT_RECOVERABLE);
            return Some(Err(Fail::NotRecoverable));
        }
        self.state.store(INCONSISTENT, Ordering::Relaxed);
        Some(Ok(Acquired::OwnerDied))
    }

    #[cold]
    fn lock_slow(&self, me: u32, nonce: u64, deadline: Option<Instant>) -> Result<Acquired, Fail> {
        // A short spin: a holder on another CPU usually lets go within a
        // cache-line hand-off, far cheaper than a futex sleep.
        let mut got = false;
        crate::loom::spin_until(|| {
            got = self.word.load(Ordering::Relaxed) == 0
                && self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok();
            got
        });
        if got {
            return self.acquired(nonce);
        }
        let mut poll = owner::LivenessPoll::new();
        loop {
            let seen = match self.look(me, nonce) {
                Look::Done(r) => return r,
                Look::Sleep(seen) => seen,
            };
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Fail::Timeout);
            }
            let wake_at = poll.wake_at(now, deadline);
            let w = futex::wait(&self.word, seen, wake_at);
            if let Some(r) = self.after_sleep(w, seen, me, nonce, &mut poll) {
                return r;
            }
        }
    }

    /// One look of a waiter on the slow path: takes the lock if it is
    /// free (keeping the waiters bit), or fails, or sets the waiters bit
    /// and says which word value to sleep on.
    fn look(&self, me: u32, nonce: u64) -> Look {
        loop {
            if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
                return Look::Done(Err(Fail::NotRecoverable));
            }
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                // Keep WAITERS set: others may be asleep, and our unlock
                // must wake them.
                // Acquire: pairs with the Release swap in `unlock`.
                if self.word.compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return Look::Done(self.acquired(nonce));
                }
                continue;
            }
            if self.is_mine(w, me, nonce) {
                return Look::Done(Err(Fail::Deadlock));
            }
            if w & WAITERS == 0
                && self.word.compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            failpoint::hit("mutex.lock.after_waiters_bit");
            return Look::Sleep(w | WAITERS);
        }
    }

    /// After a sleep on word value `seen` that ended `w`: at a liveness
    /// wake-up, takes the lock over if its owner is dead (`Some` outcome);
    /// otherwise `None` (look again).
    fn after_sleep(
        &self,
        w: futex::Wake,
        seen: u32,
        me: u32,
        nonce: u64,
        poll: &mut owner::LivenessPoll,
    ) -> Option<Result<Acquired, Fail>> {
        if w == futex::Wake::TimedOut {
            if owner::checks_liveness()
                && let Some(dead_nonce) = self.owner().dead_owner(seen)
                && let Some(r) = self.take_over(seen, dead_nonce, me, nonce)
            {
                return Some(r);
            }
            poll.slower();
        }
        None
    }

    /// The futex word, for the waiting service.
    #[cfg(feature = "async")]
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.word
    }

    /// The async twin of [`lock`](RawMutex::lock) without deadline: the
    /// same fast path and looks (waiters bit, failpoints), then the
    /// waiting service watches the word (`source` makes this mutex's
    /// [`word`](RawMutex::word) as the service sees it, once, if the call
    /// must wait) until it changes or the next liveness check, at which a
    /// dead owner is taken over as a sleeper does.
    ///
    /// The owner is the thread that polls: the future may move between
    /// threads at each `Pending`, so every attempt asks which thread it
    /// runs on, and the lock is taken within one poll, the one that
    /// returns `Ready` (a future dropped before then holds nothing). Outer
    /// `Err`: the waiting service failed.
    #[cfg(feature = "async")]
    pub(crate) async fn lock_async(
        &self,
        source: impl FnOnce() -> std::sync::Arc<dyn crate::watch::AsyncWord>,
    ) -> std::io::Result<Result<Acquired, Fail>> {
        let (mut me, mut nonce) = match owner::me() {
            Ok(who) => who,
            Err(e) => return Ok(Err(Fail::Os(e))),
        };
        if let Some(r) = self.fast(me, nonce) {
            return Ok(r);
        }
        let source = source();
        let mut poll = owner::LivenessPoll::new();
        loop {
            let seen = match self.look(me, nonce) {
                Look::Done(r) => return Ok(r),
                Look::Sleep(seen) => seen,
            };
            let wake_at = poll.wake_at(Instant::now(), None);
            let w = crate::watch::word_changed(&source, seen, wake_at).await?;
            // Perhaps polled by another thread of the executor now.
            (me, nonce) = match owner::me() {
                Ok(who) => who,
                Err(e) => return Ok(Err(Fail::Os(e))),
            };
            if let Some(r) = self.after_sleep(w, seen, me, nonce, &mut poll) {
                return Ok(r);
            }
        }
    }

    /// Releases the lock if the calling thread owns it; wakes one sleeper
    /// if any. Called by a thread that does not own it (a copy of a guard
    /// in a forked child, or an owner a peer wrongly took over from), it
    /// changes nothing.
    #[inline(always)]
    pub(crate) fn unlock(&self) {
        failpoint::hit("mutex.unlock.before_swap");
        let Ok((me, nonce)) = owner::me() else { return };
        // Release (in `release`): pairs with the Acquire CAS of the next owner.
        let Some(was) = self.owner().release(me, nonce) else { return };
        owner::note_released();
        if was & WAITERS != 0 {
            self.wake_one();
        }
    }

    /// Wakes one sleeper (out of line: most unlocks find none).
    #[cold]
    #[inline(never)]
    fn wake_one(&self) {
        failpoint::hit("mutex.unlock.before_wake");
        futex::wake(&self.word, 1);
    }

    /// Sets `state` and releases, waking every sleeper (they must all see
    /// NOT_RECOVERABLE, or retry after a repair). Does nothing for a
    /// caller that does not own the lock.
    fn release_all(&self, state: u32) {
        let Ok((me, nonce)) = owner::me() else { return };
        if !self.is_mine(self.word.load(Ordering::Relaxed), me, nonce) {
            return;
        }
        self.state.store(state, Ordering::Relaxed);
        if self.owner().release(me, nonce).is_some() {
            owner::note_released();
            futex::wake_all(&self.word);
        }
    }

    /// Marks the data consistent again (recovery done).
    pub(crate) fn mark_consistent(&self) {
        self.state.store(CONSISTENT, Ordering::Relaxed);
    }

    /// Releases a recovery guard that was not marked consistent.
    pub(crate) fn unlock_unrecoverable(&self) {
        self.release_all(NOT_RECOVERABLE);
    }

    /// Whether the calling thread owns the lock.
    pub(crate) fn held_by_me(&self) -> bool {
        match owner::me() {
            Ok((me, nonce)) => self.is_mine(self.word.load(Ordering::Acquire), me, nonce),
            Err(_) => false,
        }
    }

    /// Whether word value `w` names the caller (`me`, process `nonce`): a
    /// process that got the tag of a dead one can have its very id, and
    /// the dead one's lock is taken over, not reported as `Deadlock`. Ours
    /// is recorded before `lock` returns.
    #[inline]
    fn is_mine(&self, w: u32, me: u32, nonce: u64) -> bool {
        self.owner().names(w, me, nonce)
    }

    /// Whether the lock is held (by anyone).
    pub(crate) fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn lock_unlock_and_try_lock() {
        let m = RawMutex::new();
        assert_eq!(m.lock(None).expect("lock"), Acquired::Clean);
        assert!(m.is_locked() && m.held_by_me());
        assert!(matches!(m.try_lock(), Err(Fail::Deadlock)));
        m.unlock();
        assert_eq!(m.try_lock().expect("free"), Acquired::Clean);
        let other = std::thread::scope(|s| s.spawn(|| m.try_lock().map(|_| ())).join().expect("thread"));
        assert!(matches!(other, Err(Fail::WouldBlock)));
        m.unlock();
    }

    #[test]
    fn a_thread_exiting_with_the_lock_is_an_owner_death() {
        let m = RawMutex::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                m.lock(None).expect("lock");
                // exits holding it (a leaked guard)
            });
        });
        assert_eq!(m.lock(None).expect("take over"), Acquired::OwnerDied);
        m.mark_consistent();
        m.unlock();
        assert_eq!(m.lock(None).expect("clean"), Acquired::Clean);
        m.unlock();
    }

    #[test]
    fn unrecoverable_after_an_unmarked_recovery() {
        let m = RawMutex::new();
        std::thread::scope(|s| {
            s.spawn(|| m.lock(None).map(|_| ()).expect("lock"));
        });
        assert_eq!(m.lock(None).expect("take over"), Acquired::OwnerDied);
        m.unlock_unrecoverable();
        assert!(matches!(m.lock(None), Err(Fail::NotRecoverable)));
        assert!(matches!(m.try_lock(), Err(Fail::NotRecoverable)));
    }

    #[test]
    fn contended_counting_is_exact() {
        struct Shared(RawMutex, std::cell::UnsafeCell<u64>);
        // SAFETY: the cell is touched only under the lock.
        unsafe impl Sync for Shared {}
        impl Shared {
            fn bump(&self) {
                self.0.lock(None).expect("lock");
                // SAFETY: under the lock.
                unsafe { *self.1.get() += 1 };
                self.0.unlock();
            }
        }
        let s = Shared(RawMutex::new(), std::cell::UnsafeCell::new(0));
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| (0..10_000).for_each(|_| s.bump()));
            }
        });
        // SAFETY: all threads joined.
        assert_eq!(unsafe { *s.1.get() }, 40_000);
    }

    #[test]
    fn timeouts_expire() {
        let m = RawMutex::new();
        m.lock(None).expect("lock");
        let r = std::thread::scope(|s| {
            s.spawn(|| m.lock(Some(Instant::now() + std::time::Duration::from_millis(30))).map(|_| ()))
                .join()
                .expect("thread")
        });
        assert!(matches!(r, Err(Fail::Timeout)));
        m.unlock();
    }
}

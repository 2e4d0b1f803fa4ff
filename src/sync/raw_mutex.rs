//! `RawMutex`: a robust, process-shared futex mutex, and the `Mutex<T>`
//! data cell and guard built on it.
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
//! liveness tokens (`sys/token.rs`), never 0. Beside the word:
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

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use bytemuck::Pod;

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::{futex, owner};
use crate::shm::layout::{CachePadded, ShmSafe, layout_hash, layout_hash_mix};
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
    /// Offset of the protected value in a `Mutex<T>`'s state.
    pub(crate) const MUTEX_DATA: usize = 128;
    const _: () = assert!(core::mem::size_of::<crate::shm::layout::CachePadded<RawMutex>>() == MUTEX_DATA);

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
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Result<Acquired, Fail> {
        let (me, nonce) = owner::me().map_err(Fail::Os)?;
        if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
            return Err(Fail::NotRecoverable);
        }
        failpoint::hit("mutex.lock.before_cas");
        // Acquire: pairs with the Release swap in `unlock`.
        if self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return self.acquired(nonce);
        }
        self.lock_slow(me, nonce, deadline)
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

    fn acquired(&self, nonce: u64) -> Result<Acquired, Fail> {
        failpoint::hit("mutex.lock.after_cas");
        self.owner().record(nonce);
        owner::note_acquired();
        // Relaxed: `state` is written by owners before their Release unlock,
        // which our Acquire CAS synchronises with.
        match self.state.load(Ordering::Relaxed) {
            CONSISTENT => Ok(Acquired::Clean),
            INCONSISTENT => Ok(Acquired::OwnerDied),
            _ => {
                self.release_all(NOT_RECOVERABLE);
                Err(Fail::NotRecoverable)
            }
        }
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
            if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
                return Err(Fail::NotRecoverable);
            }
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                // Keep WAITERS set: others may be asleep, and our unlock
                // must wake them.
                // Acquire: pairs with the Release swap in `unlock`.
                if self.word.compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return self.acquired(nonce);
                }
                continue;
            }
            if self.is_mine(w, me, nonce) {
                return Err(Fail::Deadlock);
            }
            if w & WAITERS == 0
                && self.word.compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            failpoint::hit("mutex.lock.after_waiters_bit");
            let seen = w | WAITERS;
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Fail::Timeout);
            }
            let wake_at = poll.wake_at(now, deadline);
            if futex::wait(&self.word, seen, wake_at) == futex::Wake::TimedOut {
                if owner::checks_liveness()
                    && let Some(dead_nonce) = self.owner().dead_owner(seen)
                    && let Some(r) = self.take_over(seen, dead_nonce, me, nonce)
                {
                    return r;
                }
                poll.slower();
            }
        }
    }

    /// Releases the lock if the calling thread owns it; wakes one sleeper
    /// if any. Called by a thread that does not own it (a copy of a guard
    /// in a forked child, or an owner a peer wrongly took over from), it
    /// changes nothing.
    #[inline]
    pub(crate) fn unlock(&self) {
        failpoint::hit("mutex.unlock.before_swap");
        let Ok((me, nonce)) = owner::me() else { return };
        // Release (in `release`): pairs with the Acquire CAS of the next owner.
        let Some(was) = self.owner().release(me, nonce) else { return };
        owner::note_released();
        if was & WAITERS != 0 {
            failpoint::hit("mutex.unlock.before_wake");
            futex::wake(&self.word, 1);
        }
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

/// Why [`Mutex::lock`](crate::Mutex::lock) and friends did not give a
/// plain guard.
///
/// # Examples
///
/// ```
/// use shmproc::{LockError, Mutex};
///
/// let m = Mutex::new(0u64)?;
/// match m.lock() {
///     Ok(mut g) => *g += 1,
///     Err(LockError::OwnerDied(mut g)) => {
///         // The last holder died mid-update: repair, then mark consistent.
///         *g = 0;
///         g.mark_consistent();
///     }
///     Err(e) => return Err(e.into()),
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
pub enum LockError<G> {
    /// The previous holder died holding the lock. The guard gives access
    /// to the data (possibly half-written); call `mark_consistent` on it
    /// once repaired, or dropping it makes the lock
    /// [`NotRecoverable`](LockError::NotRecoverable) for everyone.
    OwnerDied(G),
    /// A recovery guard was dropped without `mark_consistent`: the data is
    /// lost for good, and every lock attempt fails at once.
    NotRecoverable,
    /// `try_lock`: the lock is held.
    WouldBlock,
    /// `lock_timeout`: the time ran out.
    Timeout,
    /// The calling thread already holds this lock (locking again would
    /// deadlock).
    Deadlock,
    /// The OS refused something the lock needed (a liveness token).
    Os(std::io::Error),
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::Deadlock => f.write_str("Deadlock"),
            LockError::Os(e) => write!(f, "Os({e})"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("the previous holder of the lock died while holding it"),
            LockError::NotRecoverable => {
                f.write_str("the lock is not recoverable: a recovery guard was dropped without mark_consistent")
            }
            LockError::WouldBlock => f.write_str("the lock is held"),
            LockError::Timeout => f.write_str("timed out waiting for the lock"),
            LockError::Deadlock => f.write_str("this thread already holds the lock"),
            LockError::Os(e) => write!(f, "lock failed: {e}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}

impl<G> From<LockError<G>> for crate::Error {
    fn from(e: LockError<G>) -> crate::Error {
        match e {
            LockError::OwnerDied(_) => crate::Error::OwnerDied,
            LockError::NotRecoverable => crate::Error::NotRecoverable,
            LockError::WouldBlock => crate::Error::WouldBlock,
            LockError::Timeout => crate::Error::Timeout,
            LockError::Deadlock => crate::Error::Deadlock,
            LockError::Os(source) => crate::Error::Os { op: "lock", source },
        }
    }
}

pub(crate) fn map_fail<G>(f: Fail) -> LockError<G> {
    match f {
        Fail::NotRecoverable => LockError::NotRecoverable,
        Fail::WouldBlock => LockError::WouldBlock,
        Fail::Timeout => LockError::Timeout,
        Fail::Deadlock => LockError::Deadlock,
        Fail::Os(e) => LockError::Os(e),
    }
}

/// Where a [`RawGuard`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// A plain guard: unlocks on drop.
    Clean,
    /// A recovery guard (the last owner died): unlocks as unrecoverable on
    /// drop unless marked consistent first.
    Recovering,
    /// Already unlocked by [`RawGuard::release_unrepaired`].
    Released,
}

/// The lock half of every data guard ([`MutexGuard`], `ValueGuard`,
/// `ArrayGuard`): holds a [`RawMutex`] and unlocks it on drop, keeping the
/// recovery rules in one place (POSIX robust-mutex semantics: a recovery
/// guard dropped without [`mark_consistent`](RawGuard::mark_consistent)
/// makes the mutex unrecoverable).
#[derive(Debug)]
pub(crate) struct RawGuard<'a> {
    raw: &'a RawMutex,
    held: Held,
    /// Guards are unlocked by the thread that locked (the owner id is the
    /// thread's), so they are neither Send nor Sync.
    _not_send: PhantomData<*const ()>,
}

impl<'a> RawGuard<'a> {
    /// Turns the outcome of locking `raw` into a data guard made by `make`:
    /// a plain one, a recovery one inside [`LockError::OwnerDied`], or the
    /// failure.
    pub(crate) fn wrap<G>(
        raw: &'a RawMutex,
        r: Result<Acquired, Fail>,
        make: impl FnOnce(RawGuard<'a>) -> G,
    ) -> Result<G, LockError<G>> {
        let guard = |held| RawGuard { raw, held, _not_send: PhantomData };
        match r {
            Ok(Acquired::Clean) => Ok(make(guard(Held::Clean))),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(make(guard(Held::Recovering)))),
            Err(f) => Err(map_fail(f)),
        }
    }

    /// Marks the mutex consistent if this is a recovery guard.
    pub(crate) fn mark_consistent(&mut self) {
        if self.held == Held::Recovering {
            self.raw.mark_consistent();
            self.held = Held::Clean;
        }
    }

    /// Whether this is a recovery guard not yet marked consistent.
    pub(crate) fn is_recovering(&self) -> bool {
        self.held == Held::Recovering
    }

    /// Whether this guard holds the lock cleanly (neither recovering nor
    /// released): only then may its holder publish data written under it.
    pub(crate) fn is_clean(&self) -> bool {
        self.held == Held::Clean
    }

    /// Unlocks now without repairing: the mutex stays marked, so the next
    /// locker gets `OwnerDied` in turn (for calls that found a dead holder
    /// and leave the repair to the caller's next `lock`).
    pub(crate) fn release_unrepaired(&mut self) {
        if self.held != Held::Released {
            self.raw.unlock();
            self.held = Held::Released;
        }
    }
}

impl Drop for RawGuard<'_> {
    fn drop(&mut self) {
        match self.held {
            Held::Clean => self.raw.unlock(),
            Held::Recovering => self.raw.unlock_unrecoverable(),
            Held::Released => {}
        }
    }
}

/// A `RawMutex` and the `T` it protects, as laid out in a segment.
#[repr(C)]
pub(crate) struct MutexState<T> {
    raw: CachePadded<RawMutex>,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, which exists only while
// the lock is held (one thread at a time, in any process); T: Send so it may
// be used from whichever thread holds the lock.
unsafe impl<T: Pod + Send> Sync for MutexState<T> {}

// SAFETY: repr(C): a padded RawMutex (ShmSafe) and an UnsafeCell<T> with
// T: Pod (no pointers, every bit pattern valid, so a half-written value left
// by a dead owner is still a valid T); all interior-mutable.
unsafe impl<T: Pod + Send> ShmSafe for MutexState<T> {
    const TAG: &'static str = "shmproc::Mutex";
    const LAYOUT_HASH: u64 = mutex_layout_hash(
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
        core::mem::size_of::<T>(),
        core::mem::align_of::<T>(),
    );
}

/// The layout hash of a `Mutex<T>` whose state has `size`/`align` and whose
/// `T` has `t_size`/`t_align` (one formula, so `shmproc::inspect` can
/// recognise a mutex of any `T` from its header).
pub(crate) const fn mutex_layout_hash(size: usize, align: usize, t_size: usize, t_align: usize) -> u64 {
    layout_hash_mix(layout_hash_mix(layout_hash("shmproc::Mutex", size, align), t_size as u64), t_align as u64)
}

impl<T: Pod + Send> MutexState<T> {
    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }

    /// Writes the initial value (creator only, before publication).
    pub(crate) fn init(&self, value: T) {
        // SAFETY: called only by the creator inside `Shared::create`'s init
        // closure, before the segment is visible to any other thread or
        // process, so nothing else can access the cell.
        unsafe { self.data.get().write(value) }
    }

    /// Wraps the outcome of locking this mutex in guards.
    pub(crate) fn guard(&self, r: Result<Acquired, Fail>) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        RawGuard::wrap(self.raw(), r, |lock| MutexGuard { state: self, lock })
    }
}

/// Exclusive access to a [`Mutex`](crate::Mutex)'s data; unlocks on drop.
///
/// A guard returned inside [`LockError::OwnerDied`] is a *recovery* guard:
/// repair the data and call [`mark_consistent`](MutexGuard::mark_consistent),
/// or dropping it makes the mutex unrecoverable.
///
/// The guard borrows the mutex handle, and so its mapping: the segment
/// cannot be unmapped while a guard exists (RELIABILITY case 7).
///
/// ```compile_fail
/// let m = shmproc::Mutex::new(1u32).unwrap();
/// let g = m.lock().unwrap();
/// drop(m); // error: `m` is borrowed by `g`
/// drop(g);
/// ```
///
/// # Examples
///
/// ```
/// let m = shmproc::Mutex::new([0u8; 4])?;
/// let mut g = m.lock()?;
/// g[0] = 7;
/// drop(g);
/// assert_eq!(m.lock()?[0], 7);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct MutexGuard<'a, T: Pod + Send> {
    state: &'a MutexState<T>,
    /// Holds the lock; unlocks on drop (neither Send nor Sync).
    lock: RawGuard<'a>,
}

impl<'a, T: Pod + Send> MutexGuard<'a, T> {
    /// Declares the data repaired after an owner died: the mutex is
    /// consistent again, and later lockers get plain guards.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{LockError, Mutex};
    /// let m = Mutex::new(1u32)?;
    /// if let Err(LockError::OwnerDied(mut g)) = m.lock() {
    ///     *g = 0;
    ///     g.mark_consistent();
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.lock.mark_consistent();
    }

    /// Whether this is a recovery guard not yet marked consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(1u32)?;
    /// assert!(!m.lock()?.is_recovering());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_recovering(&self) -> bool {
        self.lock.is_recovering()
    }

    /// Unlocks, runs `f`, and locks again (for condition variables).
    pub(crate) fn unlocked<R>(
        self,
        f: impl FnOnce() -> R,
        deadline: Option<Instant>,
    ) -> (R, Result<MutexGuard<'a, T>, LockError<MutexGuard<'a, T>>>) {
        let state = self.state;
        drop(self);
        let r = f();
        (r, state.guard(state.raw().lock(deadline)))
    }
}

impl<T: Pod + Send> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a guard exists only while this thread holds the lock, so no other thread or process accesses the
        // cell until it drops; the cell is aligned and in bounds (checked when the segment was opened as this type).
        unsafe { &*self.state.data.get() }
    }
}

impl<T: Pod + Send> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the access unique within
        // this thread too.
        unsafe { &mut *self.state.data.get() }
    }
}

impl<T: Pod + Send + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard").field("data", &**self).field("recovering", &self.is_recovering()).finish()
    }
}

/// A re-entrant lock's state: the mutex and the depth of the owner's
/// recursion (written only by the owner).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RLockState {
    pub(crate) raw: CachePadded<RawMutex>,
    pub(crate) depth: AtomicU32,
}

// SAFETY: repr(C) over a padded RawMutex and an atomic: no pointers, any bits
// valid (a garbage depth only mis-counts the owner's own releases), all
// interior-mutable.
unsafe impl ShmSafe for RLockState {
    const TAG: &'static str = "shmproc::RLock";
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

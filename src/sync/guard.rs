//! The lock half of every data guard, and the errors of a lock call.
//!
//! [`RawGuard`] holds a [`RawMutex`] and keeps POSIX robust-mutex recovery
//! in one place for `MutexGuard`, `ValueGuard` and `ArrayGuard`: a guard
//! taken from a dead owner is a recovery guard, and dropping it without
//! `mark_consistent` makes the mutex unrecoverable.

use std::fmt;
use std::marker::PhantomData;

use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

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

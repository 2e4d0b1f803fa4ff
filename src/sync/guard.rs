//! The lock half of every data guard, and the errors of a lock call.
//!
//! [`RawGuard`] holds a [`RawMutex`] and keeps POSIX robust-mutex recovery
//! in one place for `MutexGuard`, `ValueGuard` and `ArrayGuard`: a guard
//! taken from a dead owner is a recovery guard, and dropping it without
//! `mark_consistent` makes the mutex unrecoverable.

use std::fmt;
use std::marker::PhantomData;

use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

/// Why [`Mutex::lock`](crate::Mutex::lock) (and the `lock` of
/// [`Value`](crate::Value) and [`Array`](crate::Array), and
/// [`Condvar::wait`](crate::Condvar::wait)) did not give a plain guard.
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
#[must_use = "a recovery guard inside may need `mark_consistent`"]
pub enum LockError<G> {
    /// The previous holder died holding the lock. The guard gives access
    /// to the data (possibly half-written); call `mark_consistent` on it
    /// once repaired, or dropping it makes the lock
    /// [`NotRecoverable`](LockError::NotRecoverable) for everyone.
    OwnerDied(G),
    /// A recovery guard was dropped without `mark_consistent`: the data is
    /// lost for good, and every lock attempt fails at once.
    NotRecoverable,
    /// The calling thread already holds this lock (locking again would
    /// deadlock).
    Deadlock,
    /// The OS refused something the lock needed (a liveness token; for
    /// `lock_async`, also the waiting service's `futex_waitv`).
    Os(std::io::Error),
}

/// Why a `try_lock` did not give a plain guard: [`LockError`]'s cases and
/// [`WouldBlock`](TryLockError::WouldBlock).
///
/// # Examples
///
/// ```
/// use shmproc::{Mutex, TryLockError};
///
/// let m = Mutex::new(0u64)?;
/// let g = m.try_lock()?;
/// assert!(matches!(m.try_lock(), Err(TryLockError::Deadlock))); // ours
/// drop(g);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "a recovery guard inside may need `mark_consistent`"]
pub enum TryLockError<G> {
    /// Another thread or process holds the lock.
    WouldBlock,
    /// As [`LockError::OwnerDied`].
    OwnerDied(G),
    /// As [`LockError::NotRecoverable`].
    NotRecoverable,
    /// As [`LockError::Deadlock`].
    Deadlock,
    /// As [`LockError::Os`].
    Os(std::io::Error),
}

/// Why a `lock_timeout` or `lock_deadline` did not give a plain guard:
/// [`LockError`]'s cases and [`Timeout`](LockTimeoutError::Timeout).
///
/// # Examples
///
/// ```
/// use shmproc::{LockTimeoutError, Mutex};
/// use std::time::Duration;
///
/// let m = Mutex::new(0u64)?;
/// let g = m.lock_timeout(Duration::from_secs(1))?;
/// assert!(matches!(m.lock_timeout(Duration::ZERO), Err(LockTimeoutError::Deadlock)));
/// drop(g);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "a recovery guard inside may need `mark_consistent`"]
pub enum LockTimeoutError<G> {
    /// The wait ended before the lock was free.
    Timeout,
    /// As [`LockError::OwnerDied`].
    OwnerDied(G),
    /// As [`LockError::NotRecoverable`].
    NotRecoverable,
    /// As [`LockError::Deadlock`].
    Deadlock,
    /// As [`LockError::Os`].
    Os(std::io::Error),
}

/// Why [`Condvar::wait_timeout`](crate::Condvar::wait_timeout) or
/// [`wait_deadline`](crate::Condvar::wait_deadline) did not give a plain
/// guard. On a timeout the guard comes back too: the mutex is locked again
/// either way.
///
/// # Examples
///
/// ```
/// use shmproc::{Condvar, Mutex, WaitTimeoutError};
///
/// let (m, c) = (Mutex::new(0u32)?, Condvar::new()?);
/// let g = m.lock()?;
/// let g = match c.wait_timeout(g, std::time::Duration::from_millis(1)) {
///     Ok(g) | Err(WaitTimeoutError::Timeout(g)) => g, // nobody notified
///     Err(e) => return Err(e.into()),
/// };
/// assert_eq!(*g, 0);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "the guard inside holds the lock"]
pub enum WaitTimeoutError<G> {
    /// The wait ended without a notify; the lock is held again.
    Timeout(G),
    /// As [`LockError::OwnerDied`] (whether or not the wait timed out).
    OwnerDied(G),
    /// As [`LockError::NotRecoverable`].
    NotRecoverable,
    /// As [`LockError::Os`].
    Os(std::io::Error),
}

/// Debug, Display, `std::error::Error` and `From<_> for crate::Error` for
/// a lock error enum (a guard inside is not printed).
macro_rules! lock_error_impls {
    ($ty:ident { $($var:ident $(($g:ident))? => $msg:expr, $err:expr;)* }) => {
        impl<G> fmt::Debug for $ty<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($ty::$var $(($g))? => {
                        $(let _ = $g; return f.write_str(concat!(stringify!($var), "(..)"));)?
                        #[allow(unreachable_code)]
                        f.write_str(stringify!($var))
                    })*
                    $ty::Os(e) => write!(f, "Os({e})"),
                }
            }
        }
        impl<G> fmt::Display for $ty<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($ty::$var $(($g))? => { $(let _ = $g;)? f.write_str($msg) })*
                    $ty::Os(e) => write!(f, "lock failed: {e}"),
                }
            }
        }
        impl<G> std::error::Error for $ty<G> {}
        impl<G> From<$ty<G>> for crate::Error {
            fn from(e: $ty<G>) -> crate::Error {
                match e {
                    $($ty::$var $(($g))? => { $(drop($g);)? $err })*
                    $ty::Os(source) => crate::Error::Os { op: "lock", source },
                }
            }
        }
    };
}

const OWNER_DIED: &str = "the previous holder of the lock died while holding it";
const NOT_RECOVERABLE: &str = "the lock is not recoverable: a recovery guard was dropped without mark_consistent";
const DEADLOCK: &str = "this thread already holds the lock";

lock_error_impls!(LockError {
    OwnerDied(g) => OWNER_DIED, crate::Error::OwnerDied;
    NotRecoverable => NOT_RECOVERABLE, crate::Error::NotRecoverable;
    Deadlock => DEADLOCK, crate::Error::Deadlock;
});
lock_error_impls!(TryLockError {
    WouldBlock => "the lock is held", crate::Error::WouldBlock;
    OwnerDied(g) => OWNER_DIED, crate::Error::OwnerDied;
    NotRecoverable => NOT_RECOVERABLE, crate::Error::NotRecoverable;
    Deadlock => DEADLOCK, crate::Error::Deadlock;
});
lock_error_impls!(LockTimeoutError {
    Timeout => "timed out waiting for the lock", crate::Error::Timeout;
    OwnerDied(g) => OWNER_DIED, crate::Error::OwnerDied;
    NotRecoverable => NOT_RECOVERABLE, crate::Error::NotRecoverable;
    Deadlock => DEADLOCK, crate::Error::Deadlock;
});
lock_error_impls!(WaitTimeoutError {
    Timeout(g) => "timed out waiting for a notify", crate::Error::Timeout;
    OwnerDied(g) => OWNER_DIED, crate::Error::OwnerDied;
    NotRecoverable => NOT_RECOVERABLE, crate::Error::NotRecoverable;
});

/// A guard that a [`Condvar`](crate::Condvar) can wait with: it unlocks
/// the lock while the wait sleeps and locks it again before the wait
/// returns. Implemented by [`MutexGuard`](crate::MutexGuard) (the data is
/// its `T`) and [`LockGuard`](crate::LockGuard) of a
/// [`Lock`](crate::Lock) or an [`RLock`](crate::RLock) (no data: `()`; an
/// `RLock` is released at every level it is held, and held at as many
/// again, as Python's `Condition` does with its default lock). Sealed: no
/// other type implements it.
///
/// # Examples
///
/// ```
/// use shmproc::{CondvarGuard, Condvar, Lock};
/// fn wait_a_little<G: CondvarGuard>(c: &Condvar, g: G) -> G {
///     match c.wait_timeout(g, std::time::Duration::from_millis(1)) {
///         Ok(g) | Err(shmproc::WaitTimeoutError::Timeout(g)) => g,
///         Err(e) => panic!("{e}"),
///     }
/// }
/// let (lock, c) = (Lock::new()?, Condvar::new()?);
/// let g = wait_a_little(&c, lock.lock()?);
/// assert!(lock.is_locked());
/// drop(g);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub trait CondvarGuard: sealed::Sealed + Sized {
    /// What a predicate of [`Condvar::wait_while`](crate::Condvar::wait_while)
    /// looks at: the mutex's `T`, or `()` for a lock without data.
    type Data: ?Sized;

    /// The data under the lock.
    #[doc(hidden)]
    fn data_mut(&mut self) -> &mut Self::Data;

    /// Unlocks, runs `f`, and locks again: `f`'s result and the relock's.
    #[doc(hidden)]
    fn unlocked<R>(self, f: impl FnOnce() -> R) -> (R, Result<Self, LockError<Self>>);
}

pub(crate) mod sealed {
    /// Keeps [`CondvarGuard`](super::CondvarGuard) to the crate's guards.
    pub trait Sealed {}
}

/// How one lock attempt ended, before the caller's error type is chosen
/// (each public call can only meet some of these).
pub(crate) enum Locked<G> {
    Guard(G),
    OwnerDied(G),
    Failed(Fail),
}

impl<G> Locked<G> {
    /// For an untimed `lock`. A `WouldBlock` or `Timeout` cannot come from
    /// a wait without deadline; were one to, it is reported as an OS error
    /// rather than a panic.
    #[inline(always)]
    pub(crate) fn blocking(self) -> Result<G, LockError<G>> {
        match self {
            Locked::Guard(g) => Ok(g),
            Locked::OwnerDied(g) => Err(LockError::OwnerDied(g)),
            Locked::Failed(f) => Err(Self::blocking_failed(f)),
        }
    }

    /// The error of an untimed `lock` that failed (out of line: the fast
    /// path's caller stays small).
    #[cold]
    #[inline(never)]
    fn blocking_failed(f: Fail) -> LockError<G> {
        match f {
            Fail::NotRecoverable => LockError::NotRecoverable,
            Fail::Deadlock => LockError::Deadlock,
            Fail::Os(e) => LockError::Os(e),
            Fail::WouldBlock | Fail::Timeout => {
                LockError::Os(std::io::Error::other("an untimed lock ended without the lock"))
            }
        }
    }

    /// For `try_lock` (a `Timeout` counts as `WouldBlock`).
    pub(crate) fn tried(self) -> Result<G, TryLockError<G>> {
        match self {
            Locked::Guard(g) => Ok(g),
            Locked::OwnerDied(g) => Err(TryLockError::OwnerDied(g)),
            Locked::Failed(Fail::NotRecoverable) => Err(TryLockError::NotRecoverable),
            Locked::Failed(Fail::Deadlock) => Err(TryLockError::Deadlock),
            Locked::Failed(Fail::Os(e)) => Err(TryLockError::Os(e)),
            Locked::Failed(Fail::WouldBlock | Fail::Timeout) => Err(TryLockError::WouldBlock),
        }
    }

    /// For `lock_timeout` and `lock_deadline` (a `WouldBlock` counts as
    /// `Timeout`).
    pub(crate) fn timed(self) -> Result<G, LockTimeoutError<G>> {
        match self {
            Locked::Guard(g) => Ok(g),
            Locked::OwnerDied(g) => Err(LockTimeoutError::OwnerDied(g)),
            Locked::Failed(Fail::NotRecoverable) => Err(LockTimeoutError::NotRecoverable),
            Locked::Failed(Fail::Deadlock) => Err(LockTimeoutError::Deadlock),
            Locked::Failed(Fail::Os(e)) => Err(LockTimeoutError::Os(e)),
            Locked::Failed(Fail::WouldBlock | Fail::Timeout) => Err(LockTimeoutError::Timeout),
        }
    }
}

/// The instant `timeout` from now, or `None` (no deadline) past what an
/// `Instant` can hold: `Duration::MAX` waits forever instead of panicking.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(timeout)
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
    /// a plain one, a recovery one, or the failure; the caller picks the
    /// error type its call can meet ([`Locked::blocking`], `tried`, `timed`).
    #[inline(always)]
    pub(crate) fn wrap<G>(
        raw: &'a RawMutex,
        r: Result<Acquired, Fail>,
        make: impl FnOnce(RawGuard<'a>) -> G,
    ) -> Locked<G> {
        let guard = |held| RawGuard { raw, held, _not_send: PhantomData };
        match r {
            Ok(Acquired::Clean) => Locked::Guard(make(guard(Held::Clean))),
            Ok(Acquired::OwnerDied) => Locked::OwnerDied(make(guard(Held::Recovering))),
            Err(f) => Locked::Failed(f),
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
    #[inline(always)]
    fn drop(&mut self) {
        match self.held {
            Held::Clean => self.raw.unlock(),
            Held::Recovering => self.raw.unlock_unrecoverable(),
            Held::Released => {}
        }
    }
}

//! The errors of the `acquire` calls of [`Lock`](crate::Lock) and
//! [`RLock`](crate::RLock), and the two unit errors of calls that can only
//! find the object busy ([`WouldBlock`]) or run out of time ([`TimedOut`]):
//! [`Semaphore`](crate::Semaphore) and [`Event`](crate::Event).

use std::fmt;

use crate::error::Error;
use crate::sync::raw_mutex::Fail;

/// Why [`Lock::acquire`](crate::Lock::acquire) (or `lock`, or
/// [`RLock::acquire`](crate::RLock::acquire)) did not take the lock.
///
/// # Examples
///
/// ```
/// use shmproc::{AcquireError, Lock};
/// let lock = Lock::new()?;
/// lock.acquire()?;
/// assert!(matches!(lock.acquire(), Err(AcquireError::Deadlock))); // not re-entrant
/// # lock.release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AcquireError {
    /// The calling thread holds this [`Lock`](crate::Lock) already (an
    /// [`RLock`](crate::RLock) never reports it: it counts instead).
    Deadlock,
    /// Anything else: the OS refused a liveness token ([`Error::Os`]), or
    /// a peer wrote a state the lock cannot recover from
    /// ([`Error::NotRecoverable`]).
    Failed(Error),
}

/// Why [`Lock::try_acquire`](crate::Lock::try_acquire) (or `try_lock`, or
/// the `RLock` twins) did not take the lock.
///
/// # Examples
///
/// ```
/// use shmproc::{Lock, TryAcquireError};
/// let lock = Lock::new()?;
/// lock.try_acquire()?;
/// assert!(matches!(lock.try_acquire(), Err(TryAcquireError::WouldBlock)));
/// # lock.release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TryAcquireError {
    /// Another thread or process holds the lock (or this thread holds a
    /// [`Lock`](crate::Lock): trying does not re-enter it).
    WouldBlock,
    /// As [`AcquireError::Failed`].
    Failed(Error),
}

/// Why [`Lock::acquire_timeout`](crate::Lock::acquire_timeout) or
/// `acquire_deadline` (or the `lock_` twins, or the `RLock` ones) did not
/// take the lock.
///
/// # Examples
///
/// ```
/// use shmproc::{AcquireTimeoutError, Lock};
/// use std::time::Duration;
/// let lock = Lock::new()?;
/// lock.acquire_timeout(Duration::from_secs(1))?;
/// assert!(matches!(lock.acquire_timeout(Duration::ZERO), Err(AcquireTimeoutError::Deadlock)));
/// # lock.release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AcquireTimeoutError {
    /// The wait ended before the lock was free.
    Timeout,
    /// As [`AcquireError::Deadlock`].
    Deadlock,
    /// As [`AcquireError::Failed`].
    Failed(Error),
}

/// A `try_` call found the object busy (no permit, the lock held):
/// nothing happened.
///
/// # Examples
///
/// ```
/// let s = shmproc::Semaphore::new(0)?;
/// assert_eq!(s.try_acquire(), Err(shmproc::WouldBlock));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WouldBlock;

/// A `_timeout` or `_deadline` call's wait ended first: nothing happened.
///
/// # Examples
///
/// ```
/// let e = shmproc::Event::new()?;
/// assert_eq!(e.wait_timeout(std::time::Duration::ZERO), Err(shmproc::TimedOut));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimedOut;

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Deadlock => fmt::Display::fmt(&Error::Deadlock, f),
            AcquireError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::WouldBlock => fmt::Display::fmt(&Error::WouldBlock, f),
            TryAcquireError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for AcquireTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireTimeoutError::Timeout => fmt::Display::fmt(&Error::Timeout, f),
            AcquireTimeoutError::Deadlock => fmt::Display::fmt(&Error::Deadlock, f),
            AcquireTimeoutError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for WouldBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Error::WouldBlock, f)
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Error::Timeout, f)
    }
}

impl std::error::Error for AcquireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireError::Failed(e) => Some(e),
            AcquireError::Deadlock => None,
        }
    }
}

impl std::error::Error for TryAcquireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryAcquireError::Failed(e) => Some(e),
            TryAcquireError::WouldBlock => None,
        }
    }
}

impl std::error::Error for AcquireTimeoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireTimeoutError::Failed(e) => Some(e),
            AcquireTimeoutError::Timeout | AcquireTimeoutError::Deadlock => None,
        }
    }
}

impl std::error::Error for WouldBlock {}
impl std::error::Error for TimedOut {}

impl From<AcquireError> for Error {
    fn from(e: AcquireError) -> Error {
        match e {
            AcquireError::Deadlock => Error::Deadlock,
            AcquireError::Failed(e) => e,
        }
    }
}

impl From<TryAcquireError> for Error {
    fn from(e: TryAcquireError) -> Error {
        match e {
            TryAcquireError::WouldBlock => Error::WouldBlock,
            TryAcquireError::Failed(e) => e,
        }
    }
}

impl From<AcquireTimeoutError> for Error {
    fn from(e: AcquireTimeoutError) -> Error {
        match e {
            AcquireTimeoutError::Timeout => Error::Timeout,
            AcquireTimeoutError::Deadlock => Error::Deadlock,
            AcquireTimeoutError::Failed(e) => e,
        }
    }
}

impl From<WouldBlock> for Error {
    fn from(_: WouldBlock) -> Error {
        Error::WouldBlock
    }
}

impl From<TimedOut> for Error {
    fn from(_: TimedOut) -> Error {
        Error::Timeout
    }
}

/// The failures of a raw lock that are neither "busy", "timed out" nor
/// "deadlock", as the crate's error.
pub(crate) fn failed(f: Fail) -> Error {
    match f {
        Fail::NotRecoverable => Error::NotRecoverable,
        Fail::Os(source) => Error::Os { op: "lock", source },
        Fail::WouldBlock => Error::WouldBlock,
        Fail::Timeout => Error::Timeout,
        Fail::Deadlock => Error::Deadlock,
    }
}

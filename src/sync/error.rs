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
    /// ([`Error::NotRecoverable`]), or (the async twins) the waiting
    /// service could not wait ([`Error::Os`] naming `futex_waitv`).
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

/// Why [`Barrier::wait`](crate::Barrier::wait) returned no arrival index.
///
/// # Examples
///
/// ```
/// use shmproc::{Barrier, BarrierError};
/// let b = Barrier::new(2)?;
/// b.abort();
/// assert!(matches!(b.wait(), Err(BarrierError::Broken { dead: None })));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier is broken until [`reset`](crate::Barrier::reset): a
    /// party died (`dead` is its pid), another party timed out, or someone
    /// called [`abort`](crate::Barrier::abort).
    Broken {
        /// The pid of a party that died, if that is why.
        dead: Option<u32>,
    },
    /// This party arrived last and ran the barrier's action, which
    /// panicked: the barrier is now broken for the others, who get
    /// [`Broken`](BarrierError::Broken) (Python: the action's exception
    /// is raised in this party, `BrokenBarrierError` in the others).
    ActionPanicked {
        /// The panic message.
        message: String,
    },
    /// The OS refused a liveness token ([`Error::Os`]), or (for
    /// `Barrier::wait_async`) the waiting service
    /// could not wait ([`Error::Os`] naming `futex_waitv`), or this
    /// process could not run the barrier's action ([`Error::Os`] naming
    /// `barrier action`: it runs another executable than the barrier's
    /// creator, or was built without the `serde` feature; the barrier is
    /// then broken).
    Failed(Error),
}

/// Why [`Barrier::wait_timeout`](crate::Barrier::wait_timeout) or
/// `wait_deadline` returned no arrival index.
///
/// # Examples
///
/// ```
/// use shmproc::{Barrier, BarrierTimeoutError};
/// let b = Barrier::new(2)?;
/// let r = b.wait_timeout(std::time::Duration::from_millis(1));
/// assert!(matches!(r, Err(BarrierTimeoutError::Timeout))); // and now broken
/// assert!(matches!(b.wait_timeout(std::time::Duration::ZERO), Err(BarrierTimeoutError::Broken { .. })));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BarrierTimeoutError {
    /// This party's time ran out; it broke the barrier for everyone (as
    /// Python does).
    Timeout,
    /// As [`BarrierError::Broken`].
    Broken {
        /// The pid of a party that died, if that is why.
        dead: Option<u32>,
    },
    /// As [`BarrierError::ActionPanicked`].
    ActionPanicked {
        /// The panic message.
        message: String,
    },
    /// As [`BarrierError::Failed`].
    Failed(Error),
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken { dead } => fmt::Display::fmt(&Error::Broken { dead: *dead }, f),
            BarrierError::ActionPanicked { message } => action_panicked(message, f),
            BarrierError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for BarrierTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierTimeoutError::Timeout => f.write_str("timed out at the barrier (which is now broken)"),
            BarrierTimeoutError::Broken { dead } => fmt::Display::fmt(&Error::Broken { dead: *dead }, f),
            BarrierTimeoutError::ActionPanicked { message } => action_panicked(message, f),
            BarrierTimeoutError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

fn action_panicked(message: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "the barrier's action panicked (the barrier is now broken): {message}")
}

impl std::error::Error for BarrierError {}
impl std::error::Error for BarrierTimeoutError {}

impl From<BarrierError> for Error {
    fn from(e: BarrierError) -> Error {
        match e {
            BarrierError::Broken { dead } => Error::Broken { dead },
            BarrierError::ActionPanicked { message } => Error::BarrierActionPanicked { message },
            BarrierError::Failed(e) => e,
        }
    }
}

impl From<BarrierTimeoutError> for Error {
    fn from(e: BarrierTimeoutError) -> Error {
        match e {
            BarrierTimeoutError::Timeout => Error::Timeout,
            BarrierTimeoutError::Broken { dead } => Error::Broken { dead },
            BarrierTimeoutError::ActionPanicked { message } => Error::BarrierActionPanicked { message },
            BarrierTimeoutError::Failed(e) => e,
        }
    }
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

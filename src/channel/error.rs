//! The expected outcomes of non-blocking and timed queue calls (the first
//! of the crate's two error tiers; the second is the one [`Error`] enum for
//! everything else): small types that give the item back. Each converts
//! into [`Error`] so `?` works in functions returning [`crate::Result`], and
//! none needs `T: Debug` to be printed.

use std::fmt;

use crate::error::Error;

/// Why [`Queue::try_put`](crate::Queue::try_put) did not put its item; the
/// item comes back in every case.
///
/// # Examples
///
/// ```
/// use shmproc::{Queue, TryPutError};
///
/// let q = Queue::<u32>::new(1)?;
/// q.try_put(1).expect("room for one");
/// match q.try_put(2) {
///     Err(TryPutError::Full(item)) => assert_eq!(item, 2),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[non_exhaustive]
pub enum TryPutError<T> {
    /// No room now.
    Full(T),
    /// The queue was closed.
    Closed(T),
    /// Every consumer process has exited or was killed.
    Disconnected(T),
    /// Anything else (encoding failed, corrupt queue, OS error).
    Failed(T, Error),
}

/// Why [`Queue::put_timeout`](crate::Queue::put_timeout) did not put its
/// item; the item comes back in every case.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmproc::{PutTimeoutError, Queue};
///
/// let q = Queue::<u32>::new(1)?;
/// q.put(1)?;
/// match q.put_timeout(2, Duration::from_millis(10)) {
///     Err(PutTimeoutError::Timeout(item)) => assert_eq!(item, 2),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[non_exhaustive]
pub enum PutTimeoutError<T> {
    /// Still no room when the time ran out.
    Timeout(T),
    /// The queue was closed.
    Closed(T),
    /// Every consumer process has exited or was killed.
    Disconnected(T),
    /// Anything else (encoding failed, corrupt queue, OS error).
    Failed(T, Error),
}

/// Why [`Queue::try_get`](crate::Queue::try_get) returned no item.
///
/// # Examples
///
/// ```
/// use shmproc::{Queue, TryGetError};
///
/// let q = Queue::<u32>::new(4)?;
/// assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TryGetError {
    /// Nothing to get now.
    Empty,
    /// The queue was closed and is drained.
    Closed,
    /// The queue is empty and every producer process has exited or was killed.
    Disconnected,
    /// Anything else (decoding failed, corrupt queue, OS error).
    Failed(Error),
}

/// Why [`Queue::get_timeout`](crate::Queue::get_timeout) returned no item.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmproc::{GetTimeoutError, Queue};
///
/// let q = Queue::<u32>::new(4)?;
/// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(GetTimeoutError::Timeout)));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum GetTimeoutError {
    /// Still nothing when the time ran out.
    Timeout,
    /// The queue was closed and is drained.
    Closed,
    /// The queue is empty and every producer process has exited or was killed.
    Disconnected,
    /// Anything else (decoding failed, corrupt queue, OS error).
    Failed(Error),
}

impl<T> TryPutError<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::TryPutError::Full(7);
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t)
            | TryPutError::Closed(t)
            | TryPutError::Disconnected(t)
            | TryPutError::Failed(t, _) => t,
        }
    }

    /// Whether the queue was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::TryPutError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::PutTimeoutError::Timeout("job");
    /// assert_eq!(e.into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(t)
            | PutTimeoutError::Closed(t)
            | PutTimeoutError::Disconnected(t)
            | PutTimeoutError::Failed(t, _) => t,
        }
    }

    /// Whether the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::PutTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Closed(_) => f.write_str("Closed(..)"),
            TryPutError::Disconnected(_) => f.write_str("Disconnected(..)"),
            TryPutError::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutTimeoutError::Closed(_) => f.write_str("Closed(..)"),
            PutTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
            PutTimeoutError::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => fmt::Display::fmt(&Error::Full, f),
            TryPutError::Closed(_) => fmt::Display::fmt(&Error::Closed, f),
            TryPutError::Disconnected(_) => fmt::Display::fmt(&Error::Disconnected, f),
            TryPutError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => fmt::Display::fmt(&Error::Timeout, f),
            PutTimeoutError::Closed(_) => fmt::Display::fmt(&Error::Closed, f),
            PutTimeoutError::Disconnected(_) => fmt::Display::fmt(&Error::Disconnected, f),
            PutTimeoutError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => fmt::Display::fmt(&Error::Empty, f),
            TryGetError::Closed => fmt::Display::fmt(&Error::Closed, f),
            TryGetError::Disconnected => fmt::Display::fmt(&Error::Disconnected, f),
            TryGetError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => fmt::Display::fmt(&Error::Timeout, f),
            GetTimeoutError::Closed => fmt::Display::fmt(&Error::Closed, f),
            GetTimeoutError::Disconnected => fmt::Display::fmt(&Error::Disconnected, f),
            GetTimeoutError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}
impl<T> std::error::Error for PutTimeoutError<T> {}
impl std::error::Error for TryGetError {}
impl std::error::Error for GetTimeoutError {}

impl<T> From<TryPutError<T>> for Error {
    fn from(e: TryPutError<T>) -> Error {
        match e {
            TryPutError::Full(_) => Error::Full,
            TryPutError::Closed(_) => Error::Closed,
            TryPutError::Disconnected(_) => Error::Disconnected,
            TryPutError::Failed(_, e) => e,
        }
    }
}

impl<T> From<PutTimeoutError<T>> for Error {
    fn from(e: PutTimeoutError<T>) -> Error {
        match e {
            PutTimeoutError::Timeout(_) => Error::Timeout,
            PutTimeoutError::Closed(_) => Error::Closed,
            PutTimeoutError::Disconnected(_) => Error::Disconnected,
            PutTimeoutError::Failed(_, e) => e,
        }
    }
}

impl From<TryGetError> for Error {
    fn from(e: TryGetError) -> Error {
        match e {
            TryGetError::Empty => Error::Empty,
            TryGetError::Closed => Error::Closed,
            TryGetError::Disconnected => Error::Disconnected,
            TryGetError::Failed(e) => e,
        }
    }
}

impl From<GetTimeoutError> for Error {
    fn from(e: GetTimeoutError) -> Error {
        match e {
            GetTimeoutError::Timeout => Error::Timeout,
            GetTimeoutError::Closed => Error::Closed,
            GetTimeoutError::Disconnected => Error::Disconnected,
            GetTimeoutError::Failed(e) => e,
        }
    }
}

/// Why [`Queue::put`](crate::Queue::put) did not put its item; the item
/// comes back in every case.
///
/// # Examples
///
/// ```
/// use shmproc::{PutError, Queue};
///
/// let q = Queue::<u32>::new(0)?;
/// q.close();
/// match q.put(7) {
///     Err(PutError::Closed(item)) => assert_eq!(item, 7),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue was closed ([`close`](crate::Queue::close)).
    Closed(T),
    /// The queue stayed full and the OS confirms every consumer process
    /// gone.
    Disconnected(T),
    /// Anything else: the item could not be encoded ([`Error::Codec`]:
    /// nothing was put, the queue stays usable), or a peer broke the queue
    /// ([`Error::Corrupt`]).
    Failed(T, Error),
}

/// Why [`Queue::get`](crate::Queue::get) returned no item.
///
/// # Examples
///
/// ```
/// use shmproc::{GetError, Queue};
///
/// let q = Queue::<u32>::new(0)?;
/// q.close();
/// assert!(matches!(q.get(), Err(GetError::Closed)));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is closed and drained.
    Closed,
    /// The queue is empty and the OS confirms every producer process gone.
    Disconnected,
    /// Anything else: the bytes do not decode as a `T` ([`Error::Codec`]),
    /// or a peer broke the queue ([`Error::Corrupt`]).
    Failed(Error),
}

impl<T> PutError<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// q.close();
    /// assert_eq!(q.put(5).unwrap_err().into_inner(), 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Closed(t) | PutError::Disconnected(t) | PutError::Failed(t, _) => t,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Disconnected(_) => f.write_str("Disconnected(..)"),
            PutError::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Closed(_) => fmt::Display::fmt(&Error::Closed, f),
            PutError::Disconnected(_) => fmt::Display::fmt(&Error::Disconnected, f),
            PutError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Closed => fmt::Display::fmt(&Error::Closed, f),
            GetError::Disconnected => fmt::Display::fmt(&Error::Disconnected, f),
            GetError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}
impl std::error::Error for GetError {}

impl<T> From<PutError<T>> for Error {
    fn from(e: PutError<T>) -> Error {
        match e {
            PutError::Closed(_) => Error::Closed,
            PutError::Disconnected(_) => Error::Disconnected,
            PutError::Failed(_, e) => e,
        }
    }
}

impl From<GetError> for Error {
    fn from(e: GetError) -> Error {
        match e {
            GetError::Closed => Error::Closed,
            GetError::Disconnected => Error::Disconnected,
            GetError::Failed(e) => e,
        }
    }
}

/// Why [`JoinableQueue::join`](crate::JoinableQueue::join) reports that not
/// every item was done.
///
/// # Examples
///
/// ```
/// let q = shmproc::JoinableQueue::<u8>::new(0)?;
/// let e = shmproc::QueueJoinError::Abandoned { items: 2 };
/// assert!(e.to_string().contains('2'));
/// q.join()?; // nothing put
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueJoinError {
    /// Consumers died holding items: the queue lost them (later joins
    /// report the same count; it counts since the queue was made).
    Abandoned {
        /// How many items were abandoned.
        items: u64,
    },
}

/// Why [`JoinableQueue::join_timeout`](crate::JoinableQueue::join_timeout)
/// or `join_deadline` returned before every item was done.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let q = shmproc::JoinableQueue::<u8>::new(0)?;
/// q.put(1)?;
/// assert_eq!(q.join_timeout(Duration::ZERO), Err(shmproc::QueueJoinTimeoutError::Timeout));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueJoinTimeoutError {
    /// Items were still unfinished when the time ran out.
    Timeout,
    /// As [`QueueJoinError::Abandoned`].
    Abandoned {
        /// How many items were abandoned.
        items: u64,
    },
}

impl fmt::Display for QueueJoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueJoinError::Abandoned { items } => fmt::Display::fmt(&Error::Abandoned { items: *items }, f),
        }
    }
}

impl fmt::Display for QueueJoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueJoinTimeoutError::Timeout => fmt::Display::fmt(&Error::Timeout, f),
            QueueJoinTimeoutError::Abandoned { items } => fmt::Display::fmt(&Error::Abandoned { items: *items }, f),
        }
    }
}

impl std::error::Error for QueueJoinError {}
impl std::error::Error for QueueJoinTimeoutError {}

impl From<QueueJoinError> for Error {
    fn from(e: QueueJoinError) -> Error {
        match e {
            QueueJoinError::Abandoned { items } => Error::Abandoned { items },
        }
    }
}

impl From<QueueJoinTimeoutError> for Error {
    fn from(e: QueueJoinTimeoutError) -> Error {
        match e {
            QueueJoinTimeoutError::Timeout => Error::Timeout,
            QueueJoinTimeoutError::Abandoned { items } => Error::Abandoned { items },
        }
    }
}

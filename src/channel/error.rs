//! The expected outcomes of non-blocking and timed queue calls (the first
//! of the crate's two error tiers; the second is the one [`Error`] enum for
//! everything else): small types that give the item back. Each converts
//! into [`Error`] so `?` works in functions returning [`crate::Result`], and
//! none needs `T: Debug` to be printed.

use std::fmt;

use crate::channel::lane::Stop;
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

/// What a `Stop::Timeout` becomes: the named variant (`Full`, `Timeout`,
/// `Empty`), or `Failed` for a blocking call that has none.
macro_rules! timeout_variant {
    ($ty:ident; $value:ident; $tvar:ident) => {
        $ty::$tvar($value)
    };
    ($ty:ident; $value:ident;) => {
        $ty::Failed($value, Error::Timeout)
    };
    ($ty:ident;; $tvar:ident) => {
        $ty::$tvar
    };
    ($ty:ident;;) => {
        $ty::Failed(Error::Timeout)
    };
}

/// An error enum whose every variant holds the item that was not sent
/// (`Failed` also holds the cause), with `into_inner`, Debug (the item is
/// not printed), Display, `std::error::Error` and the conversion into
/// [`Error`]. The item type defaults to `()`: a `Connection` sends by
/// reference, so the caller still holds the value and nothing comes back
/// (and the error stays `'static`, for `Box<dyn Error>`).
macro_rules! send_errors {
    ($(#[$meta:meta])* $ty:ident $(timeout: $tvar:ident)? { $($(#[$vm:meta])* $var:ident => $err:expr,)* }) => {
        $(#[$meta])*
        #[non_exhaustive]
        pub enum $ty<T = ()> {
            $($(#[$vm])* $var(T),)*
            /// Anything else: the value could not be encoded
            /// ([`Error::Codec`]: nothing was sent, the pipe stays usable),
            /// a call on the wrong end of a simplex pipe
            /// ([`Error::InvalidArgument`]), or a peer broke the pipe
            /// ([`Error::Corrupt`]).
            Failed(T, Error),
        }

        impl<T> $ty<T> {
            /// The error for a send of `value` that the engine ended with
            /// `stop` (a `Timeout` of a call that cannot time out, which the
            /// engine never gives, becomes `Failed`).
            pub(crate) fn from_stop(value: T, stop: Stop) -> Self {
                match stop {
                    Stop::Closed => $ty::Closed(value),
                    Stop::Disconnected => $ty::Disconnected(value),
                    Stop::Failed(e) => $ty::Failed(value, e),
                    Stop::Timeout => timeout_variant!($ty; value; $($tvar)?),
                }
            }

            /// The value that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    $($ty::$var(t))|* | $ty::Failed(t, _) => t,
                }
            }
        }

        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($ty::$var(_) => f.write_str(concat!(stringify!($var), "(..)")),)*
                    $ty::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
                }
            }
        }

        impl<T> fmt::Display for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($ty::$var(_) => fmt::Display::fmt(&$err, f),)*
                    $ty::Failed(_, e) => fmt::Display::fmt(e, f),
                }
            }
        }

        impl<T> std::error::Error for $ty<T> {}

        impl<T> From<$ty<T>> for Error {
            fn from(e: $ty<T>) -> Error {
                match e {
                    $($ty::$var(_) => $err,)*
                    $ty::Failed(_, e) => e,
                }
            }
        }
    };
}

/// An error enum without an item (the receiving side), with Display,
/// `std::error::Error` and the conversion into [`Error`].
macro_rules! recv_errors {
    ($(#[$meta:meta])* $ty:ident $(timeout: $tvar:ident)? { $($(#[$vm:meta])* $var:ident => $err:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vm])* $var,)*
            /// Anything else: the bytes do not decode as the asked type
            /// ([`Error::Codec`]), a call on the wrong end of a simplex pipe
            /// ([`Error::InvalidArgument`]), or a peer broke the pipe
            /// ([`Error::Corrupt`]).
            Failed(Error),
        }

        impl $ty {
            /// The error for a receive that the engine ended with `stop`
            /// (as for the send errors' `from_stop`).
            pub(crate) fn from_stop(stop: Stop) -> Self {
                match stop {
                    Stop::Closed => $ty::Closed,
                    Stop::Disconnected => $ty::Disconnected,
                    Stop::Failed(e) => $ty::Failed(e),
                    Stop::Timeout => timeout_variant!($ty;; $($tvar)?),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($ty::$var => fmt::Display::fmt(&$err, f),)*
                    $ty::Failed(e) => fmt::Display::fmt(e, f),
                }
            }
        }

        impl std::error::Error for $ty {}

        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                match e {
                    $($ty::$var => $err,)*
                    $ty::Failed(e) => e,
                }
            }
        }
    };
}

send_errors! {
    /// Why [`Connection::send`](crate::Connection::send) (or `send_bytes`)
    /// did not send (the caller still holds the value: the item is `()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Pipe, SendError};
    /// let (a, b) = Pipe::new()?;
    /// b.close(); // nobody will read
    /// assert!(matches!(a.send(&7u8), Err(SendError::Disconnected(()))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    SendError {
        /// This end was closed.
        Closed => Error::Closed,
        /// The other end was closed, or every process holding it died
        /// (Python: `BrokenPipeError`).
        Disconnected => Error::BrokenPipe,
    }
}

send_errors! {
    /// Why [`Connection::try_send`](crate::Connection::try_send) (or
    /// `try_send_bytes`) did not send (the caller still holds the value).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Pipe, TrySendError};
    /// let (a, _b) = Pipe::builder().capacity(256).duplex()?;
    /// let msg = vec![0u8; 119]; // a 128-byte record: two fill 256 bytes
    /// a.try_send(&msg)?;
    /// a.try_send(&msg)?;
    /// assert!(matches!(a.try_send(&msg), Err(TrySendError::Full(_))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    TrySendError timeout: Full {
        /// No room now.
        Full => Error::Full,
        /// As [`SendError::Closed`].
        Closed => Error::Closed,
        /// As [`SendError::Disconnected`].
        Disconnected => Error::BrokenPipe,
    }
}

send_errors! {
    /// Why [`Connection::send_timeout`](crate::Connection::send_timeout) or
    /// `send_deadline` (or the `send_bytes_` twins) did not send (the caller
    /// still holds the value).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Pipe, SendTimeoutError};
    /// use std::time::Duration;
    /// let (a, _b) = Pipe::builder().capacity(256).duplex()?;
    /// let msg = vec![0u8; 119];
    /// a.send(&msg)?;
    /// a.send(&msg)?;
    /// assert!(matches!(a.send_timeout(&msg, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(_))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    SendTimeoutError timeout: Timeout {
        /// No room came free in time.
        Timeout => Error::Timeout,
        /// As [`SendError::Closed`].
        Closed => Error::Closed,
        /// As [`SendError::Disconnected`].
        Disconnected => Error::BrokenPipe,
    }
}

recv_errors! {
    /// Why [`Connection::recv`](crate::Connection::recv) (or `recv_bytes`)
    /// returned no message.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Pipe, RecvError};
    /// let (a, b) = Pipe::new()?;
    /// a.close(); // nothing more will come
    /// assert!(matches!(b.recv::<u8>(), Err(RecvError::Disconnected)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    RecvError {
        /// This end was closed.
        Closed => Error::Closed,
        /// Nothing is left and the other end was closed, or every process
        /// holding it died (Python: `EOFError`).
        Disconnected => Error::Disconnected,
    }
}

recv_errors! {
    /// Why [`Connection::try_recv`](crate::Connection::try_recv) (or
    /// `try_recv_bytes`) returned no message.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Pipe, TryRecvError};
    /// let (_a, b) = Pipe::new()?;
    /// assert!(matches!(b.try_recv::<u8>(), Err(TryRecvError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    TryRecvError timeout: Empty {
        /// No message now.
        Empty => Error::Empty,
        /// As [`RecvError::Closed`].
        Closed => Error::Closed,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

recv_errors! {
    /// Why [`Connection::recv_timeout`](crate::Connection::recv_timeout) or
    /// `recv_deadline` (or the `recv_bytes_` twins) returned no message.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Pipe, RecvTimeoutError};
    /// let (_a, b) = Pipe::new()?;
    /// let r = b.recv_timeout::<u8>(std::time::Duration::from_millis(1));
    /// assert!(matches!(r, Err(RecvTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    RecvTimeoutError timeout: Timeout {
        /// No message came in time.
        Timeout => Error::Timeout,
        /// As [`RecvError::Closed`].
        Closed => Error::Closed,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

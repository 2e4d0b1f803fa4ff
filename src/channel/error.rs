//! The expected outcomes of non-blocking and timed queue calls (the first
//! of the crate's two error tiers; the second is the one [`Error`] enum for
//! everything else): small types that give the item back. Each converts
//! into [`Error`] so `?` works in functions returning [`crate::Result`], and
//! none needs `T: Debug` to be printed.

use std::fmt;

use crate::channel::lane::Stop;
use crate::error::Error;

/// The docs that differ between the six families (a `Connection`'s
/// `send`/`recv`, a `Queue`'s `put`/`get`, a typed channel's
/// `chan_send`/`chan_recv`): what `Failed` holds, what `into_inner` gives
/// back, and where the examples find the type.
macro_rules! family_doc {
    (send failed) => {
        "Anything else: the value could not be encoded ([`Error::Codec`]: \
         nothing was sent, the pipe stays usable), a call on the wrong end of \
         a simplex pipe ([`Error::InvalidArgument`]), or a peer broke the \
         pipe ([`Error::Corrupt`])."
    };
    (send inner) => {
        "The value that was not sent (`()` for a `Connection`, which sends by reference)."
    };
    (put failed) => {
        "Anything else: the item could not be encoded ([`Error::Codec`]: \
         nothing was put, the queue stays usable), or a peer broke the queue \
         ([`Error::Corrupt`])."
    };
    (put inner) => {
        "The item that was not put."
    };
    (recv failed) => {
        "Anything else: the bytes do not decode as the asked type \
         ([`Error::Codec`]), a call on the wrong end of a simplex pipe \
         ([`Error::InvalidArgument`]), or a peer broke the pipe \
         ([`Error::Corrupt`])."
    };
    (get failed) => {
        "Anything else: the bytes do not decode as a `T` ([`Error::Codec`]), \
         or a peer broke the queue ([`Error::Corrupt`])."
    };
    (chan_send failed) => {
        "Anything else, with the item: it could not be encoded \
         ([`Error::Codec`]: nothing was sent, the channel stays usable), or a \
         peer broke the channel ([`Error::Corrupt`])."
    };
    (chan_send inner) => {
        "The item that was not sent."
    };
    (chan_recv failed) => {
        "Anything else: the bytes do not decode as a `T` ([`Error::Codec`]: \
         the item is lost, the channel stays usable), or a peer broke the \
         channel ([`Error::Corrupt`])."
    };
    (chan_send path) => {
        "shmproc::channel::"
    };
    (chan_send example) => {
        "Disconnected"
    };
    ($fam:ident path) => {
        "shmproc::"
    };
    ($fam:ident example) => {
        "Closed"
    };
}

/// What a `Stop::Closed` becomes: the `Closed` variant, or `Failed` with
/// [`Error::Closed`] for a typed channel's errors (a channel has no close,
/// so the engine never gives it one).
macro_rules! closed_variant {
    (chan_send; $ty:ident; $value:ident) => {
        $ty::Failed($value, Error::Closed)
    };
    (chan_recv; $ty:ident;) => {
        $ty::Failed(Error::Closed)
    };
    ($fam:ident; $ty:ident; $value:ident) => {
        $ty::Closed($value)
    };
    ($fam:ident; $ty:ident;) => {
        $ty::Closed
    };
}

/// What a `Stop::ShutDown` becomes: the `ShutDown` variant of a queue's
/// errors (`put` and `get` families), or `Failed` with [`Error::ShutDown`]
/// for the pipes' and typed channels' errors (whose ends never give it).
macro_rules! shutdown_variant {
    (put; $ty:ident; $value:ident) => {
        $ty::ShutDown($value)
    };
    (get; $ty:ident;) => {
        $ty::ShutDown
    };
    ($fam:ident; $ty:ident; $value:ident) => {
        $ty::Failed($value, Error::ShutDown)
    };
    ($fam:ident; $ty:ident;) => {
        $ty::Failed(Error::ShutDown)
    };
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

/// The `fn` of `send_errors!`: whether the error is its `timeout:`
/// variant (nothing when no `fn` was asked for).
macro_rules! is_variant {
    ($fam:ident $ty:ident [$tvar:ident] [$(#[$im:meta])* $is:ident]) => {
        $(#[$im])*
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("assert!(", family_doc!($fam path), stringify!($ty), "::", stringify!($tvar), "(()).", stringify!($is), "());")]
        /// ```
        pub fn $is(&self) -> bool {
            matches!(self, $ty::$tvar(_))
        }
    };
    ($fam:ident $ty:ident [$($tvar:ident)?] []) => {};
}

/// An error enum of the sending side (`send` or `put`, the family) whose
/// every variant holds the item that did not go (`Failed` also holds the
/// cause), with `into_inner`, Debug (the item is not printed), Display,
/// `std::error::Error`, the conversion into [`Error`], and the
/// crate-internal `from_stop`. `timeout:` names the variant a
/// `Stop::Timeout` becomes (none: `Failed` with [`Error::Timeout`]); an
/// `fn` after the variants asks whether the error is that variant. A
/// `Connection`'s errors default the item to `()`: it sends by reference,
/// so the caller still holds the value and nothing comes back (and the
/// error stays `'static`, for `Box<dyn Error>`).
macro_rules! send_errors {
    (
        $(#[$meta:meta])*
        $fam:ident: $ty:ident<T $(= $default:ty)?> $(timeout: $tvar:ident)? {
            $($(#[$vm:meta])* $var:ident => $err:expr,)*
        }
        $($(#[$im:meta])* fn $is:ident;)?
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        pub enum $ty<T $(= $default)?> {
            $($(#[$vm])* $var(T),)*
            #[doc = family_doc!($fam failed)]
            Failed(T, Error),
        }

        impl<T> $ty<T> {
            /// The error for a send of `value` that the engine ended with
            /// `stop` (a `Timeout` of a call that cannot time out, which the
            /// engine never gives, becomes `Failed`).
            pub(crate) fn from_stop(value: T, stop: Stop) -> Self {
                match stop {
                    Stop::Closed => closed_variant!($fam; $ty; value),
                    Stop::ShutDown => shutdown_variant!($fam; $ty; value),
                    Stop::Disconnected => $ty::Disconnected(value),
                    Stop::Failed(e) => $ty::Failed(value, e),
                    Stop::Timeout => timeout_variant!($ty; value; $($tvar)?),
                }
            }

            #[doc = family_doc!($fam inner)]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let e = ", family_doc!($fam path), stringify!($ty), "::", family_doc!($fam example), "(7);")]
            /// assert_eq!(e.into_inner(), 7);
            /// ```
            pub fn into_inner(self) -> T {
                match self {
                    $($ty::$var(t))|* | $ty::Failed(t, _) => t,
                }
            }

            is_variant!($fam $ty [$($tvar)?] [$($(#[$im])* $is)?]);
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

/// An error enum of the receiving side (`recv` or `get`, the family),
/// without an item, with Debug, Display, `std::error::Error`, the
/// conversion into [`Error`], and the crate-internal `from_stop` (as for
/// `send_errors!`).
macro_rules! recv_errors {
    (
        $(#[$meta:meta])*
        $fam:ident: $ty:ident $(timeout: $tvar:ident)? {
            $($(#[$vm:meta])* $var:ident => $err:expr,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vm])* $var,)*
            #[doc = family_doc!($fam failed)]
            Failed(Error),
        }

        impl $ty {
            /// The error for a receive that the engine ended with `stop`
            /// (as for the send errors' `from_stop`).
            pub(crate) fn from_stop(stop: Stop) -> Self {
                match stop {
                    Stop::Closed => closed_variant!($fam; $ty;),
                    Stop::ShutDown => shutdown_variant!($fam; $ty;),
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
    put: PutError<T> {
        /// The queue was closed ([`close`](crate::Queue::close)).
        Closed => Error::Closed,
        /// The queue was shut down ([`shutdown`](crate::Queue::shutdown);
        /// Python: `ShutDown`).
        ShutDown => Error::ShutDown,
        /// The queue stayed full and the OS confirms every consumer process
        /// gone.
        Disconnected => Error::Disconnected,
    }
}

send_errors! {
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
    put: TryPutError<T> timeout: Full {
        /// No room now.
        Full => Error::Full,
        /// As [`PutError::Closed`].
        Closed => Error::Closed,
        /// As [`PutError::ShutDown`].
        ShutDown => Error::ShutDown,
        /// Every consumer process has exited or was killed.
        Disconnected => Error::Disconnected,
    }
    /// Whether the queue was full.
    fn is_full;
}

send_errors! {
    /// Why [`Queue::put_timeout`](crate::Queue::put_timeout) or
    /// `put_deadline` did not put its item; the item comes back in every
    /// case.
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
    put: PutTimeoutError<T> timeout: Timeout {
        /// Still no room when the time ran out.
        Timeout => Error::Timeout,
        /// As [`PutError::Closed`].
        Closed => Error::Closed,
        /// As [`PutError::ShutDown`].
        ShutDown => Error::ShutDown,
        /// The queue stayed full and every consumer process has exited or
        /// was killed.
        Disconnected => Error::Disconnected,
    }
    /// Whether the time ran out.
    fn is_timeout;
}

recv_errors! {
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
    get: GetError {
        /// The queue is closed and drained.
        Closed => Error::Closed,
        /// The queue was shut down and is drained, or the shutdown was
        /// immediate ([`shutdown`](crate::Queue::shutdown); Python:
        /// `ShutDown`).
        ShutDown => Error::ShutDown,
        /// The queue is empty and the OS confirms every producer process gone.
        Disconnected => Error::Disconnected,
    }
}

recv_errors! {
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
    get: TryGetError timeout: Empty {
        /// Nothing to get now.
        Empty => Error::Empty,
        /// As [`GetError::Closed`].
        Closed => Error::Closed,
        /// As [`GetError::ShutDown`].
        ShutDown => Error::ShutDown,
        /// As [`GetError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

recv_errors! {
    /// Why [`Queue::get_timeout`](crate::Queue::get_timeout) or
    /// `get_deadline` returned no item.
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
    get: GetTimeoutError timeout: Timeout {
        /// Still nothing when the time ran out.
        Timeout => Error::Timeout,
        /// As [`GetError::Closed`].
        Closed => Error::Closed,
        /// As [`GetError::ShutDown`].
        ShutDown => Error::ShutDown,
        /// As [`GetError::Disconnected`].
        Disconnected => Error::Disconnected,
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

/// Why [`Connection::recv_bytes_into_slice`](crate::Connection::recv_bytes_into_slice)
/// wrote no message into the buffer.
///
/// # Examples
///
/// ```
/// use shmproc::{Pipe, RecvIntoError};
///
/// let (a, b) = Pipe::new()?;
/// a.send_bytes(b"too long")?;
/// let mut buf = [0u8; 4];
/// match b.recv_bytes_into_slice(&mut buf, 0) {
///     Err(RecvIntoError::BufferTooShort(msg)) => assert_eq!(msg, b"too long"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[non_exhaustive]
pub enum RecvIntoError {
    /// As [`RecvError::Closed`].
    Closed,
    /// As [`RecvError::Disconnected`].
    Disconnected,
    /// The message was longer than the room from the offset to the end of
    /// the buffer. It was received all the same (it is not left in the
    /// pipe): here it is, whole (Python: `BufferTooShort`, whose `args[0]`
    /// holds the message).
    BufferTooShort(Vec<u8>),
    /// Anything else: the offset is beyond the end of the buffer
    /// ([`Error::InvalidArgument`]: nothing was received), a call on the
    /// writing end of a simplex pipe ([`Error::InvalidArgument`]), or a
    /// peer broke the pipe ([`Error::Corrupt`]).
    Failed(Error),
}

impl RecvIntoError {
    /// The error for a receive that the engine ended with `stop` (the
    /// call waits without a deadline, so a `Timeout` never comes).
    pub(crate) fn from_stop(stop: Stop) -> Self {
        match stop {
            Stop::Closed => RecvIntoError::Closed,
            Stop::Disconnected => RecvIntoError::Disconnected,
            Stop::Failed(e) => RecvIntoError::Failed(e),
            Stop::Timeout => RecvIntoError::Failed(Error::Timeout),
            Stop::ShutDown => RecvIntoError::Failed(Error::ShutDown),
        }
    }
}

impl fmt::Debug for RecvIntoError {
    /// The message of `BufferTooShort` is shown by its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvIntoError::Closed => f.write_str("Closed"),
            RecvIntoError::Disconnected => f.write_str("Disconnected"),
            RecvIntoError::BufferTooShort(m) => write!(f, "BufferTooShort({} bytes)", m.len()),
            RecvIntoError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl fmt::Display for RecvIntoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvIntoError::Closed => fmt::Display::fmt(&Error::Closed, f),
            RecvIntoError::Disconnected => fmt::Display::fmt(&Error::Disconnected, f),
            RecvIntoError::BufferTooShort(m) => fmt::Display::fmt(&Error::BufferTooShort { len: m.len() }, f),
            RecvIntoError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for RecvIntoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvIntoError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RecvIntoError> for Error {
    fn from(e: RecvIntoError) -> Error {
        match e {
            RecvIntoError::Closed => Error::Closed,
            RecvIntoError::Disconnected => Error::Disconnected,
            RecvIntoError::BufferTooShort(m) => Error::BufferTooShort { len: m.len() },
            RecvIntoError::Failed(e) => e,
        }
    }
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
    send: SendError<T = ()> {
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
    send: TrySendError<T = ()> timeout: Full {
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
    send: SendTimeoutError<T = ()> timeout: Timeout {
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
    recv: RecvError {
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
    recv: TryRecvError timeout: Empty {
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
    recv: RecvTimeoutError timeout: Timeout {
        /// No message came in time.
        Timeout => Error::Timeout,
        /// As [`RecvError::Closed`].
        Closed => Error::Closed,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

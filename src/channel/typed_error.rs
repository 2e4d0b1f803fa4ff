//! The errors of typed channels ([`Sender`](super::Sender) and
//! [`Receiver`](super::Receiver)), in crossbeam-channel's shape: a channel
//! has no `close`, so "the other side is gone" (`Disconnected`) is the one
//! way it ends, and an item that was not sent comes back in the error.

use std::fmt;

use crate::channel::lane::Stop;
use crate::error::Error;

/// Generates one channel error enum: `$item` variants hold the item (`T`)
/// or nothing, `Failed` holds the cause (and the item); `from_stop` maps
/// the engine's [`Stop`] (a `Timeout` of a call that cannot time out,
/// which the engine never gives, and a `Closed`, which a channel never
/// gives, become `Failed`).
macro_rules! channel_errors {
    (@enum send $(#[$meta:meta])* $ty:ident $(timeout: $tvar:ident)? { $($(#[$vm:meta])* $var:ident => $err:expr,)* }) => {
        $(#[$meta])*
        #[non_exhaustive]
        pub enum $ty<T> {
            $($(#[$vm])* $var(T),)*
            /// Anything else, with the item: it could not be encoded
            /// ([`Error::Codec`]: nothing was sent, the channel stays
            /// usable), or a peer broke the channel ([`Error::Corrupt`]).
            Failed(T, Error),
        }

        impl<T> $ty<T> {
            pub(crate) fn from_stop(item: T, stop: Stop) -> Self {
                match stop {
                    Stop::Disconnected => $ty::Disconnected(item),
                    $(Stop::Timeout => $ty::$tvar(item),)?
                    Stop::Failed(e) => $ty::Failed(item, e),
                    #[allow(unreachable_patterns)]
                    other => $ty::Failed(item, other.into_error()),
                }
            }

            /// The item that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    $($ty::$var(t))|* | $ty::Failed(t, _) => t,
                }
            }

            /// Whether every receiver is gone.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected(_))
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
    (@enum recv $(#[$meta:meta])* $ty:ident $(timeout: $tvar:ident)? { $($(#[$vm:meta])* $var:ident => $err:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vm])* $var,)*
            /// Anything else: the bytes do not decode as a `T`
            /// ([`Error::Codec`]: the item is lost, the channel stays
            /// usable), or a peer broke the channel ([`Error::Corrupt`]).
            Failed(Error),
        }

        impl $ty {
            pub(crate) fn from_stop(stop: Stop) -> Self {
                match stop {
                    Stop::Disconnected => $ty::Disconnected,
                    $(Stop::Timeout => $ty::$tvar,)?
                    Stop::Failed(e) => $ty::Failed(e),
                    #[allow(unreachable_patterns)]
                    other => $ty::Failed(other.into_error()),
                }
            }

            /// Whether every sender is gone (and nothing is left).
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected)
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

channel_errors! {@enum send
    /// Why [`Sender::send`](super::Sender::send) did not send: the item
    /// comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::channel::SendError;
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// drop(rx); // nobody will receive
    /// let err = tx.send(7).unwrap_err();
    /// assert!(matches!(err, SendError::Disconnected(7)));
    /// assert_eq!(err.into_inner(), 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    SendError {
        /// Every [`Receiver`](super::Receiver) was dropped, or every
        /// process holding one died.
        Disconnected => Error::Disconnected,
    }
}

channel_errors! {@enum send
    /// Why [`Sender::try_send`](super::Sender::try_send) did not send: the
    /// item comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::channel::TrySendError;
    /// let (tx, _rx) = shmproc::channel::<u8>(1)?;
    /// tx.try_send(1)?;
    /// assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    TrySendError timeout: Full {
        /// No room now.
        Full => Error::Full,
        /// As [`SendError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

impl<T> TrySendError<T> {
    /// Whether the channel was full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = shmproc::channel::<u8>(1)?;
    /// tx.send(1)?;
    /// assert!(tx.try_send(2).unwrap_err().is_full());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

channel_errors! {@enum send
    /// Why [`Sender::send_timeout`](super::Sender::send_timeout) or
    /// [`send_deadline`](super::Sender::send_deadline) did not send: the
    /// item comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::channel::SendTimeoutError;
    /// use std::time::Duration;
    /// let (tx, _rx) = shmproc::channel::<u8>(1)?;
    /// tx.send(1)?;
    /// let r = tx.send_timeout(2, Duration::from_millis(1));
    /// assert!(matches!(r, Err(SendTimeoutError::Timeout(2))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    SendTimeoutError timeout: Timeout {
        /// No room came free in time.
        Timeout => Error::Timeout,
        /// As [`SendError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

impl<T> SendTimeoutError<T> {
    /// Whether the wait ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = shmproc::channel::<u8>(1)?;
    /// tx.send(1)?;
    /// assert!(tx.send_timeout(2, std::time::Duration::ZERO).unwrap_err().is_timeout());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }
}

channel_errors! {@enum recv
    /// Why [`Receiver::recv`](super::Receiver::recv) returned no item.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::channel::RecvError;
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// tx.send(1)?;
    /// drop(tx);
    /// assert_eq!(rx.recv()?, 1); // what was sent is received first
    /// assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    RecvError {
        /// The channel is empty and every [`Sender`](super::Sender) was
        /// dropped, or every process holding one died.
        Disconnected => Error::Disconnected,
    }
}

channel_errors! {@enum recv
    /// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no
    /// item.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::channel::TryRecvError;
    /// let (_tx, rx) = shmproc::channel::<u8>(4)?;
    /// assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    TryRecvError timeout: Empty {
        /// Nothing now.
        Empty => Error::Empty,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

impl TryRecvError {
    /// Whether the channel was empty (and senders remain).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = shmproc::channel::<u8>(4)?;
    /// assert!(rx.try_recv().unwrap_err().is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }
}

channel_errors! {@enum recv
    /// Why [`Receiver::recv_timeout`](super::Receiver::recv_timeout) or
    /// [`recv_deadline`](super::Receiver::recv_deadline) returned no item.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::channel::RecvTimeoutError;
    /// let (_tx, rx) = shmproc::channel::<u8>(4)?;
    /// let r = rx.recv_timeout(std::time::Duration::from_millis(1));
    /// assert!(matches!(r, Err(RecvTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    RecvTimeoutError timeout: Timeout {
        /// Nothing came in time.
        Timeout => Error::Timeout,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

impl RecvTimeoutError {
    /// Whether the wait ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = shmproc::channel::<u8>(4)?;
    /// assert!(rx.recv_timeout(std::time::Duration::ZERO).unwrap_err().is_timeout());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }
}

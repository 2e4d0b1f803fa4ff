//! The errors of typed channels ([`Sender`](super::Sender) and
//! [`Receiver`](super::Receiver)), in crossbeam-channel's shape, made by
//! the same macros as the `Queue`'s and the `Connection`'s (`error.rs`): a
//! channel has no `close`, so "the other side is gone" (`Disconnected`) is
//! the one way it ends, and an item that was not sent comes back in the
//! error.

use std::fmt;

use crate::channel::lane::Stop;
use crate::error::Error;

send_errors! {
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
    chan_send: SendError<T> {
        /// Every [`Receiver`](super::Receiver) was dropped, or every
        /// process holding one died.
        Disconnected => Error::Disconnected,
    }
}

send_errors! {
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
    chan_send: TrySendError<T> timeout: Full {
        /// No room now.
        Full => Error::Full,
        /// As [`SendError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
    /// Whether the channel was full.
    fn is_full;
}

send_errors! {
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
    chan_send: SendTimeoutError<T> timeout: Timeout {
        /// No room came free in time.
        Timeout => Error::Timeout,
        /// As [`SendError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
    /// Whether the wait ran out.
    fn is_timeout;
}

recv_errors! {
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
    chan_recv: RecvError {
        /// The channel is empty and every [`Sender`](super::Sender) was
        /// dropped, or every process holding one died.
        Disconnected => Error::Disconnected,
    }
}

recv_errors! {
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
    chan_recv: TryRecvError timeout: Empty {
        /// Nothing now.
        Empty => Error::Empty,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

recv_errors! {
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
    chan_recv: RecvTimeoutError timeout: Timeout {
        /// Nothing came in time.
        Timeout => Error::Timeout,
        /// As [`RecvError::Disconnected`].
        Disconnected => Error::Disconnected,
    }
}

/// `is_disconnected` (crossbeam's name) for the errors with items, and the
/// receiving errors' question for their "not now" variant.
macro_rules! questions {
    ($($ty:ident [$($t:ident)?] $pat:tt;)*) => {$(
        impl$(<$t>)? $ty$(<$t>)? {
            /// Whether every handle of the other side is gone.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use shmproc::channel::", stringify!($ty), ";")]
            #[doc = concat!("assert!(", stringify!($ty), "::Disconnected", stringify!($pat), ".is_disconnected());")]
            /// ```
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $ty::Disconnected { .. })
            }
        }
    )*};
}

questions! {
    SendError [T] (());
    TrySendError [T] (());
    SendTimeoutError [T] (());
    RecvError [] {};
    TryRecvError [] {};
    RecvTimeoutError [] {};
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

//! The outcomes of the lock-free rings' calls (the first of the crate's two
//! error tiers, as for the queues): a push that did not push gives its
//! value back, and "nothing now" is an error variant, never an `Option`.
//! Each converts into [`Error`] so `?` works in functions returning
//! [`crate::Result`], and none needs `T: Debug` to be printed.
//!
//! The rings never wait, so their `push` and `pop` are the non-blocking
//! (`try_`) form of the crate's convention; they keep the names of rtrb's
//! and crossbeam's `ArrayQueue` (see [`Producer::push`](crate::Producer::push)).
//! Each ring has its own pair, naming exactly what its calls can return:
//! only the SPSC and byte consumers learn that their producer died, and
//! only the byte producer is handed a message too long for its ring.

use std::fmt;

use crate::error::Error;

/// Why [`Producer::push`](crate::Producer::push) did not push its value;
/// the value comes back in every case.
///
/// # Examples
///
/// ```
/// use shmproc::{PushError, SpscRing};
///
/// let ring = SpscRing::<u32>::new(1)?;
/// let mut tx = ring.producer()?;
/// tx.push(1)?;
/// match tx.push(2) {
///     Err(PushError::Full(value)) => assert_eq!(value, 2),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "the value that was not pushed is inside"]
#[non_exhaustive]
pub enum PushError<T> {
    /// No free slot now (the consumer has not caught up).
    Full(T),
    /// Anything else: the consumer's position in shared memory makes no
    /// sense ([`Error::Corrupt`]: a peer is buggy or hostile; nothing was
    /// written), the other process of a fork holds the producer role now
    /// ([`Error::RoleLost`]), or a forked child could make no liveness
    /// token ([`Error::Os`]).
    Failed(T, Error),
}

/// Why [`Consumer::pop`](crate::Consumer::pop) returned no value.
///
/// # Examples
///
/// ```
/// use shmproc::{PopError, SpscRing};
///
/// let ring = SpscRing::<u32>::new(4)?;
/// let mut rx = ring.consumer()?;
/// assert!(matches!(rx.pop(), Err(PopError::Empty)));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PopError {
    /// Nothing to pop now.
    Empty,
    /// The ring is empty and the producer role is held by a process the OS
    /// confirms dead (asked at most every few milliseconds; a new producer
    /// taking the role over ends it).
    Disconnected,
    /// Anything else: the producer's position in shared memory makes no
    /// sense ([`Error::Corrupt`]; nothing was read), the other process of
    /// a fork holds the consumer role now ([`Error::RoleLost`]), or a
    /// forked child could make no liveness token ([`Error::Os`]).
    Failed(Error),
}

/// Why [`MpmcProducer::push`](crate::MpmcProducer::push) did not push its
/// value, or [`MpmcProducer::reserve`](crate::MpmcProducer::reserve) lent no
/// slot (the item is then `()`); the value comes back in every case.
///
/// # Examples
///
/// ```
/// use shmproc::{MpmcPushError, MpmcRing};
///
/// let ring = MpmcRing::<u32>::new(1)?;
/// let mut tx = ring.producer()?;
/// tx.push(1)?;
/// match tx.push(2) {
///     Err(MpmcPushError::Full(value)) => assert_eq!(value, 2),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert!(matches!(tx.reserve(), Err(MpmcPushError::Full(()))));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "the value that was not pushed is inside"]
#[non_exhaustive]
pub enum MpmcPushError<T = ()> {
    /// No free slot now (consumers have not caught up).
    Full(T),
    /// Anything else: the ring's words in shared memory make no sense
    /// ([`Error::Corrupt`]: a peer is buggy or hostile; nothing was
    /// written), or the calling thread could get no liveness token
    /// ([`Error::Os`]).
    Failed(T, Error),
}

/// Why [`MpmcConsumer::pop`](crate::MpmcConsumer::pop) returned no value,
/// or [`MpmcConsumer::peek`](crate::MpmcConsumer::peek) lent none.
///
/// # Examples
///
/// ```
/// use shmproc::{MpmcPopError, MpmcRing};
///
/// let ring = MpmcRing::<u32>::new(4)?;
/// let mut rx = ring.consumer()?;
/// assert!(matches!(rx.pop(), Err(MpmcPopError::Empty)));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum MpmcPopError {
    /// Nothing ready now (a value still being written counts as not ready,
    /// and so do the values pushed after it).
    Empty,
    /// Anything else: the ring's words in shared memory make no sense
    /// ([`Error::Corrupt`]; nothing was read), or the calling thread could
    /// get no liveness token ([`Error::Os`]).
    Failed(Error),
}

/// Why [`ByteProducer::push`](crate::ByteProducer::push) did not push its
/// message, or [`ByteProducer::reserve`](crate::ByteProducer::reserve) lent
/// no bytes. Both take the message by reference, so the caller still holds
/// it and the item is `()` (as for a
/// [`Connection`](crate::Connection)'s [`SendError`](crate::SendError)).
///
/// # Examples
///
/// ```
/// use shmproc::{BytePushError, ByteRing, Error};
///
/// let ring = ByteRing::new(64)?; // messages of up to 24 bytes
/// let mut tx = ring.producer()?;
/// tx.push(&[1; 24])?;
/// tx.push(&[2; 24])?;
/// assert!(matches!(tx.push(b"x"), Err(BytePushError::Full(()))));
/// assert!(matches!(tx.reserve(1), Err(BytePushError::Full(()))));
/// assert!(matches!(
///     tx.push(&[0; 25]),
///     Err(BytePushError::Failed((), Error::TooLarge { len: 25, max: 24 }))
/// ));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[non_exhaustive]
pub enum BytePushError<T = ()> {
    /// No room for the message now (the consumer has not caught up); a
    /// message of up to [`max_message`](crate::ByteRing::max_message)
    /// bytes always fits once the ring is drained.
    Full(T),
    /// Anything else: the message is longer than
    /// [`max_message`](crate::ByteRing::max_message)
    /// ([`Error::TooLarge`]: nothing was written, the ring stays usable),
    /// the consumer's position in shared memory makes no sense
    /// ([`Error::Corrupt`]: a peer is buggy or hostile; nothing was
    /// written), the other process of a fork holds the producer role now
    /// ([`Error::RoleLost`]), or a forked child could make no liveness
    /// token ([`Error::Os`]).
    Failed(T, Error),
}

/// Why [`ByteConsumer::pop`](crate::ByteConsumer::pop) or
/// [`pop_into`](crate::ByteConsumer::pop_into) returned no message, or
/// [`ByteConsumer::peek`](crate::ByteConsumer::peek) lent none.
///
/// # Examples
///
/// ```
/// use shmproc::{BytePopError, ByteRing};
///
/// let ring = ByteRing::new(256)?;
/// let mut rx = ring.consumer()?;
/// assert!(matches!(rx.pop(), Err(BytePopError::Empty)));
/// assert!(matches!(rx.peek(), Err(BytePopError::Empty)));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BytePopError {
    /// No message now.
    Empty,
    /// The ring is empty and the producer role is held by a process the OS
    /// confirms dead (asked at most every few milliseconds; a new producer
    /// taking the role over ends it). A message the dead producer reserved
    /// but did not commit is never seen.
    Disconnected,
    /// Anything else: the producer's position or a record header in shared
    /// memory makes no sense ([`Error::Corrupt`]: a peer is buggy or
    /// hostile; nothing was read), the other process of a fork holds the
    /// consumer role now ([`Error::RoleLost`]), or a forked child could
    /// make no liveness token ([`Error::Os`]).
    Failed(Error),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::PushError::Full(7);
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(t) | PushError::Failed(t, _) => t,
        }
    }

    /// Whether the ring was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::PushError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PushError::Full(_))
    }
}

impl<T> MpmcPushError<T> {
    /// The value that was not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::MpmcPushError::Full(7);
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            MpmcPushError::Full(t) | MpmcPushError::Failed(t, _) => t,
        }
    }

    /// Whether the ring was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::MpmcPushError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, MpmcPushError::Full(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
        }
    }
}

impl<T> fmt::Debug for MpmcPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpmcPushError::Full(_) => f.write_str("Full(..)"),
            MpmcPushError::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => fmt::Display::fmt(&Error::Full, f),
            PushError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> fmt::Display for MpmcPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpmcPushError::Full(_) => fmt::Display::fmt(&Error::Full, f),
            MpmcPushError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopError::Empty => fmt::Display::fmt(&Error::Empty, f),
            PopError::Disconnected => fmt::Display::fmt(&Error::Disconnected, f),
            PopError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for MpmcPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpmcPopError::Empty => fmt::Display::fmt(&Error::Empty, f),
            MpmcPopError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}
impl<T> std::error::Error for MpmcPushError<T> {}
impl std::error::Error for PopError {}
impl std::error::Error for MpmcPopError {}

impl<T> From<PushError<T>> for Error {
    fn from(e: PushError<T>) -> Error {
        match e {
            PushError::Full(_) => Error::Full,
            PushError::Failed(_, e) => e,
        }
    }
}

impl<T> From<MpmcPushError<T>> for Error {
    fn from(e: MpmcPushError<T>) -> Error {
        match e {
            MpmcPushError::Full(_) => Error::Full,
            MpmcPushError::Failed(_, e) => e,
        }
    }
}

impl From<PopError> for Error {
    fn from(e: PopError) -> Error {
        match e {
            PopError::Empty => Error::Empty,
            PopError::Disconnected => Error::Disconnected,
            PopError::Failed(e) => e,
        }
    }
}

impl From<MpmcPopError> for Error {
    fn from(e: MpmcPopError) -> Error {
        match e {
            MpmcPopError::Empty => Error::Empty,
            MpmcPopError::Failed(e) => e,
        }
    }
}

impl<T> BytePushError<T> {
    /// The item of the push: `()` for [`ByteProducer`](crate::ByteProducer),
    /// whose caller still holds the message.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::BytePushError::Full("msg");
    /// assert_eq!(e.into_inner(), "msg");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            BytePushError::Full(t) | BytePushError::Failed(t, _) => t,
        }
    }

    /// Whether the ring was full (the one outcome worth a retry).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(64)?;
    /// let mut tx = ring.producer()?;
    /// while tx.push(b"fill").is_ok() {}
    /// assert!(tx.push(b"more").unwrap_err().is_full());
    /// assert!(!tx.push(&[0; 100]).unwrap_err().is_full()); // too large
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, BytePushError::Full(_))
    }
}

impl<T> fmt::Debug for BytePushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytePushError::Full(_) => f.write_str("Full(..)"),
            BytePushError::Failed(_, e) => write!(f, "Failed(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for BytePushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytePushError::Full(_) => fmt::Display::fmt(&Error::Full, f),
            BytePushError::Failed(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for BytePopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BytePopError::Empty => fmt::Display::fmt(&Error::Empty, f),
            BytePopError::Disconnected => fmt::Display::fmt(&Error::Disconnected, f),
            BytePopError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> std::error::Error for BytePushError<T> {}
impl std::error::Error for BytePopError {}

impl<T> From<BytePushError<T>> for Error {
    fn from(e: BytePushError<T>) -> Error {
        match e {
            BytePushError::Full(_) => Error::Full,
            BytePushError::Failed(_, e) => e,
        }
    }
}

impl From<BytePopError> for Error {
    fn from(e: BytePopError) -> Error {
        match e {
            BytePopError::Empty => Error::Empty,
            BytePopError::Disconnected => Error::Disconnected,
            BytePopError::Failed(e) => e,
        }
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn display_debug_and_conversions() {
        let full = PushError::Full(String::from("not Debug-printed"));
        assert_eq!(format!("{full:?}"), "Full(..)");
        assert_eq!(full.to_string(), Error::Full.to_string());
        assert!(matches!(Error::from(full), Error::Full));
        let failed = PushError::Failed(1u8, Error::RoleLost);
        assert!(!failed.is_full());
        assert_eq!(failed.to_string(), Error::RoleLost.to_string());
        assert!(matches!(Error::from(failed), Error::RoleLost));

        let full = MpmcPushError::Full(3u8);
        assert_eq!(format!("{full:?}"), "Full(..)");
        assert!(matches!(Error::from(full), Error::Full));
        let failed = MpmcPushError::Failed((), Error::Corrupt { what: "test" });
        assert!(format!("{failed:?}").starts_with("Failed(.., Corrupt"));
        let () = failed.into_inner();

        assert!(matches!(Error::from(PopError::Empty), Error::Empty));
        assert!(matches!(Error::from(PopError::Disconnected), Error::Disconnected));
        assert!(matches!(Error::from(PopError::Failed(Error::RoleLost)), Error::RoleLost));
        assert_eq!(PopError::Disconnected.to_string(), Error::Disconnected.to_string());
        assert!(matches!(Error::from(MpmcPopError::Empty), Error::Empty));
        assert!(matches!(Error::from(MpmcPopError::Failed(Error::Timeout)), Error::Timeout));
        assert_eq!(MpmcPopError::Empty.to_string(), Error::Empty.to_string());

        let full = BytePushError::Full(());
        assert!(full.is_full());
        assert_eq!(format!("{full:?}"), "Full(..)");
        assert_eq!(full.to_string(), Error::Full.to_string());
        assert!(matches!(Error::from(full), Error::Full));
        let failed = BytePushError::Failed((), Error::TooLarge { len: 9, max: 8 });
        assert!(!failed.is_full());
        assert!(format!("{failed:?}").starts_with("Failed(.., TooLarge"));
        assert_eq!(failed.to_string(), Error::TooLarge { len: 9, max: 8 }.to_string());
        assert!(matches!(Error::from(failed), Error::TooLarge { len: 9, max: 8 }));
        assert_eq!(BytePushError::Failed(5u8, Error::RoleLost).into_inner(), 5);

        assert!(matches!(Error::from(BytePopError::Empty), Error::Empty));
        assert!(matches!(Error::from(BytePopError::Disconnected), Error::Disconnected));
        assert!(matches!(Error::from(BytePopError::Failed(Error::RoleLost)), Error::RoleLost));
        assert_eq!(BytePopError::Empty.to_string(), Error::Empty.to_string());
        assert_eq!(BytePopError::Disconnected.to_string(), Error::Disconnected.to_string());
        assert_eq!(BytePopError::Failed(Error::RoleLost).to_string(), Error::RoleLost.to_string());
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(BytePushError::Full(()));
        assert_eq!(boxed.to_string(), Error::Full.to_string());
    }
}

/// A pop error as a ring consumer's `try_iter` sees it: `None` ends the
/// iteration quietly (nothing there now, or the producer is gone), `Some`
/// is a failure, yielded once before the end.
pub(crate) trait IterEnd {
    fn failure(self) -> Option<Error>;
}

impl IterEnd for PopError {
    fn failure(self) -> Option<Error> {
        match self {
            PopError::Empty | PopError::Disconnected => None,
            PopError::Failed(e) => Some(e),
        }
    }
}

impl IterEnd for MpmcPopError {
    fn failure(self) -> Option<Error> {
        match self {
            MpmcPopError::Empty => None,
            MpmcPopError::Failed(e) => Some(e),
        }
    }
}

impl IterEnd for BytePopError {
    fn failure(self) -> Option<Error> {
        match self {
            BytePopError::Empty | BytePopError::Disconnected => None,
            BytePopError::Failed(e) => Some(e),
        }
    }
}

/// One step of a ring consumer's `try_iter` (all three rings): the value
/// `pop` gives, or the end, after yielding a failure once; `done` is set
/// at the end and ends every later step.
pub(crate) fn try_iter_step<T, E: IterEnd>(
    done: &mut bool,
    pop: impl FnOnce() -> std::result::Result<T, E>,
) -> Option<crate::error::Result<T>> {
    if *done {
        return None;
    }
    match pop() {
        Ok(v) => Some(Ok(v)),
        Err(e) => {
            *done = true;
            e.failure().map(Err)
        }
    }
}

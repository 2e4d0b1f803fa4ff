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
//! only the SPSC consumer learns that its producer died.

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
    }
}

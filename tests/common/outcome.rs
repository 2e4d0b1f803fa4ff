//! The rings' outcomes in the shape the older tests check them: "not now"
//! (a full or empty ring) as `None`, or as `Err(value)` for a push; any
//! failure (`Failed`) fails the test. Tests of the error variants
//! themselves match on the errors directly.
#![allow(dead_code)]

use shmproc::{BytePopError, BytePushError, MpmcPopError, MpmcPushError, PopError, PushError};

/// A push's outcome: `Ok`, or `Err(value)` if the ring was full.
pub(crate) trait Pushed<T> {
    /// Panics on a failure.
    fn pushed(self) -> Result<(), T>;
}

impl<T> Pushed<T> for Result<(), PushError<T>> {
    #[track_caller]
    fn pushed(self) -> Result<(), T> {
        match self {
            Ok(()) => Ok(()),
            Err(PushError::Full(v)) => Err(v),
            Err(e) => panic!("push: {e}"),
        }
    }
}

impl<T> Pushed<T> for Result<(), BytePushError<T>> {
    #[track_caller]
    fn pushed(self) -> Result<(), T> {
        match self {
            Ok(()) => Ok(()),
            Err(BytePushError::Full(v)) => Err(v),
            Err(e) => panic!("push: {e}"),
        }
    }
}

impl<T> Pushed<T> for Result<(), MpmcPushError<T>> {
    #[track_caller]
    fn pushed(self) -> Result<(), T> {
        match self {
            Ok(()) => Ok(()),
            Err(MpmcPushError::Full(v)) => Err(v),
            Err(e) => panic!("push: {e}"),
        }
    }
}

/// A pop's (or read loan's) outcome: `None` if the ring was empty.
pub(crate) trait Popped<T> {
    /// Panics on a failure (for the SPSC and byte rings, `Disconnected`
    /// too).
    fn popped(self) -> Option<T>;
}

impl<T> Popped<T> for Result<T, PopError> {
    #[track_caller]
    fn popped(self) -> Option<T> {
        match self {
            Ok(v) => Some(v),
            Err(PopError::Empty) => None,
            Err(e) => panic!("pop: {e}"),
        }
    }
}

impl<T> Popped<T> for Result<T, BytePopError> {
    #[track_caller]
    fn popped(self) -> Option<T> {
        match self {
            Ok(v) => Some(v),
            Err(BytePopError::Empty) => None,
            Err(e) => panic!("pop: {e}"),
        }
    }
}

impl<T> Popped<T> for Result<T, MpmcPopError> {
    #[track_caller]
    fn popped(self) -> Option<T> {
        match self {
            Ok(v) => Some(v),
            Err(MpmcPopError::Empty) => None,
            Err(e) => panic!("pop: {e}"),
        }
    }
}

/// A write loan's outcome: `None` if the ring was full.
pub(crate) trait Lent<L> {
    /// Panics on a failure.
    fn lent(self) -> Option<L>;
}

impl<L> Lent<L> for Result<L, MpmcPushError> {
    #[track_caller]
    fn lent(self) -> Option<L> {
        match self {
            Ok(l) => Some(l),
            Err(MpmcPushError::Full(())) => None,
            Err(e) => panic!("reserve: {e}"),
        }
    }
}

impl<L> Lent<L> for Result<L, BytePushError> {
    #[track_caller]
    fn lent(self) -> Option<L> {
        match self {
            Ok(l) => Some(l),
            Err(BytePushError::Full(())) => None,
            Err(e) => panic!("reserve: {e}"),
        }
    }
}

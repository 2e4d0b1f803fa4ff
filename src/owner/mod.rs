//! Owners and their liveness: how a handle learns that the processes on
//! the other side of a shared object are gone.

#[cfg(feature = "serde")]
pub(crate) mod id;
pub(crate) mod probe;
pub(crate) mod registry;
pub(crate) mod token;

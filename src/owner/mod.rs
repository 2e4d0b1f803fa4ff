//! Owners and their liveness: who holds a lock, a role or a place in an
//! object ([`id`]), whether that process lives ([`token`]: the kernel
//! answers), which processes take part in an object ([`registry`]), and
//! how often a handle may ask ([`probe`]).

pub(crate) mod id;
pub(crate) mod probe;
pub(crate) mod registry;
pub(crate) mod token;

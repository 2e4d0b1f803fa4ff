//! Rings and queues over shared memory: the lock-free SPSC and MPMC rings
//! of `T: Pod` and the byte-message ring (split producer/consumer handles,
//! batches, zero-copy loans), and the blocking `Queue` and `JoinableQueue`
//! on top.

#[cfg(feature = "serde")]
pub(crate) mod blocking;
pub(crate) mod byte_ring;
pub(crate) mod bytes;
#[cfg(feature = "serde")]
pub(crate) mod error;
#[cfg(feature = "serde")]
pub(crate) mod eventcount;
pub(crate) mod mpmc;
#[cfg(feature = "serde")]
pub(crate) mod registry;
pub(crate) mod role;
#[cfg(feature = "serde")]
pub(crate) mod spill;
pub(crate) mod spsc;

#[cfg(test)]
mod tests;

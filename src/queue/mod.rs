//! Rings and queues over shared memory: the lock-free SPSC and MPMC rings
//! of `T: Pod` and the byte-message ring (split producer/consumer handles,
//! batches, zero-copy loans), and the blocking `Queue` and `JoinableQueue`
//! on top.

pub(crate) mod byte_ring;
pub(crate) mod bytes;
pub(crate) mod error;
#[cfg(feature = "serde")]
pub(crate) mod eventcount;
pub(crate) mod mpmc;
pub(crate) mod role;
pub(crate) mod spsc;

#[cfg(test)]
mod tests;

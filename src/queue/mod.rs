//! Rings over shared memory. This release: the SPSC ring of `T: Pod`
//! with batches and zero-copy loans. The MPMC ring, the byte-message ring,
//! `Queue`, `JoinableQueue` and `Pipe` follow.

pub(crate) mod spsc;

#[cfg(all(test, shmproc_loom))]
mod tests;

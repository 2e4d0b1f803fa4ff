//! Synchronisation across processes: `Mutex<T>`, `Lock`, `RLock`,
//! `Semaphore`, `BoundedSemaphore`, `Condvar`, `Event`, `Barrier`.
//!
//! Every primitive is a `#[repr(C)]` state of atomics in a segment;
//! waiting is on shared futexes; a dead participant never makes another
//! wait forever (see `raw_mutex.rs` for the state table, `guard.rs` for recovery).

pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod guard;
pub(crate) mod lock;
pub(crate) mod mutex;
pub(crate) mod owner_word;
pub(crate) mod raw_event;
pub(crate) mod raw_mutex;
pub(crate) mod raw_semaphore;
pub(crate) mod semaphore;
pub(crate) mod waiters;

#[cfg(all(test, shmproc_loom))]
mod tests;

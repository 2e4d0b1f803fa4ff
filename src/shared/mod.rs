//! Shared data: `Value<T>` and `Array<T>` (a lock attached) and their
//! lock-free `RawValue<T>` and `RawArray<T>`: Python's
//! `multiprocessing.Value`, `Array`, `RawValue` and `RawArray`.
//!
//! `value.rs` has the layout of a `Value` and its guard; `seqlock.rs` the
//! sequence word that lets small values be read without the lock (with its
//! state table); `array.rs` the layout shared by `Array` and `RawArray`;
//! `raw.rs` the lock-free types.

pub(crate) mod array;
pub(crate) mod raw;
pub(crate) mod seqlock;
pub(crate) mod value;

#[cfg(all(test, shmproc_loom))]
mod tests;

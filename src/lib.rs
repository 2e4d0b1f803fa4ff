//! # shmproc
//!
//! What Python's `multiprocessing` gives Python programs, for Rust, built on
//! shared memory: data moves through `mmap`ed segments, waiting happens on
//! futexes, and every object survives the death of any process using it.
//!
//! This release is the foundation: shared-memory [`Segment`]s (named or
//! anonymous), typed placement of pointer-free state ([`Shared`],
//! [`Arena`], [`ShmSafe`]), and stale-object cleanup ([`cleanup_stale`]).
//! Processes, locks, queues, pools and the manager build on it.
//!
//! ## From Python
//!
//! | Python | shmproc |
//! |---|---|
//! | `SharedMemory(name, create=True, size=n)` | [`Segment::create(name, n)`](Segment::create) |
//! | `SharedMemory(name)` | [`Segment::open(name)`](Segment::open) (header checked) |
//! | `SharedMemory(name)` on a foreign object | [`Segment::open_raw(name, access)`](Segment::open_raw) |
//! | `shm.buf[a:b] = data` | [`seg.write_at(a, data)`](Segment::write_at) |
//! | `bytes(shm.buf[a:b])` | [`seg.read_at(a, buf)`](Segment::read_at) |
//! | `shm.unlink()` | [`Segment::unlink(name)`](Segment::unlink), or the creator's drop |
//! | resource tracker | [`cleanup_stale()`](cleanup_stale): removes only what dead creators left |
//!
//! ## Choosing a primitive
//!
//! - Bytes shared by name between unrelated processes: [`Segment`].
//! - A struct of atomics shared by name or with children: [`Shared<T>`](Shared).
//! - Several typed regions in one segment: [`Arena`] offsets plus
//!   [`Segment::typed`] and [`Segment::slice`].
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use shmproc::Shared;
//!
//! let hits = Shared::<AtomicU64>::anonymous(|h| h.store(0, Ordering::Relaxed))?;
//! hits.fetch_add(1, Ordering::Relaxed);
//! assert_eq!(hits.load(Ordering::Relaxed), 1);
//! # Ok::<(), shmproc::Error>(())
//! ```
//!
//! Platform: Linux (futexes, `memfd_create`, `O_TMPFILE`). README.md says
//! what macOS would need. SAFETY.md lists every unsafe invariant.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "codec")]
mod codec;
mod error;
mod loom;
#[cfg(feature = "codec")]
mod process;
mod shm;
mod sys;

pub use error::{Error, ProcessFailure, Result};
#[cfg(feature = "codec")]
pub use process::bootstrap::init;
#[cfg(feature = "codec")]
pub use process::current::{ProcessInfo, active_children, cpu_count, current_process, parent_process};
#[cfg(feature = "codec")]
pub use process::handle::{ExitStatus, Process, ProcessBuilder, Task};
#[cfg(feature = "codec")]
pub use process::start::{Context, StartMethod, set_start_method, start_method};
pub use shm::arena::Arena;
pub use shm::layout::{CachePadded, RelPtr, ShmSafe, layout_hash, layout_hash_mix};
pub use shm::segment::{Access, CleanupReport, Segment, SegmentBuilder, cleanup_stale, cleanup_stale_in};
pub use shm::typed::Shared;

//! Typed channels in crossbeam-channel's shape, across processes.
//!
//! [`channel`](crate::channel()) (`cap` items at most) and [`unbounded`]
//! make a `(Sender<T>, Receiver<T>)` pair for any serde `T` (or plain data
//! through [`Pod`], which is sent as its bytes). Both handles are `Clone`,
//! serialize (so they can be a child's argument under every start method,
//! like every anonymous shared object), and work from any number of
//! threads and processes at once: a multi-producer multi-consumer FIFO.
//!
//! A channel knows its ends: receivers get `Disconnected` once the channel
//! is empty and every [`Sender`] was dropped (in any thread of any
//! process) or its process died; senders get `Disconnected`, with their
//! item, once every [`Receiver`] is gone. So `for x in &rx` ends by itself
//! when the producers are done.
//!
//! ```
//! fn square(job: (u64, shmproc::channel::Sender<u64>)) {
//!     let (x, tx) = job;
//!     tx.send(x * x).expect("send");
//! }
//!
//! let (tx, rx) = shmproc::channel::<u64>(8)?;
//! let children: Vec<_> = (1..=3).map(|x| shmproc::Process::spawn(square, (x, tx.clone()))).collect::<Result<_, _>>()?;
//! drop(tx);
//! let mut got: Vec<u64> = rx.iter().collect::<Result<_, _>>()?;
//! got.sort();
//! assert_eq!(got, [1, 4, 9]);
//! for mut c in children {
//!     c.join()?;
//! }
//! # Ok::<(), shmproc::Error>(())
//! ```
//!
//! Every call follows the crate's waiting convention (`send`, `try_send`,
//! `send_timeout`, `send_deadline`, and the same for `recv`), with this
//! module's error types.
//!
//! # Inside
//!
//! A channel is a [`Queue`](crate::Queue) marked as a channel, and every
//! channel of the crate runs on one engine (`lane.rs`): a lane is seven words
//! and a byte buffer in shared memory, and one send/receive path that tries
//! under a robust lock, spins, sleeps on an eventcount and asks the OS
//! about dead peers. `Queue`, `JoinableQueue`, typed channels and `Pipe`
//! differ only in what ends a call (the engine's `Ends`). Messages too
//! large for the buffer travel through a spill segment (`spill.rs`, also
//! used by the process start channel and the pool), which the receiver
//! hands back to the lane for the next big message. How a typed channel
//! counts its ends is described in `typed.rs`.

#[macro_use]
pub(crate) mod error;
pub(crate) mod lane;
#[cfg(feature = "async")]
pub(crate) mod lane_async;
pub(crate) mod pipe;
pub(crate) mod post;
pub(crate) mod queue;
pub(crate) mod spill;
#[cfg(test)]
mod tests;
pub(crate) mod typed;
pub(crate) mod typed_error;
#[cfg(feature = "async")]
pub(crate) mod wait;

pub use typed::{Duplex, IntoIter, Iter, Pod, Receiver, Sender, UNBOUNDED_RING, unbounded};
pub use typed_error::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};

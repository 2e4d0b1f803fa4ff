//! Channels: `Queue`, `JoinableQueue` and `Pipe`, all over one engine
//! ([`lane`]): a lane is six words and a byte buffer in shared memory, and
//! one send/receive path that tries under a robust lock, spins, sleeps on
//! an eventcount and asks the OS about dead peers. Messages too large for
//! the buffer travel through a spill segment ([`spill`], also used by the
//! process start channel and the pool).

pub(crate) mod error;
pub(crate) mod lane;
pub(crate) mod pipe;
pub(crate) mod queue;
pub(crate) mod spill;
#[cfg(test)]
mod tests;

//! Pools of worker processes: one worker engine with two faces, Python's
//! `multiprocessing.Pool` ([`Pool`](crate::Pool)) and
//! `concurrent.futures.ProcessPoolExecutor`
//! ([`ProcessPoolExecutor`](crate::ProcessPoolExecutor)).
//!
//! Design notes are filled in below as the engine settles.

pub(crate) mod cell;
pub(crate) mod engine;
pub(crate) mod executor;
pub(crate) mod iter;
#[allow(clippy::module_inception)]
pub(crate) mod pool;
pub(crate) mod table;
pub(crate) mod wire;
pub(crate) mod worker;

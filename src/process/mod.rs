//! Processes and start methods: `Process`, fork, spawn, forkserver.

pub(crate) mod bootstrap;
mod channel;
pub(crate) mod current;
pub(crate) mod fnref;
pub(crate) mod forkserver;
pub(crate) mod handle;
pub(crate) mod loader;
pub(crate) mod spawn;
pub(crate) mod start;

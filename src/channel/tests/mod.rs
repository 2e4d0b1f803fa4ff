//! Loom models of the channel engine's waiting (`lane.rs`).

#[cfg(shmproc_loom)]
mod loom_lane;

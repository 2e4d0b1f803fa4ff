//! Loom models of the channel engine's waiting (`lane.rs`) and of a typed
//! channel's counting of its ends (`typed.rs`).

#[cfg(shmproc_loom)]
mod loom_ends;
#[cfg(shmproc_loom)]
mod loom_lane;

//! Loom models of the channel engine's waiting (`lane.rs`), of a typed
//! channel's counting of its ends (`typed.rs`) and of the hand-back slots
//! of reused spill segments (`spill.rs`).

#[cfg(shmproc_loom)]
mod loom_ends;
#[cfg(shmproc_loom)]
mod loom_lane;
#[cfg(shmproc_loom)]
mod loom_spares;

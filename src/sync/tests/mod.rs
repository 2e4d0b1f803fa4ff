//! loom models of the sync layer's futex state machines (RELIABILITY case
//! 49). Run with `.ci/loom.sh`.

mod loom_barrier;
mod loom_condvar;
mod loom_event;
mod loom_mutex;
mod loom_semaphore;

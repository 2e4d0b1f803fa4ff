//! loom models of the rings and the eventcount (RELIABILITY case 49).

mod loom_bytes;
mod loom_eventcount;
mod loom_spsc;

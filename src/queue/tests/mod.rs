//! loom models of the rings (RELIABILITY case 49).

mod loom_spsc;

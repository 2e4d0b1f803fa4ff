//! loom models of the shared-data layer. Run with `.ci/loom.sh`.

mod loom_shared;

//! Placeholder: replaced by the segment bench.
fn main() {}

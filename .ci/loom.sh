#!/usr/bin/env bash
# loom models of every futex state machine (tests named *loom*), built with
# --cfg shmproc_loom in a target directory of their own.
set -euo pipefail
export RUSTFLAGS="--cfg shmproc_loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# The async twins are built without loom (their service waits in the
# real kernel), so the models run without the `async` feature.
cargo test --release -p shmproc --lib --no-default-features --features "serde pool manager inspect" loom

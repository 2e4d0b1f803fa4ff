#!/usr/bin/env bash
# loom models of every futex state machine (tests named *loom*), built with
# --cfg shmproc_loom in a target directory of their own.
set -euo pipefail
export RUSTFLAGS="--cfg shmproc_loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
cargo test --release -p shmproc --lib loom

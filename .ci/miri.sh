#!/usr/bin/env bash
# By hand, not in .ci/run: Miri (nightly) over the pure logic (header
# validation, names, layout arithmetic). Needs `rustup component add miri
# --toolchain nightly`.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri"
export MIRIFLAGS="-Zmiri-disable-isolation"
export PROPTEST_CASES=16
cargo +nightly miri test --lib -- header::tests name::tests arena::tests layout

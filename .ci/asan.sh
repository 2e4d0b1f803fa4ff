#!/usr/bin/env bash
# By hand, not in .ci/run: AddressSanitizer (nightly) over the tests that
# parse shared state: header validation, the property tests, the
# hostile-header and ring-garbage multi-process tests, and the ring tests.
set -euo pipefail
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
# Some tests leak guards and ring roles on purpose (mem::forget) to play a
# thread that exits holding them; leaks are not what this run looks for.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/asan"
target=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly test --target "$target" --lib -- header name arena spsc channel
cargo +nightly test --target "$target" --test mp -- hostile ring
cargo +nightly test --target "$target" --test ring

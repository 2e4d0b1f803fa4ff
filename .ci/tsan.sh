#!/usr/bin/env bash
# By hand, not in .ci/run: ThreadSanitizer (nightly, std rebuilt with the
# sanitizer so its own synchronisation is visible) over the tests where
# threads of one process share a segment: the sync primitives, rings,
# queues and pipes, and the multi-process tests of the same areas (each
# helper process is instrumented too; races between processes are not
# visible to ThreadSanitizer, only those between threads of one process).
# Needs `rustup component add rust-src --toolchain nightly`.
set -euo pipefail
target=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
# Sweeps shortened: every helper runs instrumented, several times slower.
export SHMPROC_MP_SWEEP="${SHMPROC_MP_SWEEP:-5}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/tsan"
cargo +nightly test -p shmproc -Zbuild-std --target "$target" --test sync --test ring --test mpmc --test queue --test pipe --test shared
# Not the tests that start children through the fork server: its raw
# clone(2) is not supported under ThreadSanitizer. Not the case-35 tests
# either: they write garbage positions on purpose, so that a producer's
# plain copy of a payload overlaps a consumer's reads in the same helper
# (the bounded deviation SAFETY.md describes), which ThreadSanitizer
# rightly reports.
cargo +nightly test -p shmproc -Zbuild-std --target "$target" --test mp -- sync:: ring:: mpmc:: queue:: pipe:: soundness:: \
    --skip case35_garbage

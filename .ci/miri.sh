#!/usr/bin/env bash
# Miri (nightly) over the code that runs on heap memory: the SPSC, MPMC and
# byte-ring cores, the seqlock (and a Value's words), header validation,
# name and /proc/self/maps parsing, and the layout helpers. Tests that make
# liveness tokens or map segments need system calls Miri does not model and
# are skipped, as is the MPMC garbage-positions test (its bounded waits are
# measured in time, which Miri makes very slow; the native run covers it).
# Without the nightly Miri component this prints why and
# passes: .ci/run calls it, and a fresh machine may not have nightly.
set -euo pipefail
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri: skipped (no nightly toolchain with the miri component; rustup component add miri --toolchain nightly)"
    exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri"
export MIRIFLAGS="-Zmiri-disable-isolation"
export PROPTEST_CASES=8
cargo +nightly miri test -p shmproc --lib -- \
    queue::spsc::tests queue::mpmc::tests queue::bytes::tests shared::seqlock shared::value::tests \
    shm::header::tests shm::name::tests shm::arena::tests shm::layout sys::image::tests::maps sys::token::tests::tags \
    --skip a_live_readers_slot_is_not_reclaimed --skip garbage_positions_are_corrupt_not_hangs

#!/usr/bin/env bash
# By hand, not in .ci/run: AddressSanitizer (nightly) over the unit tests
# that parse shared state (header validation, names, rings, the channel),
# every multi-process test (helpers are instrumented too), and the
# thread-level tests of the primitives that share memory.
set -euo pipefail
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
# Some tests leak guards and ring roles on purpose (mem::forget) to play a
# thread that exits holding them; leaks are not what this run looks for.
# The crash tests kill children with SIGSEGV, SIGBUS, SIGFPE, SIGILL and
# SIGABRT on purpose and check that they die of that signal: ASan must not
# catch those signals itself.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/asan"
target=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly test -p shmproc --target "$target" --lib -- header name arena heap spsc channel
cargo +nightly test -p shmproc --target "$target" --test mp
cargo +nightly test -p shmproc --target "$target" --test ring --test sync --test queue --test pipe --test mpmc --test shared \
    --test segment --test issue_13 --test scale --test arena

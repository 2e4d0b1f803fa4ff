#!/usr/bin/env bash
# Clippy with warnings denied over every documented feature set: the whole
# workspace with default features, then the library alone with the core
# only and with each optional layer on its own (`-p shmproc`: in the
# workspace, the command-line tool would turn the library's default
# features back on).
set -euo pipefail
cargo clippy --workspace --all-targets -- -D warnings
for features in "" serde pool manager async; do
    echo "--- clippy -p shmproc --no-default-features --features '$features'"
    cargo clippy -p shmproc --all-targets --no-default-features --features "$features" -- -D warnings
done

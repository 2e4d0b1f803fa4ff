#!/usr/bin/env bash
# The test command README.md shows (the library and the command-line tool),
# then the library's core alone (no default features: segments, sync,
# rings, shared values, without serde).
set -euo pipefail
cargo test --release
echo "--- the core without default features"
cargo test --release -p shmproc --no-default-features

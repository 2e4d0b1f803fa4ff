#!/usr/bin/env bash
# The test command README.md shows, then the core alone (no default
# features: segments, sync, rings, shared values, without serde).
set -euo pipefail
cargo test --release
echo "--- the core without default features"
cargo test --release --no-default-features

#!/usr/bin/env bash
# The test command README.md shows.
set -euo pipefail
cargo test --release

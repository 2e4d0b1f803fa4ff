#!/usr/bin/env bash
# Clippy with warnings denied over every documented feature set: the default
# build, the core alone, and each optional layer on its own.
set -euo pipefail
cargo clippy --all-targets -- -D warnings
for features in "" serde pool manager; do
    echo "--- clippy --no-default-features --features '$features'"
    cargo clippy --all-targets --no-default-features --features "$features" -- -D warnings
done

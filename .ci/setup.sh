#!/usr/bin/env bash
# Installs what the checks and tests need on a fresh machine that has only
# the Rust toolchain.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# python3 is used by the SharedMemory interoperability test (it skips, with
# a printed reason, where python3 is missing).
if ! command -v python3 >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq python3 >/dev/null || echo "python3 not installed; its test will skip"
    fi
fi

#!/usr/bin/env bash
# rustdoc with warnings denied: the workspace (the library's pages), then the
# tool's binary on its own (its crate sets `doc = false`, since a binary
# named `shmproc` would overwrite the library's pages), in a target
# directory of its own.
set -euo pipefail
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p shmproc-cli --bin shmproc --target-dir target/cli-doc

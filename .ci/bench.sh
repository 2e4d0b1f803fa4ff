#!/usr/bin/env bash
set -euo pipefail
cargo bench --no-run

#!/usr/bin/env bash
set -euo pipefail
# The library's and the tool's benches; then the benches beside other
# crates (peers/: iceoryx2, ipc-channel, ipmpsc), apart so their build
# time shows in the log and their dependencies stay out of the others'.
cargo bench --workspace --exclude shmproc-peers --no-run
echo "--- the peer benches (shmproc-peers)"
cargo bench --no-run -p shmproc-peers

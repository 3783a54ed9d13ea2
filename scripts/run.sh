#!/usr/bin/env bash
# Quick start: build the plugins and the gateway, start a demo upstream on 127.0.0.1:8081,
# and run `tollgate run -c gateway.toml` (Ctrl-C stops both).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
cargo build --release -p tollgate -p tollgate-tests --bin tollgate --bin mock-upstream
target/release/mock-upstream 127.0.0.1:8081 &
upstream=$!
trap 'kill $upstream 2>/dev/null' EXIT
target/release/tollgate run -c "${1:-gateway.toml}"

#!/usr/bin/env bash
# Build the built-in plugins (and, with --fixtures, the test fixtures) for wasm32-wasip2.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
(cd plugins && cargo build --release --target wasm32-wasip2)
if [[ "${1:-}" == "--fixtures" ]]; then
  (cd tests/fixtures && cargo build --release --target wasm32-wasip2)
fi

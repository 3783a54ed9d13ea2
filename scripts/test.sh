#!/usr/bin/env bash
# The whole test suite: builds the Wasm plugins and fixtures, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh --fixtures
cargo test --workspace --locked "$@"

#!/usr/bin/env bash
# The whole test suite: builds the Wasm plugins and fixtures, runs the plugins' own unit tests
# natively, then every host, SDK and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh --fixtures
host_target=$(rustc -vV | sed -n 's/^host: //p')
(cd plugins && cargo test --locked --target "$host_target")
cargo test --workspace --locked "$@"

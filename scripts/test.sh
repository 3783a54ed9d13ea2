#!/usr/bin/env bash
# The whole test suite: builds the Wasm plugins and fixtures, runs the plugins' own unit tests
# natively, then every host, SDK and end-to-end test. Also builds the example plugins in
# Python and JavaScript (tools from PyPI and npm, pinned, cached under target/ and node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh --fixtures
# The Python and JavaScript example plugins (and their Rust equivalents) for the e2e tests.
scripts/build-examples.sh
host_target=$(rustc -vV | sed -n 's/^host: //p')
(cd plugins && cargo test --locked --target "$host_target")
cargo test --workspace --locked "$@"

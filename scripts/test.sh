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
# Every test in its own process (cargo-nextest): gateways started in-process share the global
# metrics recorder, so scenarios that count metrics must not see each other. The plugins and
# fixtures were built above, so the harness skips its own no-op cargo build per process.
export TOLLGATE_WASM_PREBUILT=1
if ! command -v cargo-nextest >/dev/null; then
  cargo install cargo-nextest --locked
fi
cargo nextest run --workspace --locked --no-fail-fast "$@"
cargo test --workspace --locked --doc

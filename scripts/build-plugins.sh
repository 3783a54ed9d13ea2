#!/usr/bin/env bash
# Build the built-in plugins (and, with --fixtures, the test fixtures) for wasm32-wasip2, then
# sign the built-in plugins (docs/rollout.md): a build key is made once under plugins/target/
# (tollgate-build.pem, private; tollgate-build.pub, the key gateway.toml trusts), and each
# module gets `<module>.wasm.sig`, an Ed25519 signature over its SHA-256, as
# `tollgate plugin sign` writes it. Needs openssl 3 (Ed25519 `pkeyutl -rawin`).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
(cd plugins && cargo build --release --target wasm32-wasip2)
if [[ "${1:-}" == "--fixtures" ]]; then
  (cd tests/fixtures && cargo build --release --target wasm32-wasip2)
fi

key=plugins/target/tollgate-build.pem
pub=plugins/target/tollgate-build.pub
if [[ ! -f "$key" ]]; then
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
fi
if [[ ! -f "$pub" ]]; then
  openssl pkey -in "$key" -pubout -out "$pub"
fi
# Key id: the first 16 hex digits of the SHA-256 of the raw 32-byte public key (the DER's tail).
key_id=$(openssl pkey -pubin -in "$pub" -outform DER | tail -c 32 | sha256sum | cut -c1-16)
digest=$(mktemp)
trap 'rm -f "$digest"' EXIT
for module in plugins/target/wasm32-wasip2/release/*.wasm; do
  openssl dgst -sha256 -binary "$module" >"$digest"
  sha=$(od -An -v -tx1 "$digest" | tr -d ' \n')
  signature=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$digest" | base64 -w0)
  printf '{\n  "algorithm": "ed25519",\n  "key_id": "%s",\n  "sha256": "%s",\n  "signature": "%s"\n}\n' \
    "$key_id" "$sha" "$signature" >"$module.sig"
done

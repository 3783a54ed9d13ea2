#!/usr/bin/env bash
# Build the example plugins in other languages into examples/target/:
#   python_signature.wasm   examples/python-signature (componentize-py, in a venv under target/)
#   js_ab_router.wasm       examples/js-ab-router     (componentize-js, `npm ci` from the lock file)
#   wasm32-wasip2/release/rust_signature.wasm, rust_ab_router.wasm   their Rust equivalents
# Tools come from PyPI and npm at pinned versions. Each step is skipped when its output is newer
# than its inputs, so a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=examples/target
mkdir -p "$out" target
# One build at a time (test processes may call this concurrently).
exec 9>target/.build-examples.lock
flock 9

# fresh OUTPUT INPUT...: true when OUTPUT exists and is newer than every INPUT (files or dirs).
fresh() {
  local output=$1
  shift
  [[ -e "$output" ]] || return 1
  [[ -z "$(find "$@" -newer "$output" -print -quit)" ]]
}

# --- Python: componentize-py in target/examples-venv --------------------------------------
venv=target/examples-venv
req=examples/python-signature/requirements.txt
if ! fresh "$venv/.installed" "$req"; then
  echo "build-examples: installing $(tr '\n' ' ' < "$req")into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  touch "$venv/.installed"
fi
if ! fresh "$out/python_signature.wasm" examples/python-signature/app.py wit/v0.1 "$venv/.installed"; then
  echo "build-examples: componentize-py -> $out/python_signature.wasm"
  (cd examples/python-signature &&
    "$root/$venv/bin/componentize-py" --wit-path "$root/wit/v0.1" --world plugin \
      componentize app --output "$root/$out/python_signature.wasm.tmp")
  mv "$out/python_signature.wasm.tmp" "$out/python_signature.wasm"
fi

# --- JavaScript: componentize-js from npm ---------------------------------------------------
js=examples/js-ab-router
if ! fresh "$js/node_modules/.installed" "$js/package-lock.json"; then
  echo "build-examples: npm ci in $js"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$js/node_modules/.installed"
fi
if ! fresh "$out/js_ab_router.wasm" "$js/src" "$js/package.json" wit/v0.1 "$js/node_modules/.installed"; then
  echo "build-examples: componentize-js -> $out/js_ab_router.wasm"
  (cd "$js" && npm run --silent build)
fi

# --- Rust equivalents (for comparison) ------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
(cd examples && cargo build --quiet --release --target wasm32-wasip2)
echo "build-examples: ok ($(cd "$out" && ls -1 ./*.wasm wasm32-wasip2/release/*.wasm | tr '\n' ' '))"

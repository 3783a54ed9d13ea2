#!/usr/bin/env bash
# Build the release gateway with profile-guided optimisation (PGO): an instrumented build serves
# the benchmark's workloads for a short while, and the counts it writes guide a second release
# build (which branches are hot, what to inline, how to lay out the code). The result is the same
# program with the same features and limits; only its machine code is arranged differently.
#
#   scripts/build-pgo.sh [--seconds N] [--cases "empty headers5 ..."] [--keep-profile]
#
# Output: target/pgo/x86_64-unknown-linux-gnu/release/tollgate (about 30 minutes on 2 cores:
# two fat-LTO release builds and a minute of training). Needs rustup's `llvm-tools` component
# (installed when missing) for `llvm-profdata`, and what `scripts/bench-vs-nginx.sh` needs
# (nginx, wrk; Redis for `chain7-redis`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECONDS_PER_CASE=3
CASES="empty empty-log headers5 chain7 chain7-redis jwt-rs256 json-empty json-redact"
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) SECONDS_PER_CASE=$2; shift 2;;
    --cases) CASES=$2; shift 2;;
    --keep-profile) KEEP=1; shift;;
    -h|--help) sed -n '2,12p' "$0"; exit 0;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done

HOST=$(rustc -vV | sed -n 's/^host: //p')
TARGET_DIR=$ROOT/target/pgo
BIN=$TARGET_DIR/$HOST/release/tollgate
PROFILES=$TARGET_DIR/profiles
MERGED=$TARGET_DIR/merged.profdata

# `--target` keeps RUSTFLAGS off build scripts and proc macros: only the gateway's own code
# (and the crates it links) is instrumented and then optimised.
build() { RUSTFLAGS="$1" cargo build --release -p tollgate --target "$HOST" --target-dir "$TARGET_DIR"; }

profdata() { find "$(rustc --print sysroot)" -name llvm-profdata -type f | head -1; }
PROFDATA=$(profdata)
[ -n "$PROFDATA" ] || { rustup component add llvm-tools; PROFDATA=$(profdata); }
[ -x "$PROFDATA" ] || { echo "llvm-profdata not found (rustup component add llvm-tools)" >&2; exit 1; }

echo "[pgo] 1/4 instrumented build"
rm -rf "$PROFILES"
build "-Cprofile-generate=$PROFILES"
cp "$BIN" "$TARGET_DIR/tollgate-instrumented"

echo "[pgo] 2/4 training: $CASES, $SECONDS_PER_CASE s each"
scripts/build-plugins.sh
scripts/bench-vs-nginx.sh --no-build --tollgate "$TARGET_DIR/tollgate-instrumented" \
  --cases "$CASES" --duration "$SECONDS_PER_CASE" --rounds 1 --fixed-duration 0 \
  --out "$TARGET_DIR/training" >/dev/null
ls "$PROFILES"/*.profraw >/dev/null 2>&1 || { echo "training wrote no profile" >&2; exit 1; }

echo "[pgo] 3/4 merge"
"$PROFDATA" merge -o "$MERGED" "$PROFILES"
[ "$KEEP" = 1 ] || rm -rf "$PROFILES"

echo "[pgo] 4/4 optimised build"
# Code the training never ran (errors, TLS, the admin API) is compiled as well, as code LLVM
# takes to be cold.
build "-Cprofile-use=$MERGED"
echo "[pgo] built $BIN"

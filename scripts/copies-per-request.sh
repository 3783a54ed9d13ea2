#!/usr/bin/env bash
# What one request copies and allocates, counted exactly: uprobes on libc's `memmove` (with its
# length and caller) and on mimalloc's allocation entry points, for one case of a kept
# `scripts/bench-vs-nginx.sh --out DIR` run (its configs and upstream), with the benchmark's
# pinning (the gateway and the nginx upstream on CPU 0, wrk on CPU 1). Counts, not times: the
# figures are the same on a quiet machine and a noisy one, which makes them the measure to
# compare builds by when rps moves more between runs than between builds (docs/performance.md).
#
#   [TOP=20] scripts/copies-per-request.sh TOLLGATE_BIN DIR CASE
#
# Prints memmove calls and bytes per request, allocations per request, and the TOP call sites
# of memmove by bytes (the caller resolved through its inlined frames with `addr2line -i`).
# Copies the compiler writes inline (small, fixed sizes) are not calls and are not counted.
# Events are recorded from just before the load starts until it ends; the plugin cases' counts
# vary by 10-15 % between runs (their pools make instances in the background).
# Needs root (perf probe) and a binary with line tables (`debug = "line-tables-only"`, as the
# release profile builds it). The probes are removed again on exit.
set -euo pipefail
BIN=$(readlink -f "$1") DIR=$2 CASE=$3
. "$(dirname "$0")/bench-case.sh"
LIBC=$(ldd "$BIN" | awk '/libc\.so/{print $3}')
DATA=$(mktemp -d) GW="" CASE_DIR=$DIR
cleanup() { perf probe -q -d 'tgcopy:*' 2>/dev/null || true; rm -rf "$DATA"; stop_case; }
trap cleanup EXIT
perf probe -q -d 'tgcopy:*' 2>/dev/null || true
# glibc picks its memmove (which memcpy shares) by CPU; probe the variants this CPU may use.
probed=0
for impl in __memmove_avx_unaligned_erms __memmove_evex_unaligned_erms __memmove_avx512_unaligned_erms \
  __memmove_sse2_unaligned_erms; do
  perf probe -q -x "$LIBC" -a "tgcopy:memmove$probed=$impl len=%dx:u64 ret=+0(%sp):x64" 2>/dev/null \
    && probed=$((probed + 1))
done
[ "$probed" -gt 0 ] || { echo "no memmove of $LIBC could be probed" >&2; exit 2; }
for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
  perf probe -q -x "$BIN" -a "tgcopy:$f=$f"
done
start_case "$BIN" "$DIR" "$CASE" "$DIR/$CASE.toml" "$DIR/copies-per-request.log"
trap cleanup EXIT
taskset -c 1 wrk -t1 -c64 -d1s "${HDR[@]}" "$URL" >/dev/null   # warm-up
perf record -q -e 'tgcopy:*' -o "$DATA/perf.data" -p "$GW" >/dev/null 2>&1 &
REC=$!
sleep 0.3   # perf attaches
REQ=$(taskset -c 1 wrk -t1 -c64 -d2s "${HDR[@]}" "$URL" | awk '/requests in/{print $1}')
kill -INT "$REC"
wait "$REC" || true
perf script -i "$DATA/perf.data" -F event,trace --show-mmap-events 2>/dev/null \
  | python3 "$(dirname "$0")/copies_per_request.py" "$BIN" "$REQ" "${TOP:-20}"

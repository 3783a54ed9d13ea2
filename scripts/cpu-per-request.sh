#!/usr/bin/env bash
# CPU time and context switches per request of one gateway process, for one case of a kept
# `scripts/bench-vs-nginx.sh --out DIR` run (its configs and upstream), with the same pinning:
# the gateway and the nginx upstream on CPU 0, wrk on CPU 1 (docs/performance.md).
#
#   [CONNS=64] scripts/cpu-per-request.sh TOLLGATE_BIN DIR CASE [SECONDS] [--threads]
#
# Prints rps, user and system CPU µs per request (from /proc/PID/stat around the wrk run) and
# context switches per request (all of the gateway's threads); `--threads` adds one line per
# thread (voluntary and involuntary switches per request, CPU ticks).
set -euo pipefail
BIN=$1 DIR=$2 CASE=$3 SECS=${4:-4} THREADS=${5:-}
. "$(dirname "$0")/bench-case.sh"
start_case "$BIN" "$DIR" "$CASE" "$DIR/$CASE.toml" "$DIR/cpu-per-request.log"
taskset -c 1 wrk -t1 -c64 -d2s "${HDR[@]}" "$URL" >/dev/null   # warm-up

threads() { # tid comm voluntary involuntary ticks
  for t in /proc/"$GW"/task/*; do
    printf '%s %s %s %s\n' "$(basename "$t")" "$(tr ' ' _ <"$t/comm")" \
      "$(awk '/^voluntary_ctxt/{v=$2} /^nonvoluntary_ctxt/{n=$2} END{print v, n}' "$t/status")" \
      "$(awk '{print $14 + $15}' "$t/stat")"
  done | sort
}
read -r u0 s0 < <(awk '{print $14, $15}' /proc/"$GW"/stat)
threads >"$DIR/threads.0"
OUT=$(taskset -c 1 wrk -t1 -c"${CONNS:-64}" -d"${SECS}s" "${HDR[@]}" "$URL")
read -r u1 s1 < <(awk '{print $14, $15}' /proc/"$GW"/stat)
threads >"$DIR/threads.1"
REQ=$(awk '/requests in/{print $1}' <<<"$OUT")
TCK=$(getconf CLK_TCK)
join "$DIR/threads.0" "$DIR/threads.1" | awk -v r="$REQ" -v s="$SECS" -v name="$CASE" \
  -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v tck="$TCK" -v each="$THREADS" '
  { dv = $7 - $3; dn = $8 - $4; cs += dv + dn
    if (each == "--threads" && dv + dn + $9 - $5 > 0)
      line[NR] = sprintf("  %-8s %-18s voluntary/req %.3f  involuntary/req %.3f  ticks %d", $1, $2, dv / r, dn / r, $9 - $5) }
  END {
    printf "%s: %.0f rps, user %.1f us/req, sys %.1f us/req, %.3f context switches/req\n",
      name, r / s, du / tck / r * 1e6, ds / tck / r * 1e6, cs / r
    for (i in line) print line[i] }'

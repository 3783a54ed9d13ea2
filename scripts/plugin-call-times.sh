#!/usr/bin/env bash
# Per-plugin call times under load, as the gateway itself records them, for one case of a kept
# `scripts/bench-vs-nginx.sh --out DIR` run (its configs and upstream), with the same pinning:
# the gateway and the nginx upstream on CPU 0, wrk on CPU 1 (docs/performance.md).
#
#   [ADMIN_PORT=19191] scripts/plugin-call-times.sh TOLLGATE_BIN DIR CASE [SECONDS]
#
# Prints rps, then each plugin's p50 call time in microseconds from `GET /admin/plugins` (four
# buckets per power of two). Wall time per call, so a noisy machine moves it less than it moves
# rps: the median ignores the calls that a preemption or a stolen tick stretched.
set -euo pipefail
BIN=$1 DIR=$2 CASE=$3 SECS=${4:-4}
. "$(dirname "$0")/bench-case.sh"
ADMIN=127.0.0.1:${ADMIN_PORT:-19191}
CONFIG="$DIR/$CASE-call-times.toml"
[ -f "$DIR/$CASE.toml" ] && { cat "$DIR/$CASE.toml"; printf '\n[admin]\naddr = "%s"\n' "$ADMIN"; } >"$CONFIG"
start_case "$BIN" "$DIR" "$CASE" "$CONFIG" "$DIR/plugin-call-times.log"
OUT=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "${HDR[@]}" "$URL")
printf '%s: %s rps;' "$CASE" "$(awk '/Requests\/sec/{printf "%.0f", $2}' <<<"$OUT")"
curl -s --noproxy '*' "http://$ADMIN/admin/plugins" | python3 -c '
import json, sys
plugins = sorted(json.load(sys.stdin)["plugins"], key=lambda p: p["name"])
print("".join(" %s %.2f us" % (p["name"], p["call_ms"]["p50"] * 1000) for p in plugins))'

#!/usr/bin/env bash
# Two builds side by side on one case, for a machine too noisy for back-to-back runs: both
# gateways (each with the nginx upstream of its kept `scripts/bench-vs-nginx.sh --out DIR` run)
# are up at once on CPU 0, and short `wrk -c64` bursts on CPU 1 alternate between them, A then B
# in odd rounds and B then A in even ones. Prints each burst's rps, the means and the median of
# the per-round B/A ratios. Run it once with the same build as A and B to see the method's
# spread on the machine of the day.
#
#   scripts/bench-ab.sh CASE ROUNDS SECONDS BIN_A DIR_A BIN_B DIR_B
#
# DIR_A and DIR_B must come from two separate bench-vs-nginx.sh runs (their ports differ).
set -euo pipefail
CASE=$1 ROUNDS=$2 SECS=$3 BIN_A=$4 DIR_A=$5 BIN_B=$6 DIR_B=$7
nginx=$(command -v nginx || echo /usr/sbin/nginx)
PIDS=()
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "$DIR_A" "$DIR_B"; do [ -f "$d/upstream.pid" ] && kill "$(cat "$d/upstream.pid")" 2>/dev/null; done
  true
}
trap stop EXIT
url() { # DIR: the case's URL
  local port path=/
  port=$(sed -n 's/^addr = "127.0.0.1:\([0-9]*\)"/\1/p' "$1/$CASE.toml" | head -1)
  case $CASE in json-*) path=/redact.json;; esac
  echo "http://127.0.0.1:$port$path"
}
HDR=()
case $CASE in chain7*) HDR=(-H "x-api-key: bench-key-0123456789abcdef0123456789");; esac
for side in "$BIN_A $DIR_A" "$BIN_B $DIR_B"; do
  read -r bin dir <<<"$side"
  [ -f "$dir/$CASE.toml" ] || { echo "no $dir/$CASE.toml: run bench-vs-nginx.sh --out $dir first" >&2; exit 2; }
  taskset -c 0 "$nginx" -c "$dir/upstream.conf" -p "$dir" >/dev/null 2>&1 &
  taskset -c 0 "$bin" run -c "$dir/$CASE.toml" >"$dir/bench-ab.log" 2>&1 &
  PIDS+=($!)
done
URL_A=$(url "$DIR_A") URL_B=$(url "$DIR_B")
for u in "$URL_A" "$URL_B"; do
  for _ in $(seq 50); do curl -s --noproxy '*' -o /dev/null "${HDR[@]}" "$u" && break; sleep 0.2; done
  taskset -c 1 wrk -t1 -c64 -d2s "${HDR[@]}" "$u" >/dev/null   # warm-up
done
for i in $(seq "$ROUNDS"); do
  order="A B"; [ $((i % 2)) = 0 ] && order="B A"
  for side in $order; do
    u=$URL_A; [ "$side" = B ] && u=$URL_B
    rps=$(taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "${HDR[@]}" "$u" | awk '/Requests\/sec/{print $2}')
    echo "$i $side $rps"
  done
done | python3 -c '
import statistics, sys
rounds = {}
for line in sys.stdin:
    print(line, end="")
    i, side, rps = line.split()
    rounds.setdefault(i, {})[side] = float(rps)
pairs = [r for r in rounds.values() if len(r) == 2]
a = statistics.mean(r["A"] for r in pairs); b = statistics.mean(r["B"] for r in pairs)
ratios = sorted(r["B"] / r["A"] for r in pairs)
print(f"mean A {a:,.0f} rps, B {b:,.0f} rps; B/A of the means {b / a:.3f}, median of {len(pairs)} pairs {statistics.median(ratios):.3f} (from {ratios[0]:.2f} to {ratios[-1]:.2f})")
'

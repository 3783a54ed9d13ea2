# Sourced by the per-case measurement scripts (cpu-per-request.sh, plugin-call-times.sh): start
# one case of a kept `scripts/bench-vs-nginx.sh --out DIR` run with the benchmark's pinning (the
# nginx upstream and the gateway on CPU 0) and wait for its first answer.
#
#   start_case BIN DIR CASE CONFIG LOG
#
# Sets GW (the gateway's pid), URL and HDR (the case's request), and stops both servers on exit.

start_case() {
  local bin=$1 dir=$2 case=$3 config=$4 log=$5 nginx port
  [ -f "$dir/$case.toml" ] || { echo "no $dir/$case.toml: run bench-vs-nginx.sh --out $dir first" >&2; exit 2; }
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  CASE_DIR=$dir GW=""
  trap stop_case EXIT
  taskset -c 0 "$nginx" -c "$dir/upstream.conf" -p "$dir" >/dev/null 2>&1 &
  port=$(sed -n 's/^addr = "127.0.0.1:\([0-9]*\)"/\1/p' "$dir/$case.toml" | head -1)
  taskset -c 0 "$bin" run -c "$config" >"$log" 2>&1 &
  GW=$!
  URL="http://127.0.0.1:$port/" HDR=()
  case $case in json-*) URL="http://127.0.0.1:$port/redact.json";; esac
  case $case in chain7*) HDR=(-H "x-api-key: bench-key-0123456789abcdef0123456789");; esac
  for _ in $(seq 50); do curl -s --noproxy '*' -o /dev/null "${HDR[@]}" "$URL" && break; sleep 0.2; done
}

stop_case() {
  [ -n "$GW" ] && kill "$GW" 2>/dev/null && wait "$GW" 2>/dev/null
  [ -f "$CASE_DIR/upstream.pid" ] && kill "$(cat "$CASE_DIR/upstream.pid")" 2>/dev/null
  true
}

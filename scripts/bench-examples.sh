#!/usr/bin/env bash
# Per-call cost and memory of the example plugins in Python and JavaScript against their Rust
# equivalents: one release gateway per plugin (pool_size 2, same config as the e2e test), each
# route driven by oha at a fixed concurrency; prints p50/p99 latency added over an empty chain,
# throughput, and the gateway's RSS with the plugin loaded minus an empty gateway's.
#
#   scripts/bench-examples.sh [REQUESTS]      (default 4000 per target)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-4000}"
conns="${BENCH_CONNECTIONS:-8}"
command -v oha >/dev/null || cargo install oha --locked
scripts/build-examples.sh
cargo build --release -p tollgate -p tollgate-tests --bin tollgate --bin mock-upstream

work=target/bench-examples
rm -rf "$work" && mkdir -p "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ex="$PWD/examples/target"
up_port=$(free_port)
secret=0123456789abcdef-example-secret

plugin_toml() { # name -> [plugins.p] block
  case $1 in
    empty) ;;
    python-signature|rust-signature)
      local module="$ex/python_signature.wasm" mem=96
      [[ $1 == rust-signature ]] && module="$ex/wasm32-wasip2/release/rust_signature.wasm" && mem=32
      printf '[plugins.p]\nmodule = "%s"\nmemory_limit_mb = %s\ntimeout_ms = 1000\n[plugins.p.config]\nsecret = "%s"\n' "$module" "$mem" "$secret" ;;
    js-ab-router|rust-ab-router)
      local module="$ex/js_ab_router.wasm" mem=64
      [[ $1 == rust-ab-router ]] && module="$ex/wasm32-wasip2/release/rust_ab_router.wasm" && mem=32
      printf '[plugins.p]\nmodule = "%s"\nmemory_limit_mb = %s\ntimeout_ms = 1000\n[plugins.p.config]\nsticky_header = "x-visitor-id"\nvariants = [{ name = "a", weight = 50 }, { name = "b", weight = 50 }]\n' "$module" "$mem" ;;
  esac
}

RUST_LOG=warn target/release/mock-upstream "127.0.0.1:$up_port" 2>"$work/upstream.log" &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
targets=(empty rust-signature python-signature rust-ab-router js-ab-router)
declare -A port
for t in "${targets[@]}"; do
  port[$t]=$(free_port)
  chain='[]'; [[ $t != empty ]] && chain='["p"]'
  cat > "$work/$t.toml" <<TOML
[gateway]
cache_dir = "$PWD/$work/cache"
watch = false
[[listeners]]
addr = "127.0.0.1:${port[$t]}"
[upstreams.up]
targets = ["127.0.0.1:$up_port"]
[[routes]]
name = "r"
path_prefix = "/"
upstream = "up"
chain = $chain
$(plugin_toml "$t")
TOML
  RUST_LOG=warn target/release/tollgate run -c "$work/$t.toml" 2>"$work/$t.log" &
  pids+=($!)
  eval "pid_${t//-/_}=$!"
done
for t in "${targets[@]}"; do
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:${port[$t]}/ready" && break; sleep 0.1; done
done

# A signed request (the signature plugins check method, path, timestamp and body hash).
ts=$(date +%s)
body='{"order":42}'
sig=$(python3 -c "import hmac,hashlib,sys; b=sys.argv[3].encode(); print(hmac.new(sys.argv[1].encode(), '\n'.join(['POST','/api/orders',sys.argv[2],hashlib.sha256(b).hexdigest()]).encode(), hashlib.sha256).hexdigest())" "$secret" "$ts" "$body")
for t in "${targets[@]}"; do
  url="http://127.0.0.1:${port[$t]}/api/orders"
  oha --no-tui -n 500 -c "$conns" -m POST -d "$body" -H "x-timestamp: $ts" -H "x-signature: $sig" -H "x-visitor-id: v1" "$url" >/dev/null
  oha --no-tui --output-format json -n "$n" -c "$conns" -m POST -d "$body" -H "x-timestamp: $ts" \
    -H "x-signature: $sig" -H "x-visitor-id: v1" "$url" > "$work/$t.json"
  pidvar="pid_${t//-/_}"
  grep VmRSS "/proc/${!pidvar}/status" | awk '{print $2}' > "$work/$t.rss"
done

python3 - "$work" "${targets[@]}" <<'PY'
import json, sys
work, targets = sys.argv[1], sys.argv[2:]
res = {}
for t in targets:
    d = json.load(open(f"{work}/{t}.json"))
    s, p = d["summary"], d["latencyPercentiles"]
    codes = d.get("statusCodeDistribution", {})
    res[t] = (s["requestsPerSec"], p["p50"] * 1e6, p["p99"] * 1e6, int(open(f"{work}/{t}.rss").read()), codes)
e = res["empty"]
print(f"{'target':18} {'req/s':>8} {'p50 us':>8} {'p99 us':>8} {'+p50 us':>8} {'RSS MiB':>8} {'+RSS MiB':>8}  status")
for t, (rps, p50, p99, rss, codes) in res.items():
    print(f"{t:18} {rps:8.0f} {p50:8.0f} {p99:8.0f} {p50-e[1]:8.0f} {rss/1024:8.1f} {(rss-e[3])/1024:8.1f}  {codes}")
PY

#!/usr/bin/env bash
# Benchmark: direct to the upstream vs through the gateway with an empty chain, a chain of five
# `headers` plugins, and auth (API key) + rate-limit + meter with the state in memory and in Redis,
# and the cost of `redact` on a few-KB JSON response. Open-loop load (oha at a fixed request rate with latency correction), all on
# 127.0.0.1. Prints throughput ratios and p50/p99 at a common rate; compare ratios, not absolutes.
#
#   scripts/bench.sh [SECONDS]      (default 8 seconds per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
conns="${BENCH_CONNECTIONS:-32}"

if ! command -v oha >/dev/null; then
  echo "installing oha (open-loop HTTP load generator) from crates.io..."
  cargo install oha --locked
fi
scripts/build-plugins.sh
cargo build --release -p tollgate -p tollgate-tests --bin tollgate --bin mock-upstream

work=target/bench
mkdir -p "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up_port=$(free_port); gw_port=$(free_port); gw_redis_port=$(free_port)
key=bench-key-0123456789abcdef0123456789
key_hash=$(python3 -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())" "$key")

plugin_dir="$PWD/plugins/target/wasm32-wasip2/release"
# write_config PORT STATE_TOML
write_config() {
  cat <<TOML
[gateway]
plugin_dir = "$plugin_dir"
cache_dir = "$PWD/$work/cache"
watch = false

$2

[[listeners]]
addr = "127.0.0.1:$1"

[upstreams.up]
targets = ["127.0.0.1:$up_port"]

[[routes]]
name = "empty"
path_prefix = "/empty"
upstream = "up"

[[routes]]
name = "chain5"
path_prefix = "/chain5"
upstream = "up"
chain = ["h1", "h2", "h3", "h4", "h5"]

[[routes]]
name = "secure"
path_prefix = "/secure"
upstream = "up"
chain = ["auth", "rate-limit", "meter"]

[plugins.auth]
module = "auth"
[plugins.auth.config]
methods = ["api_key"]
api_key = { keys = [{ hash = "$key_hash", consumer = "bench", plan = "free" }] }

[plugins.rate-limit]
module = "rate-limit"
[plugins.rate-limit.config]
limit = 100000000
period = "1s"
key = ["consumer"]

[plugins.meter]
module = "meter"
[plugins.meter.config]
retention_days = 1

# Redaction case: the same few-KB JSON response (the upstream echoes the x-pii-* request
# headers) through an empty chain and through redact.
[[routes]]
name = "redact"
path_prefix = "/redact"
upstream = "up"
chain = ["redact"]

[plugins.redact]
module = "redact"
[plugins.redact.config]
fields = ["x-pii-1"]
detectors = ["email", "card", "ipv4", "phone"]
TOML
  for i in 1 2 3 4 5; do
    printf '\n[plugins.h%s]\nmodule = "headers"\n[plugins.h%s.config]\nrequest.set = { "x-bench-%s" = "%s" }\n' "$i" "$i" "$i" "$i"
  done
}
write_config "$gw_port" "" > "$work/gateway.toml"
write_config "$gw_redis_port" "[state]
backend = \"redis\"
key_prefix = \"tollgate-bench-$$:\"
timeout_ms = 1000" > "$work/gateway-redis.toml"

RUST_LOG=warn target/release/mock-upstream "127.0.0.1:$up_port" 2>"$work/upstream.log" &
up_pid=$!
RUST_LOG=warn target/release/tollgate run -c "$work/gateway.toml" 2>"$work/gateway.log" &
gw_pid=$!
RUST_LOG=warn target/release/tollgate run -c "$work/gateway-redis.toml" 2>"$work/gateway-redis.log" &
gw_redis_pid=$!
trap 'kill $up_pid $gw_pid $gw_redis_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$gw_port/chain5/ready" >/dev/null 2>&1 &&
    curl -fs -H "x-api-key: $key" "http://127.0.0.1:$gw_redis_port/secure/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

declare -A url=(
  [direct]="http://127.0.0.1:$up_port/direct/x"
  [empty]="http://127.0.0.1:$gw_port/empty/x"
  [chain5]="http://127.0.0.1:$gw_port/chain5/x"
  [secure]="http://127.0.0.1:$gw_port/secure/x"
  [secure-redis]="http://127.0.0.1:$gw_redis_port/secure/x"
)
targets=(direct empty chain5 secure secure-redis)
# Redaction case: 16 x-pii-* headers of ~200 bytes each make the echoed JSON a few KB.
url[json-empty]="http://127.0.0.1:$gw_port/empty/json"
url[json-redact]="http://127.0.0.1:$gw_port/redact/json"
json_targets=(json-empty json-redact)
pii_headers=()
for i in $(seq 16); do
  pii_headers+=(-H "x-pii-$i: user $i alice.$i@example.com card 4111 1111 1111 1111 from 203.0.113.$i tel +44 20 7946 0958 note lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor")
done
run_oha() { # name rate seconds -> json file
  local extra=()
  [[ $1 == json-* ]] && extra=("${pii_headers[@]}")
  oha --no-tui --output-format json -z "${3}s" -c "$conns" -q "$2" --latency-correction \
    -H "x-api-key: $key" "${extra[@]}" "${url[$1]}" > "$work/$1-$2.json"
}

echo "warm-up..."
for t in "${targets[@]}"; do oha --no-tui -z 2s -c "$conns" -H "x-api-key: $key" "${url[$t]}" >/dev/null; done

# 1. Capacity: offer far more than a 2-core machine can serve; the achieved rate is the capacity.
offered=200000
for t in "${targets[@]}"; do run_oha "$t" "$offered" "$secs"; done
# 2. Latency at a common rate: half of the empty chain's capacity.
half=$(python3 -c "import json;print(int(json.load(open('$work/empty-$offered.json'))['summary']['requestsPerSec']/2))")
for t in "${targets[@]}"; do run_oha "$t" "$half" "$secs"; done
# 3. Redaction: capacity, then latency at half the slower JSON target's capacity.
for t in "${json_targets[@]}"; do oha --no-tui -z 2s -c "$conns" "${pii_headers[@]}" "${url[$t]}" >/dev/null; done
for t in "${json_targets[@]}"; do run_oha "$t" "$offered" "$secs"; done
json_half=$(python3 -c "import json;print(int(min(json.load(open('$work/'+t+'-$offered.json'))['summary']['requestsPerSec'] for t in ('json-empty','json-redact'))/2))")
for t in "${json_targets[@]}"; do run_oha "$t" "$json_half" "$secs"; done
json_bytes=$(curl -s "${pii_headers[@]}" "${url[json-empty]}" | wc -c)
redacted_bytes=$(curl -s "${pii_headers[@]}" "${url[json-redact]}" | wc -c)

python3 - "$work" "$offered" "$half" "$json_half" "$json_bytes" "$redacted_bytes" <<'PY'
import json, sys
work, offered, half = sys.argv[1], sys.argv[2], sys.argv[3]
json_half, json_bytes, redacted_bytes = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def load(name, rate):
    d = json.load(open(f"{work}/{name}-{rate}.json"))
    s, p = d["summary"], d["latencyPercentiles"]
    return s["requestsPerSec"], s["successRate"], p["p50"] * 1e6, p["p99"] * 1e6
names = ("direct", "empty", "chain5", "secure", "secure-redis")
cap = {t: load(t, offered) for t in names}
lat = {t: load(t, half) for t in names}
print(f"\ncapacity (open loop, offered {offered} req/s):")
for t, (rps, ok, p50, p99) in cap.items():
    print(f"  {t:12} {rps:9.0f} req/s  success {ok*100:5.1f}%")
print(f"\nlatency at {half} req/s (half the empty chain's capacity), corrected for coordinated omission:")
for t, (rps, ok, p50, p99) in lat.items():
    print(f"  {t:12} p50 {p50:8.0f} us   p99 {p99:8.0f} us   achieved {rps:8.0f} req/s  success {ok*100:5.1f}%")
print("\nratios:")
print(f"  empty chain / direct     throughput {cap['empty'][0]/cap['direct'][0]:.2f}")
print(f"  5 plugins / empty chain  throughput {cap['chain5'][0]/cap['empty'][0]:.2f}")
print(f"  auth+rate-limit+meter / empty, memory state  throughput {cap['secure'][0]/cap['empty'][0]:.2f}")
print(f"  auth+rate-limit+meter / empty, Redis state   throughput {cap['secure-redis'][0]/cap['empty'][0]:.2f}")
print(f"  added p50 by the gateway {lat['empty'][2]-lat['direct'][2]:.0f} us, p99 {lat['empty'][3]-lat['direct'][3]:.0f} us")
print(f"  added p50 by 5 plugins   {lat['chain5'][2]-lat['empty'][2]:.0f} us, p99 {lat['chain5'][3]-lat['empty'][3]:.0f} us")

jcap = {t: load(t, offered) for t in ("json-empty", "json-redact")}
jlat = {t: load(t, json_half) for t in ("json-empty", "json-redact")}
kb = json_bytes / 1024
print(f"\nredaction of a {json_bytes}-byte JSON response ({redacted_bytes} bytes after), empty chain vs redact:")
for t in jcap:
    rps, ok, _, _ = jcap[t]
    _, ok2, p50, p99 = jlat[t]
    print(f"  {t:12} capacity {rps:8.0f} req/s ({ok*100:5.1f}% ok)   at {json_half} req/s: p50 {p50:6.0f} us  p99 {p99:6.0f} us ({ok2*100:5.1f}% ok)")
added = jlat['json-redact'][2] - jlat['json-empty'][2]
per_req = 1e6 / jcap['json-redact'][0] - 1e6 / jcap['json-empty'][0]
print(f"  throughput redact / empty {jcap['json-redact'][0]/jcap['json-empty'][0]:.2f}")
print(f"  added p50 {added:.0f} us = {added/kb:.1f} us per KB; added machine time per request at capacity {per_req:.0f} us = {per_req/kb:.1f} us per KB")
PY

#!/usr/bin/env bash
# Per-call cost and memory of the example plugins in Python and JavaScript against their Rust
# equivalents (python-signature vs rust-signature, js-ab-router vs rust-ab-router).
#
# For each target, one at a time: a gateway with one route whose chain is that plugin alone
# (pool_size 2, the examples' memory caps), driven by oha at a fixed rate; then
#   - call time p50 / p99 / mean per plugin call, read from the gateway's `GET /admin/plugins`
#     (time inside the plugin: guest code plus its host calls, no network, no upstream);
#   - the gateway's RSS after the traffic, minus the RSS of the same gateway with an empty chain.
# The whole set is repeated RUNS times (the machine is shared: give ranges, not one number).
#
#   scripts/bench-examples.sh [--debug] [--rate QPS] [--seconds S] [--runs N]
#
# --debug uses target/debug/tollgate (no release build). The guest's code is compiled by
# Cranelift the same way in both profiles (the workspace optimises the cranelift crates in dev),
# so the guest's own time is the same; the host's side of each call (wasmtime's runtime code,
# moving the request into the instance, answering the plugin's host calls) is unoptimised in
# debug and makes up most of a Rust example's call time. It adds about the same to both
# languages: in a debug run the extra µs per call is the meaningful figure and the ratios are
# lower bounds (larger with a release gateway).
# Defaults: release, 200 requests/s for 10 s over 2 connections, 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
rate=200
seconds=10
runs=3
while (($#)); do
  case $1 in
    --debug) profile=debug ;;
    --rate) rate=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: $0 [--debug] [--rate QPS] [--seconds S] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done

command -v oha >/dev/null || cargo install oha --locked
scripts/build-examples.sh
cargo_profile=(); [[ $profile == release ]] && cargo_profile=(--release)
cargo build "${cargo_profile[@]}" -p tollgate -p tollgate-tests --bin tollgate --bin mock-upstream
bin=target/$profile

work=target/bench-examples
rm -rf "$work" && mkdir -p "$work/cache"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ex="$PWD/examples/target"
secret=0123456789abcdef-example-secret

plugin_toml() { # target -> [plugins.p] block (the examples' configs and memory caps)
  local module mem
  case $1 in
    empty) return ;;
    python-signature) module="$ex/python_signature.wasm" mem=96 ;;
    rust-signature) module="$ex/wasm32-wasip2/release/rust_signature.wasm" mem=32 ;;
    js-ab-router) module="$ex/js_ab_router.wasm" mem=64 ;;
    rust-ab-router) module="$ex/wasm32-wasip2/release/rust_ab_router.wasm" mem=32 ;;
  esac
  printf '[plugins.p]\nmodule = "%s"\nmemory_limit_mb = %s\ntimeout_ms = 2000\npool_size = 2\n[plugins.p.config]\n' "$module" "$mem"
  case $1 in
    *-signature) printf 'secret = "%s"\n' "$secret" ;;
    *-ab-router) printf 'experiment = "checkout"\nsticky_header = "x-visitor-id"\nvariants = [{ name = "a", weight = 50 }, { name = "b", weight = 50 }]\n' ;;
  esac
}

up_port=$(free_port)
RUST_LOG=warn "$bin/mock-upstream" "127.0.0.1:$up_port" 2>"$work/upstream.log" &
up_pid=$!
gw_pid=
trap 'kill $up_pid $gw_pid 2>/dev/null || true' EXIT

targets=(empty rust-signature python-signature rust-ab-router js-ab-router)
# Run 0 only loads each plugin once, compiling it into the cache (and records that RSS: Cranelift's
# working memory for an 18 MB component stays in the allocator); runs 1.. load from the cache,
# as a restart or reload of an unchanged file does.
for run in $(seq 0 "$runs"); do
  for t in "${targets[@]}"; do
    port=$(free_port) admin=$(free_port)
    chain='[]'; [[ $t != empty ]] && chain='["p"]'
    cat > "$work/$t.toml" <<TOML
[gateway]
cache_dir = "$PWD/$work/cache"
watch = false
[admin]
addr = "127.0.0.1:$admin"
[[listeners]]
addr = "127.0.0.1:$port"
[upstreams.up]
targets = ["127.0.0.1:$up_port"]
[[routes]]
name = "r"
path_prefix = "/"
upstream = "up"
chain = $chain
$(plugin_toml "$t")
TOML
    RUST_LOG=warn "$bin/tollgate" run -c "$work/$t.toml" 2>"$work/$t.$run.log" &
    gw_pid=$!
    for _ in $(seq 1200); do curl -sf -o /dev/null "http://127.0.0.1:$admin/admin/ready" && break; sleep 0.1; done
    curl -sf -o /dev/null "http://127.0.0.1:$admin/admin/ready" || { cat "$work/$t.$run.log" >&2; exit 1; }

    if ((run == 0)); then
      awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status" > "$work/$t.compile.rss"
      kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
      gw_pid=
      continue
    fi

    # A signed request (the signature plugins check method, path, timestamp and body hash); the
    # A/B routers read x-visitor-id. Every target gets the same request.
    ts=$(date +%s)
    body='{"order":42}'
    sig=$(python3 -c "import hmac,hashlib,sys; b=sys.argv[3].encode(); print(hmac.new(sys.argv[1].encode(), '\n'.join(['POST','/api/orders',sys.argv[2],hashlib.sha256(b).hexdigest()]).encode(), hashlib.sha256).hexdigest())" "$secret" "$ts" "$body")
    oha --no-tui --output-format json -q "$rate" -z "${seconds}s" -c 2 -m POST -d "$body" \
      -H "x-timestamp: $ts" -H "x-signature: $sig" -H "x-visitor-id: v1" \
      "http://127.0.0.1:$port/api/orders" > "$work/$t.$run.oha.json"
    curl -sf "http://127.0.0.1:$admin/admin/plugins" > "$work/$t.$run.plugins.json"
    awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status" > "$work/$t.$run.rss"
    kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
    gw_pid=
  done
done

python3 - "$work" "$runs" "$profile" "$rate" "$seconds" "${targets[@]}" <<'PY'
import json, sys
work, runs, profile, rate, seconds, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
pairs = [("python-signature", "rust-signature"), ("js-ab-router", "rust-ab-router")]
res = {}  # (target, run) -> dict
for run in range(1, runs + 1):
    for t in targets:
        oha = json.load(open(f"{work}/{t}.{run}.oha.json"))
        plugins = json.load(open(f"{work}/{t}.{run}.plugins.json"))["plugins"]
        r = {"rss": int(open(f"{work}/{t}.{run}.rss").read()) / 1024,
             "codes": oha.get("statusCodeDistribution", {}),
             "requests": sum(oha.get("statusCodeDistribution", {}).values())}
        if plugins:
            p = plugins[0]
            r.update(calls=p["calls"], errors=p["errors"], p50=p["call_ms"]["p50"] * 1000,
                     p99=p["call_ms"]["p99"] * 1000, mean=p["call_ms"]["mean"] * 1000,
                     instances=p["instances_created"])
        res[t, run] = r
print(f"profile {profile}, {rate} req/s for {seconds} s over 2 connections, {runs} run(s); "
      "call times from /admin/plugins (µs per plugin call), RSS in MiB")
print(f"{'run':>3} {'target':17} {'calls':>6} {'err':>4} {'p50':>7} {'p99':>7} {'mean':>7} "
      f"{'inst':>4} {'RSS':>6} {'+RSS':>6}  status")
for run in range(1, runs + 1):
    base = res["empty", run]["rss"]
    for t in targets:
        r = res[t, run]
        if t == "empty":
            print(f"{run:>3} {t:17} {'':>6} {'':>4} {'':>7} {'':>7} {'':>7} {'':>4} {r['rss']:6.1f} {'':>6}  {r['codes']}")
            continue
        print(f"{run:>3} {t:17} {r['calls']:6d} {r['errors']:4d} {r['p50']:7.0f} {r['p99']:7.0f} "
              f"{r['mean']:7.0f} {r['instances']:4d} {r['rss']:6.1f} {r['rss'] - base:6.1f}  {r['codes']}")
print()
print("ratios (min-max over runs):")
def span(xs):
    return f"{min(xs):.1f}" if f"{min(xs):.1f}" == f"{max(xs):.1f}" else f"{min(xs):.1f}-{max(xs):.1f}"
for slow, rust in pairs:
    rows = [(res[slow, run], res[rust, run]) for run in range(1, runs + 1)]
    p50 = [s["p50"] / r["p50"] for s, r in rows if r["p50"] > 0]
    p99 = [s["p99"] / r["p99"] for s, r in rows if r["p99"] > 0]
    mean = [s["mean"] / r["mean"] for s, r in rows if r["mean"] > 0]
    d50 = [s["p50"] - r["p50"] for s, r in rows]
    dmean = [s["mean"] - r["mean"] for s, r in rows]
    extra = [s["rss"] - r["rss"] for s, r in rows]
    compile_rss = (int(open(f"{work}/{slow}.compile.rss").read()) - int(open(f"{work}/{rust}.compile.rss").read())) / 1024
    print(f"  {slow} / {rust}: p50 x{span(p50)}, p99 x{span(p99)}, mean x{span(mean)}; "
          f"extra time per call p50 +{span(d50)} µs, mean +{span(dmean)} µs; "
          f"RSS +{span(extra)} MiB (+{compile_rss:.0f} MiB right after compiling it)")
PY

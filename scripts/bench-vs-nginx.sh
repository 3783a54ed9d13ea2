#!/usr/bin/env bash
# Tollgate against nginx `proxy_pass`, in one run, with the method of /work/shared/bench/compare.sh
# (docs/performance.md): the same nginx upstream and baseline, upstream and proxy pinned to CPU 0
# (`taskset -c 0`), wrk and oha on CPU 1; wrk -c64 closed loop for max rps (median of --rounds),
# then oha open loop at half of nginx's max rps with latency correction for p50/p99.
#
# Cases: direct, nginx, `floor` (scripts/hyper-floor: hyper's server and client with nothing
# else, the floor of a hyper-based proxy; only when named in --cases), empty chain (access log off and on; OTLP tracing at 100 % and 1 %
# sampling, `trace100`/`trace1`, exporting to the nginx upstream as a sink that answers 200),
# 5 x `headers`, the 7-plugin policy
# chain (auth API key, rbac, ip-filter, rate-limit, quota, meter, headers) with memory state and
# with Redis state, JWT RS256 auth, and `redact` on a 3.2 KB JSON (against the empty chain on the
# same JSON). One gateway process per case, started with a config written for it.
#
#   scripts/bench-vs-nginx.sh [--duration S] [--rounds R] [--fixed-duration S] [--cases "a b"]
#                             [--no-build] [--pgo] [--out DIR] [--tollgate PATH] [--plugins DIR]
# --pgo measures the profile-guided build (scripts/build-pgo.sh, about 30 minutes) instead of
# `cargo build --release`; with --no-build, the last one. --fixed-duration 0 skips the open loop
# (and oha). --plugins loads the built-in plugins from DIR instead of
# plugins/target/wasm32-wasip2/release (to compare two builds of them).
#
# Installs what is missing: nginx and wrk (apt-get), oha (cargo install oha --locked).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DUR=10 ROUNDS=1 FDUR=10 WARMUP=2 CONNS=64 BUILD=1 PGO=0 OUT="" CASES="" TOLLGATE_BIN="" PLUGINS=""
ALL_CASES="direct nginx empty empty-log trace100 trace1 headers5 chain7 chain7-redis jwt-rs256 json-empty json-redact"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DUR=$2; shift 2;; --rounds) ROUNDS=$2; shift 2;;
    --fixed-duration) FDUR=$2; shift 2;; --warmup) WARMUP=$2; shift 2;;
    --connections) CONNS=$2; shift 2;; --cases) CASES=$2; shift 2;;
    --no-build) BUILD=0; shift;; --pgo) PGO=1; shift;; --out) OUT=$2; shift 2;;
    --tollgate) TOLLGATE_BIN=$2; BUILD=0; shift 2;;
    --plugins) PLUGINS=$(cd "$2" && pwd); shift 2;;
    -h|--help) sed -n 2,20p "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
CASES=${CASES:-$ALL_CASES}
# nginx is the yardstick: it always runs, first after direct.
case " $CASES " in *" nginx "*) ;; *) CASES="nginx $CASES";; esac
log() { echo "[bench] $*" >&2; }

# ---- tools ------------------------------------------------------------------
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ] || ! command -v wrk >/dev/null; then
  log "installing nginx and wrk with apt-get"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq nginx-light wrk >/dev/null
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
OHA=$(command -v oha || { [ -x "$HOME/.cargo/bin/oha" ] && echo "$HOME/.cargo/bin/oha"; } || true)
if [ -z "$OHA" ] && [ "$FDUR" -gt 0 ]; then
  log "installing oha (cargo install oha --locked, a few minutes)"
  cargo install oha --locked
  OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
fi
DEFAULT_BIN=$ROOT/target/release/tollgate
if [ "$PGO" = 1 ]; then
  DEFAULT_BIN=$ROOT/target/pgo/$(rustc -vV | sed -n 's/^host: //p')/release/tollgate
fi
if [ "$BUILD" = 1 ] && [ "$PGO" = 1 ]; then
  scripts/build-pgo.sh   # builds the plugins too
elif [ "$BUILD" = 1 ]; then
  scripts/build-plugins.sh >/dev/null
  cargo build --release -p tollgate --bin tollgate
fi
TOLLGATE=${TOLLGATE_BIN:-$DEFAULT_BIN}
FLOOR=$ROOT/target/hyper-floor/release/hyper-floor
case " $CASES " in *" floor "*)
  if [ "$BUILD" = 1 ] || [ ! -x "$FLOOR" ]; then
    cargo build --release --manifest-path scripts/hyper-floor/Cargo.toml --target-dir target/hyper-floor
  fi;;
esac
PLUGINS=${PLUGINS:-$ROOT/plugins/target/wasm32-wasip2/release}
SRV=(taskset -c 0) LG=(taskset -c 1)
[ "$(nproc)" -ge 2 ] || { SRV=(); LG=(); log "one CPU: running unpinned"; }

# ---- work dir, ports, cleanup -------------------------------------------------
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/bench-vs-nginx.XXXXXX)
mkdir -p "$OUT/tmp" "$ROOT/target/bench-vs-nginx/cache"
OUT=$(cd "$OUT" && pwd)
chmod 755 "$OUT"; chmod 777 "$OUT/tmp"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP_PORT=$(free_port) NG_PORT=$(free_port) GW_PORT=$(free_port)
GW_PID=""
stop_gateway() { [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && { wait "$GW_PID" 2>/dev/null || true; }; GW_PID=""; }
cleanup() {
  stop_gateway || true
  for f in "$OUT/upstream.pid" "$OUT/nginx.pid"; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- upstream and nginx (as compare.sh writes them) ---------------------------
BODY=$(python3 -c "print('x'*1023, end='')")
# The redact case's 3.2 KB JSON: customers with e-mails and card numbers.
python3 - "$OUT/redact.json" <<'PY'
import json, sys
rows = [{"id": i, "name": f"Customer {i}", "email": f"customer.{i}@example.com",
         "card": "4111 1111 1111 1111", "city": "Lisbon", "note": "regular order, deliver before noon"}
        for i in range(20)]
doc = json.dumps({"customers": rows, "page": 1}, separators=(",", ":"))
while len(doc) > 3277: rows.pop(); doc = json.dumps({"customers": rows, "page": 1}, separators=(",", ":"))
open(sys.argv[1], "w").write(doc)
PY
JSON_BYTES=$(wc -c <"$OUT/redact.json")
temp_paths() { for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $OUT/tmp/$1-$t;"; done; }
cat >"$OUT/upstream.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/upstream.pid;
error_log $OUT/upstream.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
$(temp_paths up)
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
    location / { default_type text/plain; return 200 "$BODY\n"; }
    location = /redact.json { default_type application/json; alias $OUT/redact.json; }
  }
}
EOF
cat >"$OUT/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
$(temp_paths ng)
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NG_PORT reuseport backlog=4096;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
"${SRV[@]}" "$NGINX" -c "$OUT/upstream.conf" -p "$OUT" >"$OUT/upstream.out" 2>&1 &
"${SRV[@]}" "$NGINX" -c "$OUT/nginx.conf" -p "$OUT" >"$OUT/nginx.out" 2>&1 &

wait_up() { # url seconds [curl args]
  local url=$1 end=$((SECONDS + $2)); shift 2
  while [ "$SECONDS" -lt "$end" ]; do
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" "$url" 2>/dev/null | grep -q '^2' && return 0
    sleep 0.2
  done
  return 1
}
wait_up "http://127.0.0.1:$UP_PORT/" 10 || { echo "upstream did not start: $OUT/upstream.out" >&2; exit 2; }
wait_up "http://127.0.0.1:$NG_PORT/" 10 || { echo "nginx did not start: $OUT/nginx.out" >&2; exit 2; }

# ---- credentials ----------------------------------------------------------------
KEY=bench-key-0123456789abcdef0123456789
KEY_HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
JWT_HEAD=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
JWT_BODY=$(printf '{"iss":"bench","aud":"bench","sub":"bench","exp":%s}' $(( $(date +%s) + 86400 )) | b64url)
JWT_SIG=$(printf %s "$JWT_HEAD.$JWT_BODY" | openssl dgst -sha256 -sign tests/keys/rsa.key -binary | b64url)
JWT="$JWT_HEAD.$JWT_BODY.$JWT_SIG"
RSA_PUB=$(python3 -c 'import json,sys;print(json.dumps(open(sys.argv[1]).read()))' tests/keys/rsa.pub)

# ---- one config per case ---------------------------------------------------------
chain7_plugins() {
  cat <<EOF
[plugins.auth]
module = "auth"
[plugins.auth.config]
methods = ["api_key"]
api_key = { keys = [{ hash = "$KEY_HASH", consumer = "bench", roles = ["admin"], plan = "pro" }] }
[plugins.rbac]
module = "rbac"
[plugins.rbac.config]
rules = [{ roles = ["admin"], methods = ["*"], paths = ["/**"], effect = "allow" }]
[plugins.ip-filter]
module = "ip-filter"
[plugins.ip-filter.config]
allow = ["127.0.0.0/8", "::1/128"]
[plugins.rate-limit]
module = "rate-limit"
[plugins.rate-limit.config]
limit = 1000000000
period = "1s"
key = ["consumer"]
[plugins.quota]
module = "quota"
[plugins.quota.config]
plans = { pro = { requests = 1000000000, period = "month" } }
default_plan = "pro"
[plugins.meter]
module = "meter"
[plugins.hdr]
module = "headers"
[plugins.hdr.config]
request.set = { "x-bench" = "1" }
EOF
}
case_config() { # case -> gateway.toml on stdout
  local c=$1 chain="[]" extra=""
  case $c in
    empty|json-empty) ;;
    empty-log) extra="[access_log]
destination = \"file\"
path = \"$OUT/access.log\"";;
    trace100|trace1) extra="[telemetry]
endpoint = \"http://127.0.0.1:$UP_PORT/v1/traces\"
sampling_ratio = $([ "$c" = trace100 ] && echo 1.0 || echo 0.01)";;
    headers5) chain='["h1", "h2", "h3", "h4", "h5"]'
      extra=$(for i in 1 2 3 4 5; do printf '[plugins.h%s]\nmodule = "headers"\n[plugins.h%s.config]\nrequest.set = { "x-bench-%s" = "%s" }\n' "$i" "$i" "$i" "$i"; done);;
    chain7) chain='["auth", "rbac", "ip-filter", "rate-limit", "quota", "meter", "hdr"]'; extra=$(chain7_plugins);;
    chain7-redis) chain='["auth", "rbac", "ip-filter", "rate-limit", "quota", "meter", "hdr"]'
      extra="$(chain7_plugins)
[state]
backend = \"redis\"
url = \"redis://127.0.0.1:6379\"
key_prefix = \"tollgate-bench-$$:\"";;
    jwt-rs256) chain='["auth"]'; extra="[plugins.auth]
module = \"auth\"
[plugins.auth.config]
methods = [\"jwt\"]
[[plugins.auth.config.jwt.issuers]]
issuer = \"bench\"
audiences = [\"bench\"]
algorithms = [\"RS256\"]
[[plugins.auth.config.jwt.issuers.keys]]
pem = $RSA_PUB";;
    json-redact) chain='["redact"]'; extra='[plugins.redact]
module = "redact"
[plugins.redact.config]
fields = [{ match = "$..email", style = "hash" }]
detectors = { card = "partial" }
hash_key = "bench-only-hmac-key-0123456789abcdef"';;
  esac
  cat <<EOF
[gateway]
plugin_dir = "$PLUGINS"
cache_dir = "$ROOT/target/bench-vs-nginx/cache"
watch = false

[[listeners]]
addr = "127.0.0.1:$GW_PORT"

[upstreams.up]
targets = ["127.0.0.1:$UP_PORT"]

[[routes]]
name = "bench"
path_prefix = "/"
upstream = "up"
chain = $chain

$extra
EOF
}
case_path() { case $1 in json-*) echo /redact.json;; *) echo /;; esac; }
case_headers() { # case -> one header per line
  case $1 in
    chain7|chain7-redis) echo "x-api-key: $KEY";;
    jwt-rs256) echo "authorization: Bearer $JWT";;
  esac
}

# ---- measuring -------------------------------------------------------------------
measure() { # name url [header...]: closed loop (wrk) then, later, open loop (oha)
  local name=$1 url=$2; shift 2
  local hw=() r
  for h in "$@"; do hw+=(-H "$h"); done
  [ "$WARMUP" -gt 0 ] && timeout $((WARMUP + 30)) "${LG[@]}" wrk -t1 -c "$CONNS" -d "${WARMUP}s" "${hw[@]}" "$url" >/dev/null 2>&1
  for ((r = 1; r <= ROUNDS; r++)); do
    timeout $((DUR + 30)) "${LG[@]}" wrk -t1 -c "$CONNS" -d "${DUR}s" --latency "${hw[@]}" "$url" >"$OUT/wrk-$name-$r.txt" 2>&1
  done
  curl -s -o /dev/null -w '%{http_code} %{size_download}\n' "${hw[@]}" "$url" >"$OUT/check-$name.txt"
}
open_loop() { # name url rate [header...]
  local name=$1 url=$2 rate=$3; shift 3
  local hw=()
  for h in "$@"; do hw+=(-H "$h"); done
  timeout $((FDUR + 30)) "${LG[@]}" "$OHA" --no-tui -z "${FDUR}s" -c "$CONNS" -q "$rate" --latency-correction \
    --worker-threads 1 --output-format json "${hw[@]}" "$url" >"$OUT/oha-$name.json" 2>"$OUT/oha-$name.err" || true
}
start_case() { # case -> CASE_URL; not in a $(...) subshell, or GW_PID would be lost with it
  local c=$1
  case $c in
    direct) CASE_URL="http://127.0.0.1:$UP_PORT$(case_path "$c")"; return;;
    nginx) CASE_URL="http://127.0.0.1:$NG_PORT$(case_path "$c")"; return;;
  esac
  # SO_REUSEPORT lets a leftover gateway share the port and take part of the load: refuse that.
  if (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null; then
    echo "port $GW_PORT is still served by an earlier gateway: $c skipped" >&2; return 1
  fi
  if [ "$c" = floor ]; then
    "${SRV[@]}" "$FLOOR" "$GW_PORT" "$UP_PORT" >"$OUT/$c.out" 2>&1 &
    GW_PID=$!
    CASE_URL="http://127.0.0.1:$GW_PORT/"
    wait_up "$CASE_URL" 60 || { echo "floor did not answer; see $OUT/$c.out" >&2; stop_gateway; return 1; }
    return
  fi
  case_config "$c" >"$OUT/$c.toml"
  RUST_LOG=warn "${SRV[@]}" "$TOLLGATE" run -c "$OUT/$c.toml" >"$OUT/$c.out" 2>&1 &
  GW_PID=$!
  local url="http://127.0.0.1:$GW_PORT$(case_path "$c")" hc=()
  while IFS= read -r h; do [ -n "$h" ] && hc+=(-H "$h"); done < <(case_headers "$c")
  wait_up "$url" 60 "${hc[@]}" || { echo "$c did not answer 2xx; see $OUT/$c.out" >&2; stop_gateway; return 1; }
  CASE_URL=$url
}
run_case() { # case phase(closed|open) [rate]
  local c=$1 url hs=()
  while IFS= read -r h; do [ -n "$h" ] && hs+=("$h"); done < <(case_headers "$c")
  if [ "$c" = chain7-redis ] && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    log "no Redis on 127.0.0.1:6379: $c skipped"; return 0
  fi
  start_case "$c" || return 0
  url=$CASE_URL
  if [ "$2" = closed ]; then
    log "closed loop: $c ($ROUNDS x ${DUR}s, wrk -t1 -c$CONNS)"
    measure "$c" "$url" "${hs[@]}"
  else
    log "open loop: $c at $3 rps for ${FDUR}s"
    open_loop "$c" "$url" "$3" "${hs[@]}"
  fi
  stop_gateway
}

for c in $CASES; do run_case "$c" closed; done
NGINX_RPS=$(python3 - "$OUT" "$ROUNDS" <<'PY'
import re, statistics, sys
v = [float(m.group(1)) for r in range(1, int(sys.argv[2]) + 1)
     for m in [re.search(r"Requests/sec:\s*([\d.]+)", open(f"{sys.argv[1]}/wrk-nginx-{r}.txt").read())] if m]
print(int(statistics.median(v)) if v else 0)
PY
)
RATE=$(( NGINX_RPS / 2 )); [ "$RATE" -ge 1 ] || RATE=1
[ "$FDUR" -gt 0 ] && for c in $CASES; do run_case "$c" open "$RATE"; done

# ---- table ---------------------------------------------------------------------------
python3 - "$OUT" "$ROUNDS" "$RATE" "$JSON_BYTES" $CASES <<'PY'
import json, os, re, statistics, sys
out, rounds, rate, json_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cases = sys.argv[5:]
rows = {}
for c in cases:
    rps, errs = [], 0
    for r in range(1, rounds + 1):
        p = f"{out}/wrk-{c}-{r}.txt"
        t = open(p).read() if os.path.exists(p) else ""
        m = re.search(r"Requests/sec:\s*([\d.]+)", t)
        if m: rps.append(float(m.group(1)))
        m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", t)
        errs += int(m.group(1)) if m else 0
    row = {"rps": statistics.median(rps) if rps else None, "errors": errs}
    p = f"{out}/oha-{c}.json"
    if os.path.exists(p) and os.path.getsize(p):
        try:
            d = json.load(open(p)); lp = d["latencyPercentiles"]
            row.update(p50=lp["p50"] * 1e3 if lp.get("p50") is not None else None,
                       p99=lp["p99"] * 1e3 if lp.get("p99") is not None else None,
                       held=d["summary"]["requestsPerSec"])
            row["errors"] += sum(v for k, v in d.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
        except (ValueError, KeyError, TypeError):
            pass
    p = f"{out}/check-{c}.txt"
    row["check"] = open(p).read().strip() if os.path.exists(p) else ""
    rows[c] = row
f = lambda x, fmt: format(x, fmt) if isinstance(x, (int, float)) else "-"
ng = rows.get("nginx", {}).get("rps")
base = {c: ("json-empty" if c.startswith("json-") else "empty") for c in cases}
print(f"\nbench-vs-nginx: {os.cpu_count()} CPUs, servers on CPU 0, wrk/oha on CPU 1, 64 connections; "
      f"wrk {rounds} round(s) (median); oha -q {rate} --latency-correction (half of nginx's max)")
print(f"redact cases: a {json_bytes}-byte JSON; x base = against the empty chain on the same response")
hdr = f"{'case':<13} {'max rps':>9} {'x nginx':>8} {'x base':>7} {'p50@rate ms':>12} {'p99@rate ms':>12} {'held rps':>9} {'errors':>7}"
print(hdr); print("-" * len(hdr))
for c in cases:
    r = rows[c]; b = rows.get(base[c], {}).get("rps")
    xn = r["rps"] / ng if r.get("rps") and ng else None
    xb = r["rps"] / b if r.get("rps") and b and c not in ("direct", "nginx") else None
    print(f"{c:<13} {f(r.get('rps'), ',.0f'):>9} {f(xn, '.2f'):>8} {f(xb, '.2f'):>7} {f(r.get('p50'), '.3f'):>12} "
          f"{f(r.get('p99'), '.3f'):>12} {f(r.get('held'), ',.0f'):>9} {r['errors']:>7}")
for c in cases:
    if rows[c]["check"] and not rows[c]["check"].startswith("200 "):
        print(f"note: {c} answered {rows[c]['check']} (expected 200): its figures are not a proxied request")
json.dump({"rate": rate, "rows": rows}, open(f"{out}/results.json", "w"), indent=1)
print(f"(raw output in {out})")
PY

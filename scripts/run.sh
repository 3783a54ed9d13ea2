#!/usr/bin/env bash
# Quick start: build the plugins and the gateway, start a demo upstream on 127.0.0.1:8081, a
# control plane on 127.0.0.1:9700 (operator dashboard /dashboard, developer portal /portal; SQLite
# under target/demo/), push gateway.toml to it as a revision, and run a gateway that follows it.
# While it runs, saving gateway.toml pushes the new config (`tollgate ctl apply`), which the
# gateway applies by hot swap. Ctrl-C stops everything.
#
#   scripts/run.sh [CONFIG]               the fleet demo above (CONFIG defaults to gateway.toml)
#   scripts/run.sh --standalone [CONFIG]  only the gateway on the file (`tollgate run -c CONFIG`)
set -euo pipefail
cd "$(dirname "$0")/.."
standalone=0
if [[ "${1:-}" == "--standalone" ]]; then
  standalone=1
  shift
fi
config=${1:-gateway.toml}
scripts/build-plugins.sh
cargo build --release -p tollgate -p tollgate-tests --bin tollgate --bin mock-upstream
bin=target/release/tollgate
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
target/release/mock-upstream 127.0.0.1:8081 &
pids+=($!)
if [[ $standalone == 1 ]]; then
  "$bin" run -c "$config"
  exit
fi

control=http://127.0.0.1:9700
demo=target/demo
mkdir -p "$demo"
# The demo's admin token: kept under target/demo so the dashboard sign-in stays the same.
if [[ ! -s $demo/admin-token ]]; then
  (umask 077 && openssl rand -hex 24 >"$demo/admin-token")
fi
admin=$(cat "$demo/admin-token")
TOLLGATE_ADMIN_TOKEN=$admin "$bin" control --listen 127.0.0.1:9700 \
  --database "sqlite://$demo/control.db" --work-dir "$demo/control-work" --portal-signup open &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "$control/v1/health" >/dev/null && break
  sleep 0.1
done
push() { TOLLGATE_TOKEN=$admin "$bin" ctl --url "$control" apply -f "$config" -m "$1"; }
push "scripts/run.sh: $config"
node=$(curl -sf -H "authorization: Bearer $admin" -d "{\"name\":\"demo-gateway-$(date +%s)\",\"role\":\"node\"}" \
  "$control/v1/tokens" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
if [[ -z $node ]]; then
  echo "run.sh: the control plane did not issue a node token" >&2
  exit 1
fi
# Push gateway.toml again whenever it is saved.
(
  seen=$(stat -c %Y "$config")
  while sleep 1; do
    now=$(stat -c %Y "$config" 2>/dev/null || echo "$seen")
    if [[ $now != "$seen" ]]; then
      seen=$now
      push "scripts/run.sh: $config saved" || true
    fi
  done
) &
pids+=($!)
cat <<EOF

  gateway            http://127.0.0.1:8080   (admin API http://127.0.0.1:9090)
  operator dashboard $control/dashboard   sign in with the admin token: $admin
  developer portal   $control/portal      (open sign-up)

EOF
TOLLGATE_NODE_TOKEN=$node "$bin" run --control "$control" --state-dir "$demo/state" \
  --node-name demo-gateway

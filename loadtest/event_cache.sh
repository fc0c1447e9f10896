#!/usr/bin/env bash
# Side by side: GET /api/v1/events/{id} with the event cache on (EVENT_CACHE_TTL_SECS=30) and off
# (0), two engines on one fresh PostgreSQL database and one Redis, measured in alternating rounds
# with wrk. Each engine is measured for an event whose actor runs on it (a cache hit then needs no
# database read) and for one without (a hit reads the two-column counter).
#
#   loadtest/event_cache.sh        # BIN (default target/release/boxoffice), ROUNDS (3), SECS (5)
# Env: LOADTEST_POSTGRES_URL, LOADTEST_REDIS_URL (default redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${LOADTEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis=${LOADTEST_REDIS_URL:-redis://127.0.0.1:6379}
bin=${BIN:-target/release/boxoffice}
rounds=${ROUNDS:-3}
secs=${SECS:-5}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[[ -x "$bin" ]] || cargo build --release --locked --bin boxoffice
db="bx_cache_$$"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  psql "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
psql "$server" -qc "CREATE DATABASE $db" >/dev/null
url="${server%/*}/$db"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # NAME TTL -> port
  local port; port=$(free_port)
  (cd "$tmp" && exec env BIND_ADDR="127.0.0.1:$port" DATABASE_URL="$url" REDIS_URL="$redis" REDIS_PREFIX="cachebench$$" \
    EVENT_CACHE_TTL_SECS="$2" JWT_SECRET=cache-bench-secret-0123456789abcdef0123456789 ADMIN_EMAIL=admin@bench.local \
    ADMIN_PASSWORD=bench-password-123 RATE_LIMIT_PER_SEC=0 RUST_LOG=warn "$root/$bin") >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
  echo "$port"
}
root=$(pwd)
on=$(start on 30)
off=$(start off 0)
token=$(curl -sf "http://127.0.0.1:$on/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"admin@bench.local","password":"bench-password-123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
event() {
  curl -sf "http://127.0.0.1:$on/api/v1/events" -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d "{\"title\":\"Cache bench\",\"description\":\"A seated hall\",\"venue\":\"Hall\",\"starts_at\":\"2031-01-01T20:00:00Z\",\"price_cents\":1000,\"currency\":\"EUR\",\"seat_map\":{\"sections\":[{\"name\":\"Stalls\",\"rows\":[$(python3 -c 'print(",".join("{\"label\":\"R%d\",\"seats\":40}" % i for i in range(50)))')]}]}}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
cold=$(event)  # no actor anywhere
hot=$(event)   # an actor on each engine (reading the seat map starts it; reads only, so both keep it)
for port in "$on" "$off"; do curl -sf "http://127.0.0.1:$port/api/v1/events/$hot/seats" >/dev/null; done
measure() { # PORT EVENT -> "req/s p50"
  wrk -t1 -c8 -d"${secs}s" --latency "http://127.0.0.1:$1/api/v1/events/$2" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p=$2} END {print r, p}'
}
echo "event with 50x40 seats; wrk -t1 -c8 -d${secs}s; $rounds alternating rounds; binary $bin"
for r in $(seq 1 "$rounds"); do
  for kind in hot cold; do
    id=$([[ $kind == hot ]] && echo "$hot" || echo "$cold")
    echo "round $r $kind cache=on  $(measure "$on" "$id")"
    echo "round $r $kind cache=off $(measure "$off" "$id")"
  done
done

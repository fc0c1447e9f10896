#!/usr/bin/env bash
# Side by side: GET /api/v1/events/{id} and the event list with the event cache on
# (EVENT_CACHE_TTL_SECS=30) and off (0), two engines on one fresh PostgreSQL database and one
# Redis, measured in alternating rounds with wrk. Each engine is measured for an event whose actor
# runs on it (a cache hit then needs no database read), for one without (a hit reads the
# two-column counter), for the first page of the list (20 of 1,000 events) and for a search
# (`q=night`, every event's description matches: a scan of the catalogue); a list hit reads the
# page's counters by primary key. Prints each round, then the medians and the on/off ratio.
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
listed() { # N: one general-admission event of the list
  curl -sf "http://127.0.0.1:$on/api/v1/events" -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d "{\"title\":\"Listed $1\",\"description\":\"General admission, night $1\",\"venue\":\"Club\",\"starts_at\":\"2030-06-$(printf %02d $(($1 % 28 + 1)))T20:00:00Z\",\"price_cents\":1500,\"currency\":\"EUR\",\"capacity\":300}" >/dev/null
}
for i in $(seq 1 998); do  # the list's events: 1,000 in all, a page of 20 measured
  listed "$i" &
  (( i % 8 == 0 )) && wait
done
wait
hot=$(event)   # an actor on each engine (reading the seat map starts it; reads only, so both keep it)
for port in "$on" "$off"; do curl -sf "http://127.0.0.1:$port/api/v1/events/$hot/seats" >/dev/null; done
measure() { # PORT PATH -> "req/s p50"
  wrk -t1 -c8 -d"${secs}s" --latency "http://127.0.0.1:$1/api/v1/$2" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p=$2} END {print r, p}'
}
echo "event with 50x40 seats; list of 1,000 events (page of 20); wrk -t1 -c8 -d${secs}s; $rounds alternating rounds; binary $bin"
for r in $(seq 1 "$rounds"); do
  for kind in hot cold list search; do
    case $kind in
      hot) path="events/$hot" ;;
      cold) path="events/$cold" ;;
      list) path="events?limit=20" ;;
      search) path="events?q=night&limit=20" ;;
    esac
    echo "round $r $kind cache=on  $(measure "$on" "$path")"
    echo "round $r $kind cache=off $(measure "$off" "$path")"
  done
done | tee "$tmp/rounds"
# Medians per kind and setting, and the ratio of the request rates.
python3 - "$tmp/rounds" <<'PY'
import statistics, sys, collections
rates, p50s = collections.defaultdict(list), collections.defaultdict(list)
def ms(t):
    for unit, f in (("ms", 1), ("us", 1e-3), ("s", 1e3)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * f
for line in open(sys.argv[1]):
    _, _, kind, setting, rate, p50 = line.split()
    rates[kind, setting].append(float(rate))
    p50s[kind, setting].append(ms(p50))
for kind in ("hot", "cold", "list", "search"):
    on, off = statistics.median(rates[kind, "cache=on"]), statistics.median(rates[kind, "cache=off"])
    print(f"median {kind}: on {on:.0f} req/s p50 {statistics.median(p50s[kind, 'cache=on']):.1f} ms; "
          f"off {off:.0f} req/s p50 {statistics.median(p50s[kind, 'cache=off']):.1f} ms; on/off {on / off:.2f}")
PY

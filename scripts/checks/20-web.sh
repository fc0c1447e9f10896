#!/usr/bin/env bash
# web: the browser app. Installs Debian's Chromium and the npm packages, then: typecheck, the
# Vitest unit and component tests, the production build (with its bundle sizes), the check that
# the committed API types match the OpenAPI document the engine serves now, and the Playwright
# scenarios in real Chromium against the real engine binary, once on SQLite and once on
# PostgreSQL (TEST_POSTGRES_URL); one of them scans a ticket through Chromium's fake camera,
# fed a Y4M video of the ticket's QR code written at test time under web/test-results/.
# Screenshots go to web/screenshots/ (ignored by git).
# Closing line: `web: N passed, N failed` (every test case plus each step counts).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
passed=0
failed=0
failures=()
tmp=$(mktemp -d)
pids=()
pg_dbs=()
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  for db in "${pg_dbs[@]}"; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passed=$((passed + $1)); }
bad() { failed=$((failed + $1)); failures+=("$2"); }
step() { # name, command...
  local name=$1; shift
  printf '\n== web: %s\n' "$name"
  if "$@"; then ok 1; else bad 1 "$name"; fi
}

# Counts of a Vitest or Playwright JSON report: "passed failed".
counts() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (r.numPassedTests !== undefined) { console.log(r.numPassedTests, r.numFailedTests + (r.numTotalTests - r.numPassedTests - r.numFailedTests - (r.numPendingTests||0))); process.exit(0); }
    const s = r.stats || {};
    console.log((s.expected || 0) + (s.flaky || 0), (s.unexpected || 0) + (s.skipped || 0));
  ' "$1" 2>/dev/null || echo "0 1"
}

if [[ ! -x /usr/bin/chromium ]]; then
  printf '\n== web: installing chromium\n'
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
command -v psql >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null; }

cd web
step "npm ci" npm ci --no-audit --no-fund --loglevel=error
step "typecheck" npm run -s typecheck

printf '\n== web: vitest\n'
npx vitest run --reporter=default --reporter=json --outputFile="$tmp/vitest.json"
read -r p f < <(counts "$tmp/vitest.json")
ok "$p"; [[ $f -gt 0 || ! -s "$tmp/vitest.json" ]] && bad "${f:-1}" vitest

step "build" npm run -s build
printf '\n== web: bundle sizes (gzip)\n'
node scripts/bundle-size.mjs || bad 1 "bundle size"

cd "$root"
# BOXOFFICE_BIN drives an engine binary built elsewhere; by default the debug build of this tree.
if [[ -n "${BOXOFFICE_BIN:-}" ]]; then
  bin=$BOXOFFICE_BIN
else
  step "engine binary" cargo build --locked --quiet --bin boxoffice
  bin=$root/target/debug/boxoffice
fi

# Starts the engine; prints its base URL. $1 = name, $2 = DATABASE_URL, then extra VAR=value.
start_engine() {
  local name=$1 db=$2; shift 2
  local log=$tmp/$name.log
  mkdir -p "$tmp/$name"
  env BIND_ADDR=127.0.0.1:0 DATABASE_URL="$db" WEB_DIR="$root/web/dist" LOG_FORMAT=json \
    ADMIN_EMAIL=admin@web.test ADMIN_PASSWORD=admin-password-123 \
    MAIL_OUTBOX_DIR="$tmp/$name/outbox" PAYMENT_PROVIDER_DELAY_MS=300 PAYMENT_POLL_SECS=1 \
    RATE_LIMIT_PER_SEC=1000 AUTH_RATE_LIMIT_PER_MIN=0 AUTH_ACCOUNT_RATE_LIMIT_PER_MIN=0 "$@" timeout 1200 "$bin" --seed >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do
    local port
    port=$(grep -o '"port":[0-9]*' "$log" | head -n1 | cut -d: -f2)
    if [[ -n "$port" ]] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
      echo "http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  echo "engine $name did not start:" >&2
  tail -n 30 "$log" >&2
  return 1
}

types_match() { # the committed API types are what the engine's OpenAPI document gives now
  (cd web && npx openapi-typescript "$1/api/openapi.json" -o "$tmp/schema.d.ts" >/dev/null 2>&1) &&
    if diff -u web/src/api/schema.d.ts "$tmp/schema.d.ts"; then
      echo "web/src/api/schema.d.ts matches the served OpenAPI document"
    else
      echo "web/src/api/schema.d.ts is out of date: run 'npm --prefix web run gen:api' against a running engine" >&2
      return 1
    fi
}

for backend in sqlite postgres; do
  printf '\n== web: browser tests on %s\n' "$backend"
  if [[ $backend == sqlite ]]; then
    main_db="sqlite://$tmp/main.db"
    short_db="sqlite://$tmp/short.db"
  else
    main_db_name="bx_web_$$_main"
    short_db_name="bx_web_$$_short"
    pg_dbs+=("$main_db_name" "$short_db_name")
    psql "$PG_URL" -qc "CREATE DATABASE $main_db_name" && psql "$PG_URL" -qc "CREATE DATABASE $short_db_name" ||
      { bad 1 "postgres databases"; continue; }
    main_db=${PG_URL%/*}/$main_db_name
    short_db=${PG_URL%/*}/$short_db_name
  fi
  if ! main_url=$(start_engine "$backend-main" "$main_db"); then bad 1 "engine on $backend"; continue; fi
  # The expiry scenario runs against a second engine whose holds last seconds.
  if ! short_url=$(start_engine "$backend-short" "$short_db" HOLD_TTL_SECS=8 HOLD_SWEEP_MS=200); then
    bad 1 "short-hold engine on $backend"; continue
  fi
  if [[ $backend == sqlite ]]; then step "API types match the served OpenAPI document" types_match "$main_url"; fi
  # The page at / is the app, with its CSP.
  step "engine serves the app on $backend" bash -c "curl -sfi '$main_url/events/x' | grep -qi 'content-security-policy' && curl -sf '$main_url/' | grep -q 'id=\"root\"'"
  (cd web && BACKEND=$backend BASE_URL=$main_url SHORT_URL=$short_url PW_JSON="$tmp/pw-$backend.json" \
    npx playwright test)
  read -r p f < <(counts "$tmp/pw-$backend.json")
  ok "$p"; [[ $f -gt 0 ]] && bad "$f" "playwright on $backend"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  pids=()
done

printf '\n'
[[ ${#failures[@]} -gt 0 ]] && echo "web failures: ${failures[*]}"
echo "web: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

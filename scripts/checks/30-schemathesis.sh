#!/usr/bin/env bash
# schemathesis: the served OpenAPI document against the server that serves it. Installs
# schemathesis 4.32 from PyPI into .tools/schemathesis (ignored by git), starts the engine binary
# on a free loopback port (SQLite in a temporary folder; the login, webhook and per-client rate
# limits off, since one client sends thousands of requests), signs in an admin and a user, and
# runs every check in every phase (examples, coverage, fuzzing, stateful: the document's links
# take it from events to bookings to payments) with a fixed seed and a bounded number of cases.
# Hooks: scripts/checks/30-schemathesis-hooks.py (tokens per operation; the cross-field rules
# JSON Schema cannot state, for positive cases only).
#
# Checks switched off, and why (also in docs/ARCHITECTURE.md, "The contract"):
#   (none)
#
# Zero failures required. Closing line: `schemathesis: N passed, N failed` (operations).
# ST_MAX_EXAMPLES, ST_SEED and ST_TIMEOUT_SECS change the bounds; BOXOFFICE_BIN drives a
# prebuilt engine.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=$root/.tools/schemathesis
max_examples=${ST_MAX_EXAMPLES:-20}
seed=${ST_SEED:-20261129}
budget=${ST_TIMEOUT_SECS:-900}
tmp=$(mktemp -d)
pid=

finish() { # passed failed
  echo "schemathesis: $1 passed, $2 failed"
  [[ $2 -eq 0 ]]
  exit
}
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- schemathesis -----------------------------------------------------------------------------
# CPython before 3.11.8 / 3.12.2 keeps ast.parse's recursion counter per interpreter, so two
# threads parsing at once (hypothesis describes its lambdas that way, once per worker) fail with
# "SystemError: AST constructor recursion depth mismatch". Use a fixed Python if there is one
# (python3.13, or pyenv's), else run one worker.
fixed() { "$1" -c 'import sys; v = sys.version_info; sys.exit(not (v >= (3, 12, 2) or (3, 11, 8) <= v < (3, 12)))' 2>/dev/null; }
python=python3
for candidate in python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
  if command -v "$candidate" >/dev/null && fixed "$candidate"; then python=$candidate; break; fi
done
workers=2
fixed "$python" || workers=1
stale() { # no schemathesis 4.32 in the venv, or a venv on an affected Python when a fixed one exists
  ! "$venv/bin/st" --version 2>/dev/null | grep -q 'version 4\.32\.' || { [[ $workers -eq 2 ]] && ! fixed "$venv/bin/python"; }
}
if stale; then
  echo "installing schemathesis 4.32 into .tools/schemathesis ($("$python" --version))"
  rm -rf "$venv"
  "$python" -m venv "$venv" && "$venv/bin/pip" install -q 'schemathesis~=4.32.0' ||
    { echo "pip install schemathesis failed"; finish 0 1; }
fi

# ---- the engine -------------------------------------------------------------------------------
if [[ -n "${BOXOFFICE_BIN:-}" ]]; then
  bin=$BOXOFFICE_BIN
else
  cargo build --locked --quiet --bin boxoffice || { echo "cargo build failed"; finish 0 1; }
  bin=$root/target/debug/boxoffice
fi
admin_email=admin@contract.test
admin_password=contract-admin-password
log=$tmp/engine.log
env BIND_ADDR=127.0.0.1:0 DATABASE_URL="sqlite://$tmp/contract.db" LOG_FORMAT=json \
  ADMIN_EMAIL=$admin_email ADMIN_PASSWORD=$admin_password MAIL_OUTBOX_DIR="$tmp/outbox" \
  RATE_LIMIT_PER_SEC=0 AUTH_RATE_LIMIT_PER_MIN=0 AUTH_ACCOUNT_RATE_LIMIT_PER_MIN=0 WEBHOOK_RATE_LIMIT_PER_SEC=0 \
  ACCESS_TOKEN_TTL_SECS=7200 \
  "$bin" >"$log" 2>&1 &
pid=$!
base=
for _ in $(seq 1 300); do
  port=$(grep -o '"port":[0-9]*' "$log" | head -n1 | cut -d: -f2)
  if [[ -n "$port" ]] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
    base=http://127.0.0.1:$port
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
[[ -n "$base" ]] || { echo "the engine did not start:"; tail -n 30 "$log"; finish 0 1; }

token() { # email password
  curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
curl -sf -X POST "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"user@contract.test","password":"contract-user-password"}' >/dev/null
ST_ADMIN_TOKEN=$(token $admin_email $admin_password) && ST_USER_TOKEN=$(token user@contract.test contract-user-password) ||
  { echo "could not sign in"; tail -n 20 "$log"; finish 0 1; }
export ST_ADMIN_TOKEN ST_USER_TOKEN

# ---- the run ----------------------------------------------------------------------------------
cmd=("$venv/bin/st" run "$base/api/openapi.json" --url "$base"
  --checks all --phases examples,coverage,fuzzing,stateful
  --max-examples "$max_examples" --seed "$seed" --workers "$workers" --generation-database none
  --request-timeout 20 --no-color --report junit --report-junit-path "$tmp/junit.xml")
echo "${cmd[*]/#$venv/.tools/schemathesis}"
start=$(date +%s)
SCHEMATHESIS_HOOKS=$root/scripts/checks/30-schemathesis-hooks.py timeout "$budget" "${cmd[@]}" | tee "$tmp/out.txt"
status=${PIPESTATUS[0]}
echo "schemathesis took $(($(date +%s) - start)) s (exit $status)"
if [[ $status -eq 124 ]]; then echo "schemathesis ran out of its $budget s budget"; fi

# Operations from the JUnit report: one test case per operation (and one for the stateful phase).
read -r p f < <(python3 - "$tmp/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
passed = failed = 0
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is None:
        passed += 1
print(passed, failed)
EOF
)
if [[ $status -ne 0 && $f -eq 0 ]]; then f=1; fi
finish "$p" "$f"

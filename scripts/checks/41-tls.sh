#!/usr/bin/env bash
# TLS to the data stores, against local servers with TLS turned on and certificates made here:
#   - a second PostgreSQL cluster on a free port that accepts TLS connections only (hostssl);
#   - a second RabbitMQ node on a free port with only an AMQPS listener;
#   - a Redis (Debian's redis-server, built with TLS) on a free port with only a TLS port.
# The engine must connect with sslmode=verify-full (the test CA as sslrootcert), with
# amqps:// (the test CA as cacertfile) and with rediss:// (the test CA as REDIS_CA_FILE), must fail
# without TLS, and must refuse a server it cannot verify (proving the certificate is checked, not
# only the channel encrypted). Redis being unreachable degrades the engine (`"redis":"down"` in
# /readyz) rather than unreadying it, so the Redis cases read that field.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source scripts/lib/tally.bash

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [[ -f "$tmp/pg/postmaster.pid" ]] && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$tmp/pg" -m fast stop >/dev/null 2>&1
  if [[ -n "${redis_pid:-}" ]]; then kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; fi
  if [[ -n "${rmq_pid:-}" ]]; then kill "$rmq_pid" 2>/dev/null; wait "$rmq_pid" 2>/dev/null; fi
  # The node's Erlang VM outlives the script wrapper; stop it by its own pid file.
  [[ -f "$tmp/rmq/pid" ]] && kill "$(cat "$tmp/rmq/pid")" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.bash"

cargo build --locked --bin boxoffice -q 2>&1 | tail -n 20
BIN=$root/target/debug/boxoffice

# ---- certificates: a CA and a server certificate for localhost / 127.0.0.1 -------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=boxoffice test CA" \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/ext.cnf"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 \
  -extfile "$tmp/ext.cnf" -out "$tmp/server.pem" >/dev/null 2>&1
# A CA nobody trusts, for the negative cases.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=other CA" -keyout "$tmp/other.key" -out "$tmp/other.pem" >/dev/null 2>&1
[[ -s "$tmp/server.pem" ]] && ok "certificates made" || fail "certificates made"
chmod 644 "$tmp"/*.pem

engine() { # engine NAME ENV...: runs `boxoffice serve` briefly and prints the /readyz status
  local name=$1; shift
  # Port 0: the engine picks a free port and logs it, so no other server can take it meanwhile.
  (cd "$tmp" && exec env BIND_ADDR=127.0.0.1:0 LOG_FORMAT=json RUST_LOG=info MAIL_OUTBOX_DIR="$tmp/mail" "$@" "$BIN" serve) >"$tmp/$name.log" 2>&1 &
  local pid=$! port= status=000 end=$((SECONDS + 40))
  while [[ -z "$port" && $SECONDS -lt $end ]] && kill -0 "$pid" 2>/dev/null; do
    port=$(grep -o '"message":"boxoffice ready","port":[0-9]*' "$tmp/$name.log" | grep -o '[0-9]*$')
    [[ -n "$port" ]] || sleep 0.2
  done
  while [[ -n "$port" && $SECONDS -lt $end ]] && kill -0 "$pid" 2>/dev/null; do
    status=$(curl -s -o "$tmp/$name.readyz" -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null)
    [[ "$status" == 200 ]] && break
    # A broker that cannot be verified keeps /readyz at 503: ten seconds of that is the answer.
    [[ "$status" == 503 && $SECONDS -gt $((end - 30)) ]] && break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  echo "$status"
}

# ---- PostgreSQL with TLS only -------------------------------------------------------------------
pg_port=$(free_port)
mkdir -p "$tmp/pg" && chown postgres "$tmp/pg"
install -o postgres -m 600 "$tmp/server.key" "$tmp/pg-server.key"
if runuser -u postgres -- "$pg_bin/initdb" -D "$tmp/pg" -A trust -U postgres >"$tmp/initdb.log" 2>&1; then
  cat >>"$tmp/pg/postgresql.conf" <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp/pg'
ssl = on
ssl_cert_file = '$tmp/server.pem'
ssl_key_file = '$tmp/pg-server.key'
fsync = off
CONF
  printf 'hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\nlocal all all trust\n' >"$tmp/pg/pg_hba.conf"
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/server.log" -w start >/dev/null 2>&1 || { fail "postgres with TLS starts"; cat "$tmp/pg/server.log"; }
else
  fail "initdb"; cat "$tmp/initdb.log"
fi
pg="postgres://postgres@localhost:$pg_port/postgres"

s=$(engine pg-verify DATABASE_URL="$pg?sslmode=verify-full&sslrootcert=$tmp/ca.pem")
[[ "$s" == 200 ]] && ok "postgres: sslmode=verify-full with the CA: migrated and ready" || { fail "postgres: sslmode=verify-full with the CA (readyz $s)"; tail -5 "$tmp/pg-verify.log"; }
s=$(engine pg-require DATABASE_URL="$pg?sslmode=require")
[[ "$s" == 200 ]] && ok "postgres: sslmode=require: ready" || { fail "postgres: sslmode=require (readyz $s)"; tail -5 "$tmp/pg-require.log"; }
if (cd "$tmp" && DATABASE_URL="$pg?sslmode=disable" RUST_LOG=off timeout 30 "$BIN" migrate) >"$tmp/pg-plain.log" 2>&1; then
  fail "postgres: a plain connection was accepted (the server should refuse it)"
else ok "postgres: without TLS the server refuses the engine"; fi
if (cd "$tmp" && DATABASE_URL="$pg?sslmode=verify-full&sslrootcert=$tmp/other.pem" RUST_LOG=off timeout 30 "$BIN" migrate) >"$tmp/pg-other.log" 2>&1; then
  fail "postgres: verify-full accepted a server signed by a CA it was not given"
else ok "postgres: verify-full refuses a server its CA did not sign"; fi

# ---- RabbitMQ with an AMQPS listener only --------------------------------------------------------
amqps_port=$(free_port)
dist_port=$(free_port)
mkdir -p "$tmp/rmq/mnesia" "$tmp/rmq/log"
install -o rabbitmq -m 600 "$tmp/server.key" "$tmp/rmq/server.key"
cat >"$tmp/rmq/rabbitmq.conf" <<CONF
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$amqps_port
ssl_options.cacertfile = $tmp/ca.pem
ssl_options.certfile = $tmp/server.pem
ssl_options.keyfile = $tmp/rmq/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
echo '[].' >"$tmp/rmq/enabled_plugins"
: >"$tmp/rmq/env.conf"
chown -R rabbitmq "$tmp/rmq"
node="boxtls$$@localhost"
runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq RABBITMQ_CONF_ENV_FILE="$tmp/rmq/env.conf" \
  RABBITMQ_NODENAME="$node" RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_CONFIG_FILE="$tmp/rmq/rabbitmq.conf" \
  RABBITMQ_MNESIA_BASE="$tmp/rmq/mnesia" RABBITMQ_LOG_BASE="$tmp/rmq/log" RABBITMQ_PID_FILE="$tmp/rmq/pid" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$tmp/rmq/enabled_plugins" ERL_EPMD_ADDRESS=127.0.0.1 \
  /usr/lib/rabbitmq/bin/rabbitmq-server >"$tmp/rmq/stdout.log" 2>&1 &
rmq_pid=$!
if wait_port "$amqps_port" 120; then ok "rabbitmq node with only an AMQPS listener started"
else fail "rabbitmq with TLS starts"; tail -20 "$tmp/rmq/stdout.log"; fi
amqps="amqps://guest:guest@localhost:$amqps_port/%2f"

s=$(engine amqps-ca AMQP_URL="$amqps?cacertfile=$tmp/ca.pem" AMQP_PREFIX=tlscheck)
[[ "$s" == 200 ]] && ok "rabbitmq: amqps:// with the CA: topology declared, ready" || { fail "rabbitmq: amqps:// with the CA (readyz $s)"; tail -5 "$tmp/amqps-ca.log"; }
s=$(engine amqps-unknown AMQP_URL="$amqps" AMQP_PREFIX=tlscheck)
[[ "$s" == 503 ]] && ok "rabbitmq: amqps:// refuses a broker whose certificate it cannot verify (readyz 503)" || fail "rabbitmq: unverifiable broker gave readyz $s, expected 503"
s=$(engine amqp-plain AMQP_URL="amqp://guest:guest@localhost:$amqps_port/%2f" AMQP_PREFIX=tlscheck)
[[ "$s" == 503 ]] && ok "rabbitmq: plain amqp:// to the TLS listener does not pass for a broker (readyz 503)" || { fail "rabbitmq: plain amqp:// gave readyz $s, expected 503"; cat "$tmp/amqp-plain.readyz"; grep -v '^ ' "$tmp/amqp-plain.log" | tail -5; }

# ---- Redis with a TLS port only ----------------------------------------------------------------
redis_port=$(free_port)
redis-server --port 0 --tls-port "$redis_port" --bind 127.0.0.1 --tls-cert-file "$tmp/server.pem" \
  --tls-key-file "$tmp/server.key" --tls-ca-cert-file "$tmp/ca.pem" --tls-auth-clients no \
  --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
if wait_port "$redis_port" 20; then ok "redis with only a TLS port started"
else fail "redis with TLS starts"; tail -5 "$tmp/redis.log"; fi
redis_field() { grep -o '"redis":"[a-z]*"' "$tmp/$1.readyz" | cut -d'"' -f4; }
rediss="rediss://localhost:$redis_port"
s=$(engine rediss-ca REDIS_URL="$rediss" REDIS_CA_FILE="$tmp/ca.pem" REDIS_PREFIX=tlscheck)
r=$(redis_field rediss-ca)
[[ "$s" == 200 && "$r" == up ]] && ok "redis: rediss:// with the CA: shared state up" || { fail "redis: rediss:// with the CA (readyz $s, redis '$r')"; tail -5 "$tmp/rediss-ca.log"; }
s=$(engine rediss-unknown REDIS_URL="$rediss" REDIS_PREFIX=tlscheck)
r=$(redis_field rediss-unknown)
[[ "$s" == 200 && "$r" == down ]] && ok "redis: rediss:// refuses a server whose certificate it cannot verify (degraded, still ready)" || fail "redis: unverifiable server gave readyz $s with redis '$r', expected 200 and down"
s=$(engine redis-plain REDIS_URL="redis://localhost:$redis_port" REDIS_PREFIX=tlscheck)
r=$(redis_field redis-plain)
[[ "$s" == 200 && "$r" == down ]] && ok "redis: plain redis:// to the TLS port does not pass for Redis" || fail "redis: plain redis:// gave readyz $s with redis '$r', expected 200 and down"

echo "tls: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# A Kafka-compatible broker for the stream tests: tansu (crates.io `tansu`, pure Rust).
#
#   scripts/tansu.sh install                 installs tansu if missing; prints its path
#   scripts/tansu.sh start PORT DIR [ENGINE] starts a broker on 127.0.0.1:PORT in the background,
#                                            logging to DIR/tansu-PORT.log; prints its pid
#   scripts/tansu.sh topic PORT NAME N       creates topic NAME with N partitions
#
# ENGINE is a tansu storage URL; default `memory://tansu/`. The tansu build has no file engine
# (its `dynostore` engine keeps data in memory or in S3), so a broker whose data must survive a
# restart uses `s3://BUCKET/` against an S3-compatible server (scripts/moto.sh), with AWS_ENDPOINT,
# AWS_ALLOW_HTTP, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION in the environment.
# Exits non-zero if tansu cannot be installed: tests fail, never skip.
set -euo pipefail

install() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v tansu >/dev/null; then
    cargo install tansu --locked --features dynostore >&2
  fi
  command -v tansu
}

case "${1:-}" in
  install) install ;;
  start)
    port=${2:?usage: scripts/tansu.sh start PORT DIR [ENGINE]}
    dir=${3:?usage: scripts/tansu.sh start PORT DIR [ENGINE]}
    engine=${4:-memory://tansu/}
    bin=$(install)
    mkdir -p "$dir"
    nohup "$bin" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "$engine" >>"$dir/tansu-$port.log" 2>&1 &
    echo $!
    ;;
  topic)
    port=${2:?usage: scripts/tansu.sh topic PORT NAME N}
    bin=$(install)
    "$bin" topic create "${3:?topic name}" --partitions "${4:-3}" --broker "tcp://127.0.0.1:$port"
    ;;
  *) echo "usage: scripts/tansu.sh install | start PORT DIR [ENGINE] | topic PORT NAME N" >&2; exit 2 ;;
esac

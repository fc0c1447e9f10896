#!/usr/bin/env bash
# An S3-compatible server for the receipt tests: moto's server (PyPI `moto[server]`), installed
# once into a virtual environment under .cache/ (ignored by git).
#
#   scripts/moto.sh install     creates the environment if needed; prints the moto_server path
#   scripts/moto.sh run PORT    serves S3 on 127.0.0.1:PORT in the foreground (in memory)
#
# Tests call `install` and start the server themselves, so they can stop it (S3 down) and start
# it again on the same port. Exits non-zero if moto cannot be installed: tests fail, never skip.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/moto-venv"
server="$venv/bin/moto_server"

install() {
  if [[ -x "$server" ]] && "$venv/bin/python" -c 'import moto.server, flask' 2>/dev/null; then
    echo "$server"
    return
  fi
  mkdir -p "$root/.cache"
  # Concurrent callers (parallel test binaries, CI) install once.
  exec 9>"$root/.cache/moto.lock"
  flock 9
  if ! [[ -x "$server" ]] || ! "$venv/bin/python" -c 'import moto.server, flask' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' >&2
  fi
  echo "$server"
}

case "${1:-}" in
  install) install ;;
  run)
    port=${2:?usage: scripts/moto.sh run PORT}
    server=$(install)
    exec "$server" -H 127.0.0.1 -p "$port"
    ;;
  *) echo "usage: scripts/moto.sh install | run PORT" >&2; exit 2 ;;
esac

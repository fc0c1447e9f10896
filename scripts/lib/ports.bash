# Loopback port helpers shared by the checks in scripts/checks/ (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT, or fail after SECONDS.
wait_port() {
  local end=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do [[ $SECONDS -lt $end ]] || return 1; sleep 0.3; done
}

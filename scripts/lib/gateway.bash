# The nginx gateway of deploy/nginx/ run from a temporary prefix, shared by the deploy check and
# the cluster load test (sourced, not run). Run from the repository's root.

# gateway_prefix DIR PORT WORKERS CONNECTIONS UPSTREAM_PORT...: writes an nginx prefix in DIR
# that serves deploy/nginx/gateway.conf as is (only its listen address and access log are set)
# in front of the given loopback ports, and checks it with `nginx -t`. Start it with
# `$NGINX -p DIR -c DIR/nginx.conf`. Needs NGINX (the nginx binary).
gateway_prefix() {
  local dir=$1 port=$2 workers=$3 connections=$4
  shift 4
  mkdir -p "$dir/logs"
  sed -e "s/listen 8080;/listen 127.0.0.1:$port;/" \
      -e "s|access_log /dev/stdout boxoffice;|access_log $dir/logs/access.log boxoffice;|" deploy/nginx/gateway.conf >"$dir/gateway.conf"
  grep -q "listen 127.0.0.1:$port;" "$dir/gateway.conf" || { echo "deploy/nginx/gateway.conf: no 'listen 8080;' to set" >&2; return 1; }
  : >"$dir/boxoffice-upstreams.conf"
  for up in "$@"; do echo "server 127.0.0.1:$up max_fails=3 fail_timeout=10s;" >>"$dir/boxoffice-upstreams.conf"; done
  cat >"$dir/nginx.conf" <<NGINX
daemon off;
worker_processes $workers;
worker_rlimit_nofile $((connections * 8));
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections $connections; }
http {
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  include $dir/gateway.conf;
}
NGINX
  "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf"
}

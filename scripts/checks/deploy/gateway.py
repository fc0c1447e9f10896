"""The nginx gateway in front of two engines, and in front of a header-echoing upstream.

    python3 gateway.py GATEWAY_URL ADMIN_EMAIL ADMIN_PASSWORD ACCESS_LOG ECHO_GATEWAY_URL VARS.jsonl

Checks: the API and `/` are served; a client's X-Request-Id comes back and one is made when
missing; every request about one event went to one node (the consistent hash on the event id);
an event stream delivers an availability change within a second while the stream stays open
(so nginx does not buffer it); and the echo upstream sees X-Forwarded-For, X-Real-IP and the
request id that nginx sends on.
"""
import json
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, __import__("os").path.dirname(__file__))
from load import call, user  # noqa: E402

problems = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        problems.append(what)


def raw_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def sse_delivers_promptly(gw, admin):
    """Opens a stream through nginx, makes a hold, and times the `availability` event."""
    s, ev = call(gw, "POST", "/api/v1/events", {
        "title": "Gateway stream", "description": "deploy check", "venue": "Hall",
        "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 30)),
        "price_cents": 1000, "currency": "EUR", "capacity": 50}, admin)
    assert s == 201, (s, ev)
    u = urllib.parse.urlsplit(gw)
    sock = socket.create_connection((u.hostname, u.port), timeout=10)
    sock.sendall(f"GET /api/v1/events/{ev['id']}/stream HTTP/1.1\r\nHost: {u.hostname}\r\nAccept: text/event-stream\r\n\r\n".encode())
    buf = b""
    deadline = time.time() + 10
    while b"availability" not in buf and time.time() < deadline:  # the first snapshot
        buf += sock.recv(4096)
    check(b"200 OK" in buf.split(b"\r\n", 1)[0], "gateway: event stream answers 200")
    check(b"availability" in buf, "gateway: event stream sends its first snapshot through nginx")
    token = user(gw)
    buf = b""
    sent = time.time()
    s, _ = call(gw, "POST", f"/api/v1/events/{ev['id']}/bookings", {"quantity": 2}, token)
    check(s == 201, f"gateway: hold through nginx answers 201 (got {s})")
    sock.settimeout(0.2)
    while time.time() - sent < 3:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        if b'"held":2' in buf:
            break
    took = time.time() - sent
    check(b'"held":2' in buf and took < 1.0,
          f"gateway: the hold's availability event arrives through nginx while the stream is open, unbuffered ({took:.3f} s)")
    sock.close()


def main():
    gw, admin_email, admin_password, access_log, echo_gw, vars_file = sys.argv[1:7]
    with open(vars_file) as f:
        serves_web = any(json.loads(line)["name"] == "WEB_DIR" for line in f if line.strip())
    s, _, body = raw_get(f"{gw}/api/v1/events")
    check(s == 200 and json.loads(body) is not None, f"gateway: GET /api/v1/events answers 200 (got {s})")
    s, h, body = raw_get(f"{gw}/")
    hl = {k.lower(): v for k, v in h.items()}
    ctype = hl.get("content-type", "")
    if serves_web:
        check(s == 200 and ctype.startswith("text/html"), f"gateway: GET / serves the engine's web app page (got {s} {ctype})")
    else:
        # An engine without WEB_DIR serves no web app: `/` must still reach it (its problem answer).
        check(s == 404 and ctype == "application/problem+json" and "x-request-id" in hl,
              f"gateway: GET / reaches an engine (got {s} {ctype}; this engine has no WEB_DIR)")
    s, h, _ = raw_get(f"{gw}/metrics")
    check(s == 404, f"gateway: /metrics is not public (got {s})")
    s, h, _ = raw_get(f"{gw}/healthz", {"X-Request-Id": "deploy-check-rid-1"})
    hl = {k.lower(): v for k, v in h.items()}
    check(hl.get("x-request-id") == "deploy-check-rid-1", f"gateway: a client's X-Request-Id comes back ({hl.get('x-request-id')})")
    s, h, _ = raw_get(f"{gw}/healthz")
    rid = {k.lower(): v for k, v in h.items()}.get("x-request-id", "")
    check(bool(re.fullmatch(r"[0-9a-f]{32}", rid)), f"gateway: nginx makes a request id when there is none ({rid!r})")

    s, body = call(gw, "POST", "/api/v1/auth/login", {"email": admin_email, "password": admin_password})
    admin = body["access_token"]
    sse_delivers_promptly(gw, admin)

    # The consistent hash: every logged request about one event went to one node.
    by_event = {}
    with open(access_log) as f:
        for line in f:
            m = re.search(r"event=([0-9a-f-]{36}) upstream=(\S+)", line)
            if m:
                by_event.setdefault(m.group(1), set()).add(m.group(2))
    split = {e: n for e, n in by_event.items() if len(n) != 1}
    check(len(by_event) >= 2 and not split,
          f"gateway: requests about each of {len(by_event)} events all reached one node ({split or 'none split'})")
    nodes = {n for ns in by_event.values() for n in ns}
    check(True, f"gateway: event owners seen: {sorted(nodes)}")

    # What nginx sends upstream, seen by the echo server.
    s, _, body = raw_get(f"{echo_gw}/api/v1/events/00000000-0000-0000-0000-000000000001/seats",
                         {"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "deploy-check-rid-2"})
    seen = json.loads(body) if s == 200 else {}
    check(seen.get("x-forwarded-for") == "203.0.113.9, 127.0.0.1",
          f"gateway: X-Forwarded-For carries the client's address ({seen.get('x-forwarded-for')!r})")
    check(seen.get("x-real-ip") == "127.0.0.1", f"gateway: X-Real-IP is the peer ({seen.get('x-real-ip')!r})")
    check(seen.get("x-request-id") == "deploy-check-rid-2", f"gateway: the request id is passed on ({seen.get('x-request-id')!r})")
    if problems:
        raise SystemExit(f"{len(problems)} gateway checks failed")


if __name__ == "__main__":
    main()

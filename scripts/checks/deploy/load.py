"""A short, mixed load on one engine (or a gateway) so that every dashboard panel has something
to show: sign-ups, event lists, holds (some refused when sold out), payments that succeed and
fail, a cancel, and a few event streams left open.

    python3 load.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD SECONDS
"""
import concurrent.futures as cf
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid


def call(base, method, path, body=None, token=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and r.headers.get_content_type().endswith("json") else raw)
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def user(base):
    email = f"load-{uuid.uuid4().hex[:12]}@example.com"
    password = "a long enough password"
    s, _ = call(base, "POST", "/api/v1/auth/register", {"email": email, "password": password})
    assert s == 201, s
    s, body = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert s == 200, (s, body)
    return body["access_token"]


def open_stream(base, event_id, stop):
    """Keeps one server-sent event stream open until `stop` is set."""
    req = urllib.request.Request(f"{base}/api/v1/events/{event_id}/stream")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            while not stop.is_set():
                if not r.readline():
                    break
    except Exception:  # noqa: BLE001 - a stream ending early only leaves one panel lower
        pass


def main():
    base, admin_email, admin_password, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    s, body = call(base, "POST", "/api/v1/auth/login", {"email": admin_email, "password": admin_password})
    assert s == 200, (s, body)
    admin = body["access_token"]
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    events = []
    for capacity in (5000, 40):
        s, ev = call(base, "POST", "/api/v1/events", {
            "title": f"Load {uuid.uuid4().hex[:8]}", "description": "made by the deploy check", "venue": "Hall",
            "starts_at": starts, "price_cents": 1500, "currency": "EUR", "capacity": capacity}, admin)
        assert s == 201, (s, ev)
        events.append(ev["id"])
    stop = threading.Event()
    streams = [threading.Thread(target=open_stream, args=(base, events[0], stop), daemon=True) for _ in range(3)]
    for t in streams:
        t.start()
    tokens = [user(base) for _ in range(8)]
    counts = {}
    lock = threading.Lock()

    def note(what):
        with lock:
            counts[what] = counts.get(what, 0) + 1

    def worker(i):
        token = tokens[i % len(tokens)]
        deadline = time.time() + seconds
        n = 0
        while time.time() < deadline:
            n += 1
            call(base, "GET", "/api/v1/events")
            event = events[n % 2]
            s, b = call(base, "POST", f"/api/v1/events/{event}/bookings", {"quantity": 1}, token)
            note(f"hold {s}")
            if s == 201 and n % 3 == 0:
                card = "tok_ok" if n % 2 else "tok_declined"
                s, p = call(base, "POST", f"/api/v1/bookings/{b['id']}/payments", {"method": "card", "card_token": card}, token)
                note(f"pay {s}")
            elif s == 201 and n % 5 == 0:
                s, _ = call(base, "POST", f"/api/v1/bookings/{b['id']}/cancel", None, token)
                note(f"cancel {s}")
            call(base, "GET", f"/api/v1/events/{event}/seats")

    with cf.ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    time.sleep(2)
    stop.set()
    print("load:", json.dumps(counts, sort_keys=True))
    if not counts.get("hold 201"):
        raise SystemExit("load: no hold succeeded")


if __name__ == "__main__":
    main()

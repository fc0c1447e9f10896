"""Set-up for loadtest/cluster.sh, through the gateway: events and logged-in users.

  cluster_setup.py BASE ADMIN_EMAIL ADMIN_PASSWORD sale EVENTS CAPACITY USERS OUT_JSON
  cluster_setup.py BASE ADMIN_EMAIL ADMIN_PASSWORD event CAPACITY     (prints the new event's id)
"""
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def call(base, method, path, body=None, token=None, expect=(200, 201)):
    req = urllib.request.Request(base + "/api/v1" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            if r.status not in expect:
                raise SystemExit(f"{method} {path}: {r.status}")
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None


def admin_token(base, email, password):
    return call(base, "POST", "/auth/login", {"email": email, "password": password})["access_token"]


def event(base, admin, title, capacity):
    return call(base, "POST", "/events", {
        "title": title, "venue": "Cluster Arena", "starts_at": "2030-01-01T20:00:00Z", "price_cents": 5000,
        "currency": "EUR", "capacity": capacity, "max_per_booking": 4, "max_per_user": capacity,
    }, admin)["id"]


def user(base, run, i):
    email = f"cluster-{run}-{i}@load.test"
    call(base, "POST", "/auth/register", {"email": email, "password": "load-test-password"})
    return call(base, "POST", "/auth/login", {"email": email, "password": "load-test-password"})["access_token"]


def main():
    base, email, password, what = sys.argv[1:5]
    admin = admin_token(base, email, password)
    if what == "event":
        print(event(base, admin, f"Hot {time.time_ns()}", int(sys.argv[5])))
        return
    events, capacity, users, out = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
    ids = [event(base, admin, f"Cluster sale {i}", capacity) for i in range(events)]
    run = time.time_ns()
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda i: user(base, run, i), range(users)))
    with open(out, "w") as f:
        json.dump({"events": ids, "tokens": tokens}, f)


if __name__ == "__main__":
    main()

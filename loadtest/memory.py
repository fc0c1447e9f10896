"""RSS of an engine holding N events x 1,000 seats in memory (usage: memory.py BASE N PID).

Creates N seated events of 10 rows x 100 seats, holds a few seats on each, and opens each
event's seat map so that every event actor is running with its inventory loaded; then reads
the engine's resident set size from /proc.
"""
import json
import os
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

base, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
api = base + "/api/v1"


def call(method, path, body=None, token=None):
    req = urllib.request.Request(api + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")


admin = call("POST", "/auth/login", {"email": os.environ["ADMIN_EMAIL"], "password": os.environ["ADMIN_PASSWORD"]})["access_token"]
seat_map = {"sections": [{"name": "Hall", "rows": [{"label": f"R{r}", "seats": 100} for r in range(1, 11)]}]}
before = rss_mib()


def one(i):
    e = call("POST", "/events", {"title": f"Memory {i}", "venue": "RSS Hall", "starts_at": "2030-01-01T20:00:00Z",
                                 "price_cents": 100, "currency": "EUR", "seat_map": seat_map}, admin)
    call("POST", f"/events/{e['id']}/bookings", {"quantity": 4}, admin)
    seats = call("GET", f"/events/{e['id']}/seats")
    assert sum(len(r["seats"]) for s in seats["sections"] for r in s["rows"]) == 1000
    return e["id"]


with ThreadPoolExecutor(16) as pool:
    ids = list(pool.map(one, range(n)))
ready = json.loads(urllib.request.urlopen(base + "/readyz").read())
after = rss_mib()
print(f"memory: {n} events x 1000 seats, {ready['event_actors']} event actors running; "
      f"RSS {before:.1f} MiB before, {after:.1f} MiB after ({(after - before) * 1024 / max(n, 1):.1f} KiB per event)")
if ready["event_actors"] < n:
    raise SystemExit(f"only {ready['event_actors']} of {n} actors running")

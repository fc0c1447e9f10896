#!/usr/bin/env python3
"""Abuse figures of docs/PERFORMANCE.md ("Abuse limits"), against the release binary on SQLite.

    cargo build --release
    python3 loadtest/abuse.py [webhook|logins|methods|streams|all]

Starts the engine (target/release/boxoffice) on a fresh SQLite file in a temporary folder on a
free loopback port, once per scenario with the settings it needs, runs the attack, prints the
figures and stops the engine. Standard library only; traffic only to 127.0.0.x; nothing written
outside the temporary folder.
"""

import asyncio
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("BOXOFFICE_BIN", os.path.join(ROOT, "target", "release", "boxoffice"))
SECRET = "abuse-figures-webhook-secret-0123456789abcdef"
ADMIN = ("admin@abuse.local", "admin-password-123")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Engine:
    def __init__(self, env=None, nofile=None):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        full = dict(os.environ)
        full.update({
            "BIND_ADDR": f"127.0.0.1:{self.port}",
            "DATABASE_URL": f"sqlite://{self.dir.name}/abuse.db",
            "PAYMENT_WEBHOOK_SECRET": SECRET,
            "ADMIN_EMAIL": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "MAIL_OUTBOX_DIR": os.path.join(self.dir.name, "outbox"),
            "RUST_LOG": "error",
        })
        full.pop("AMQP_URL", None)
        full.update(env or {})

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        # ABUSE_LOG=<file>: the engine's log goes there (for when a figure looks wrong).
        log = open(os.environ["ABUSE_LOG"], "ab") if os.environ.get("ABUSE_LOG") else subprocess.DEVNULL
        self.proc = subprocess.Popen([BINARY], env=full, stdout=log, stderr=log,
                                     preexec_fn=limits, cwd=self.dir.name)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("the engine did not start within 60 s")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, timeout=10):
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post(self, path, body, token=None):
        req = urllib.request.Request(self.url(path), data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


async def raw_request(port, head, body=b"", local=None, keep=False):
    """Sends one request over a new connection; returns (status, seconds, writer if kept)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0) if local else None)
    writer.write(head + body)
    line = await reader.readline()
    status = int(line.split()[1]) if line else 0
    length = 0
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        if k.lower() == "content-length":
            length = int(v)
    if length and not keep:
        await reader.readexactly(length)
    elapsed = time.perf_counter() - started
    if keep:
        return status, elapsed, writer
    writer.close()
    return status, elapsed, None


def webhook_head(port, signature, length):
    return (f"POST /api/v1/payments/webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\nX-Signature: {signature}\r\n"
            "Connection: close\r\n\r\n").encode()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def ms(x):
    return f"{x * 1000:.1f} ms"


def webhook():
    body = b"a" * (1024 * 1024)
    e = Engine({"WEBHOOK_RATE_LIMIT_PER_SEC": "0"})
    try:
        async def run():
            now = int(time.time())
            empties = f"t={now}" + ",v1=" * 10_000
            times = [(await raw_request(e.port, webhook_head(e.port, empties, len(body)), body))[:2] for _ in range(20)]
            print(f"webhook, 10,000 empty v1= parts + 1 MiB body: statuses {sorted(set(s for s, _ in times))}, "
                  f"median {ms(statistics.median(t for _, t in times))}, max {ms(max(t for _, t in times))} per request")
            # The most a signature may ask for: 4 whole candidates (wrong), fresh: exactly one MAC.
            four = f"t={now}" + f",v1={'0' * 64}" * 4
            times = [(await raw_request(e.port, webhook_head(e.port, four, len(body)), body))[:2] for _ in range(20)]
            print(f"webhook, 4 wrong candidates + 1 MiB body (one MAC): statuses {sorted(set(s for s, _ in times))}, "
                  f"median {ms(statistics.median(t for _, t in times))} per request")

            async def healthz_latencies(seconds):
                out = []
                end = time.perf_counter() + seconds
                while time.perf_counter() < end:
                    out.append((await raw_request(e.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[1])
                    await asyncio.sleep(0.02)
                return out

            quiet = await healthz_latencies(5)
            stop = time.perf_counter() + 10
            sent = [0, 0]

            async def flood():
                while time.perf_counter() < stop:
                    s, _, _ = await raw_request(e.port, webhook_head(e.port, four, len(body)), body)
                    sent[0] += 1
                    sent[1] += s == 503
            floods = [asyncio.create_task(flood()) for _ in range(64)]
            busy = await healthz_latencies(9)
            await asyncio.gather(*floods)
            print(f"/healthz alone: p50 {ms(pct(quiet, .5))}, p99 {ms(pct(quiet, .99))}, max {ms(max(quiet))}")
            print(f"/healthz during 64 connections of one-MAC webhooks ({sent[0]} in 10 s, {sent[1]} answered 503): "
                  f"p50 {ms(pct(busy, .5))}, p99 {ms(pct(busy, .99))}, max {ms(max(busy))}")
        asyncio.run(run())
    finally:
        e.stop()
    e = Engine()
    try:
        async def limited():
            now = int(time.time())
            four = f"t={now}" + f",v1={'0' * 64}" * 4
            statuses = await asyncio.gather(*(raw_request(e.port, webhook_head(e.port, four, len(body)), body)
                                              for _ in range(300)))
            counts = {}
            for s, _, _ in statuses:
                counts[s] = counts.get(s, 0) + 1
            print(f"webhook with the default WEBHOOK_RATE_LIMIT_PER_SEC=50: 300 at once from one address -> {counts}")
        asyncio.run(limited())
    finally:
        e.stop()


def logins(env, label):
    e = Engine(env)
    try:
        time.sleep(1)
        before = e.status("VmRSS")
        results = {}

        def one(i):
            s, _ = e.post("/api/v1/auth/login", {"email": f"nobody-{uuid.uuid4().hex}@example.com", "password": "x" * 12})
            results[i] = s
        started = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - started
        counts = {}
        for s in results.values():
            counts[s] = counts.get(s, 0) + 1
        print(f"200 parallel logins, unknown e-mails, {label}: {counts} in {took:.1f} s; "
              f"RSS before {before / 1024:.0f} MiB, peak (VmHWM) {e.status('VmHWM') / 1024:.0f} MiB")
    finally:
        e.stop()


def methods():
    e = Engine({"RATE_LIMIT_PER_SEC": "0"})
    try:
        before = len(e.get("/metrics")[1])

        def worker(k):
            c = http.client.HTTPConnection("127.0.0.1", e.port, timeout=30)
            for i in range(k, 10_000, 4):
                c.request(f"ODD{i:05d}{'X' * 50}", "/healthz")
                c.getresponse().read()
            c.close()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = len(e.get("/metrics")[1])
        print(f"/metrics: {before / 1024:.1f} KiB before, {after / 1024:.1f} KiB after 10,000 requests with made-up methods")
    finally:
        e.stop()


def streams():
    e = Engine({"RATE_LIMIT_PER_SEC": "0"}, nofile=640)
    try:
        _, tokens = e.post("/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})
        _, event = e.post("/api/v1/events", {"title": "Flood", "venue": "Hall", "capacity": 100, "price_cents": 100,
                                             "currency": "EUR", "starts_at": "2031-01-01T20:00:00Z"},
                          token=tokens["access_token"])
        path = f"/api/v1/events/{event['id']}/stream"
        idle = e.fds()

        async def run():
            async def one(i):
                local = f"127.0.0.{2 + i // 8}"
                head = f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode()
                try:
                    return await raw_request(e.port, head, local=local, keep=True)
                except OSError:
                    return 0, 0, None
            opened = await asyncio.gather(*(one(i) for i in range(1000)))
            counts = {}
            for s, _, _ in opened:
                counts[s] = counts.get(s, 0) + 1
            await asyncio.sleep(1)
            peak = e.fds()
            healthy = e.get("/healthz")[0]
            print(f"stream flood, open-file limit 640 (cap 320): 1,000 streams from 125 addresses -> {counts}; "
                  f"descriptors {idle} idle, {peak} under the flood; /healthz meanwhile {healthy}")
            for _, _, w in opened:
                if w:
                    w.close()
        asyncio.run(run())
    finally:
        e.stop()


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if not os.path.exists(BINARY):
        raise SystemExit(f"{BINARY} is missing: cargo build --release")
    if what in ("webhook", "all"):
        webhook()
    if what in ("logins", "all"):
        logins({}, "default limits")
        logins({"AUTH_RATE_LIMIT_PER_MIN": "0", "AUTH_ACCOUNT_RATE_LIMIT_PER_MIN": "0"}, "address limits off")
    if what in ("methods", "all"):
        methods()
    if what in ("streams", "all"):
        streams()


if __name__ == "__main__":
    main()

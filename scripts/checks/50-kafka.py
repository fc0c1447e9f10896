"""Driver and independent consumer of the Kafka check (scripts/checks/50-kafka.sh).

  50-kafka.py drive BASE N          holds N bookings on a new event, pays (tok_ok / tok_declined)
                                    and cancels some; prints a JSON summary of what was done
  50-kafka.py verify BASE BROKER TOPIC DB SUMMARY...
                                    reads the topic from the start (kafka-python, not the engine's
                                    client) and prints `ok: ...` / `FAIL: ...` lines

Verification: every record batch carries the idempotent producer's id and gapless sequence
numbers; every row of the engine's outbox (DB: its PostgreSQL URL) is on the topic exactly once
by id, in outbox order per key; each record's value validates against the AsyncAPI payload
schema; and the admin stats equal what the driver did.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

ADMIN = ("admin@example.com", "kafka-admin-password-1")


def call(base, method, path, body=None, token=None, ok=(200, 201, 202, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    if status not in ok:
        raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
    return json.loads(raw) if raw else None


def login(base, email, password):
    return call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})["access_token"]


def wait_booking(base, token, bid, want, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        b = call(base, "GET", f"/api/v1/bookings/{bid}", token=token)
        if b["status"] in want:
            return b
        time.sleep(0.1)
    raise RuntimeError(f"booking {bid} not {want} within {deadline}s: {b['status']}")


def wait_payment(base, token, pid, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        p = call(base, "GET", f"/api/v1/payments/{pid}", token=token)
        if p["status"] != "pending":
            return p
        time.sleep(0.1)
    raise RuntimeError(f"payment {pid} still pending after {deadline}s")


def drive(base, n, tag):
    admin = login(base, *ADMIN)
    event = call(base, "POST", "/api/v1/events", {
        "title": f"kafka check {tag}", "venue": "hall", "starts_at": "2030-01-01T20:00:00Z",
        "price_cents": 1500, "currency": "EUR", "capacity": 1000, "max_per_user": 1000, "max_per_booking": 10,
    }, token=admin)
    eid = event["id"]
    email = f"fan-{tag}-{time.time_ns()}@example.com"
    call(base, "POST", "/api/v1/auth/register", {"email": email, "password": "fan-password-123456"})
    fan = login(base, email, "fan-password-123456")
    done = {"event_id": eid, "holds": 0, "tickets_held": 0, "confirmed": 0, "tickets_sold": 0,
            "revenue_cents": 0, "cancellations": 0, "tickets_refunded": 0, "payment_failures": 0,
            "refunds": 0, "refunded_cents": 0, "expiries": 0}
    for i in range(n):
        qty = 1 + i % 3
        b = call(base, "POST", f"/api/v1/events/{eid}/bookings", {"quantity": qty}, token=fan)
        done["holds"] += 1
        done["tickets_held"] += qty
        kind = i % 4
        if kind in (0, 1):  # paid; every other paid booking is cancelled afterwards (refund)
            p = call(base, "POST", f"/api/v1/bookings/{b['id']}/payments",
                     {"method": "card", "card_token": "tok_ok"}, token=fan)
            p = wait_payment(base, fan, p["id"])
            assert p["status"] == "succeeded", p
            wait_booking(base, fan, b["id"], {"confirmed"})
            done["confirmed"] += 1
            done["tickets_sold"] += qty
            done["revenue_cents"] += qty * 1500
            if kind == 1:
                call(base, "POST", f"/api/v1/bookings/{b['id']}/cancel", token=fan)
                wait_booking(base, fan, b["id"], {"cancelled"})
                done["cancellations"] += 1
                done["tickets_refunded"] += qty
                done["refunds"] += 1
                done["refunded_cents"] += qty * 1500
        elif kind == 2:  # declined: the engine ends the hold itself
            p = call(base, "POST", f"/api/v1/bookings/{b['id']}/payments",
                     {"method": "card", "card_token": "tok_declined"}, token=fan)
            p = wait_payment(base, fan, p["id"])
            assert p["status"] == "failed", p
            done["payment_failures"] += 1
            # The failed payment releases the hold; the figures count it as a payment failure
            # only (not a cancellation: the fan did not cancel).
            wait_booking(base, fan, b["id"], {"cancelled"})
        else:  # cancelled while held
            call(base, "POST", f"/api/v1/bookings/{b['id']}/cancel", token=fan)
            done["cancellations"] += 1
    print(json.dumps(done))


def verify(base, broker, topic, db, summaries):
    import jsonschema
    from kafka import KafkaConsumer, TopicPartition

    lines = []
    ok = lambda m: lines.append("ok: " + m)  # noqa: E731
    fail = lambda m: lines.append("FAIL: " + m)  # noqa: E731

    doc = call(base, "GET", "/api/asyncapi.json")
    # The payload schema of the published message, with the document's components for $refs.
    validators = {}
    for m in doc["components"]["messages"].values():
        schema = dict(m["payload"]["schema"])
        schema["components"] = doc["components"]
        validators[m["name"]] = jsonschema.Draft202012Validator(schema)

    # The outbox as the database holds it (psql: no database driver to install).
    out = subprocess.run(["psql", db, "-AtXq", "-c", "SELECT id || ' ' || payload::text FROM outbox ORDER BY id"],
                         check=True, capture_output=True, text=True).stdout
    outbox = {}
    for line in out.splitlines():
        row_id, payload = line.split(" ", 1)
        ev = json.loads(payload)
        outbox[ev["id"]] = (int(row_id), ev)

    # The record batches as fetched, to read what the producer wrote in their headers.
    from kafka.record import memory_records
    batches = {}  # partition -> {base offset: (producer id, epoch, base sequence, records)}
    reading = [None]
    next_batch = memory_records.MemoryRecords.next_batch

    def spy(self, *a, **k):
        b = next_batch(self, *a, **k)
        if b is not None and hasattr(b, "producer_id"):
            batches.setdefault(reading[0], {})[b.base_offset] = (
                b.producer_id, b.producer_epoch, b.base_sequence, b.last_offset_delta + 1)
        return b

    memory_records.MemoryRecords.next_batch = spy

    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=3000, api_version_auto_timeout_ms=10000)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    ends = consumer.end_offsets(parts)
    seen = {}
    invalid = 0
    per_key = {}
    deadline = time.time() + 60
    # One partition at a time, so every batch fetched is known to belong to it.
    for part in parts:
        reading[0] = part.partition
        consumer.assign([part])
        consumer.seek_to_beginning(part)
        while time.time() < deadline and consumer.position(part) < ends[part]:
            for recs in consumer.poll(timeout_ms=1000, max_records=5000).values():
                for r in recs:
                    ev = json.loads(r.value)
                    seen[ev["id"]] = seen.get(ev["id"], 0) + 1
                    per_key.setdefault(r.key, []).append(ev["id"])
                    v = validators.get(ev.get("type"))
                    errs = list(v.iter_errors(ev)) if v else [jsonschema.ValidationError(f"no message {ev.get('type')}")]
                    if errs:
                        invalid += 1
                        if invalid <= 3:
                            fail(f"record {ev['id']} breaks the AsyncAPI schema: {errs[0].message[:200]}")
    consumer.close()
    memory_records.MemoryRecords.next_batch = next_batch

    # Idempotent producer: every batch carries a producer id, and each producer's sequence
    # numbers on a partition run from 0 without a gap or a repeat (a repeat would be a resent
    # batch the broker appended twice).
    all_batches = [b for bs in batches.values() for b in bs.values()]
    anonymous = sum(1 for b in all_batches if b[0] < 0)
    producers = sorted({b[0] for b in all_batches})
    (fail if anonymous or not all_batches else ok)(
        f"every batch written by an idempotent producer ({len(all_batches)} batches, "
        f"{anonymous} without a producer id, producer ids {producers})")
    broken = []
    for part, bs in batches.items():
        runs = {}
        for offset in sorted(bs):
            pid, epoch, seq, n = bs[offset]
            runs.setdefault((pid, epoch), []).append((seq, n))
        for (pid, epoch), run in runs.items():
            expect = 0
            for seq, n in run:
                if seq != expect:
                    broken.append(f"partition {part} producer {pid}/{epoch}: sequence {seq}, expected {expect}")
                expect = seq + n
    (fail if broken else ok)(
        f"producer sequence numbers without a gap or repeat per partition ({'; '.join(broken[:3]) or 'none'})")

    missing = [i for i in outbox if i not in seen]
    doubled = [i for i, c in seen.items() if c > 1]
    stray = [i for i in seen if i not in outbox]
    (fail if missing else ok)(f"every outbox event on the topic ({len(outbox)} in outbox, {len(missing)} missing)")
    (fail if doubled else ok)(f"no event twice by id ({len(doubled)} doubled)")
    (fail if stray else ok)(f"no record unknown to the outbox ({len(stray)})")
    (fail if invalid else ok)(f"{sum(seen.values())} records parse against the AsyncAPI payload schema")
    disorder = 0
    for key, ids in per_key.items():
        order = [outbox[i][0] for i in ids if i in outbox]
        if order != sorted(order):
            disorder += 1
    (fail if disorder else ok)(f"records in outbox order per key ({len(per_key)} keys, {disorder} out of order)")
    keys_ok = all(k is not None and all(outbox[i][1]["event_id"] == k.decode() for i in ids if i in outbox)
                  for k, ids in per_key.items())
    (ok if keys_ok else fail)("every record keyed by its event (show) id")

    admin = login(base, *ADMIN)
    for s in summaries:
        done = json.loads(s)
        want = {"holds": done["holds"], "tickets_held": done["tickets_held"],
                "bookings_confirmed": done["confirmed"], "tickets_sold": done["tickets_sold"],
                "revenue_cents": done["revenue_cents"], "cancellations": done["cancellations"],
                "tickets_refunded": done["tickets_refunded"], "payment_failures": done["payment_failures"],
                "refunds": done["refunds"], "refunded_cents": done["refunded_cents"], "expiries": done["expiries"]}
        got = None
        end = time.time() + 30
        while time.time() < end:
            totals = call(base, "GET", f"/api/v1/events/{done['event_id']}/stats", token=admin)["totals"]
            got = {k: totals[k] for k in want}
            if got == want:
                break
            time.sleep(0.5)
        (ok if got == want else fail)(f"stats of {done['event_id']} equal what was done: {got} vs {want}")
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "run")
    else:
        verify(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])

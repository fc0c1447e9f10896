"""Figures and verdict of the cluster flash sale (loadtest/cluster.sh).

  cluster_report.py CONSOLE_FILE SETUP_JSON TIMELINE_JSON DATABASE_URL

CONSOLE_FILE has one line per hold answer (loadtest/cluster_sale.js). TIMELINE_JSON holds the
times (ms) of the start, the kill, the restart and the end, and the indexes of the events the
killed node owned. Checks: every answer is 201, 409 or 503 with Retry-After; every 201's booking
is a live booking in the database; nothing oversold. Exit 1 if a check fails.
"""
import json
import subprocess
import sys
import time
from collections import Counter


def sql(url, query):
    # The PostgreSQL server is shared: a moment with all its connections taken is retried.
    for attempt in range(20):
        out = subprocess.run(["psql", url, "-At", "-F", "\t", "-c", query], capture_output=True, text=True)
        if out.returncode == 0:
            return [line.split("\t") for line in out.stdout.splitlines() if line]
        time.sleep(0.5)
    raise SystemExit(f"psql failed: {out.stderr.strip()}")


def main():
    console, setup_file, timeline_file, db = sys.argv[1:5]
    setup = json.load(open(setup_file))
    tl = json.load(open(timeline_file))
    moved = set(tl["moved"])
    rows = []
    for line in open(console):
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit():
            rows.append((int(parts[0]), int(parts[1]), int(parts[2]), parts[3], parts[4]))
    rows.sort()
    start, kill, restart, end = tl["start"], tl["kill"], tl["restart"], tl["end"]
    # k6 takes a moment to start its VUs: the sale starts with its first answer.
    start = max(start, rows[0][0]) if rows else start
    failures = []

    # Failover: per moved event, the first answer (201 or 409) after its last 503 before the
    # restart, i.e. from when its new owner serves it for good. (An answer that arrives just
    # after the kill may come from a request the killed node handled before it died.)
    last_503 = {}
    for t, status, ev, _, _ in rows:
        if status == 503 and kill <= t < restart:
            last_503[ev] = max(t, last_503.get(ev, 0))
    first_served = {}
    for t, status, ev, _, _ in rows:
        if ev in moved and t > last_503.get(ev, kill) and status in (201, 409) and ev not in first_served:
            first_served[ev] = t
    unserved = [ev for ev in moved if ev not in first_served]
    if unserved:
        failures.append(f"moved events never served again: {unserved}")
    failover = max((first_served[ev] - kill for ev in first_served), default=None)
    failover_end = kill + (failover or 0)

    # Throughput per phase (answers and 201s per second).
    warm = start + min(5000, (kill - start) // 3)
    phases = [("before", warm, kill), ("failover", kill, failover_end), ("after failover", failover_end, restart),
              ("after restart", restart, end)]
    tput = {}
    for name, a, b in phases:
        secs = max(b - a, 1) / 1000
        sel = [r for r in rows if a <= r[0] < b]
        ok = sum(1 for r in sel if r[1] == 201)
        tput[name] = {"seconds": round(secs, 1), "answers_per_s": round(len(sel) / secs), "holds_per_s": round(ok / secs),
                      "errors": sum(1 for r in sel if r[1] not in (201, 409))}

    # Errors: only 503 with Retry-After is acceptable.
    kinds = Counter()
    bad = Counter()
    for t, status, ev, retry, what in rows:
        if status in (201, 409) or 200 <= status < 300:
            continue
        where = "moved" if ev in moved else "other"
        kinds[(status, retry != "-", where, what)] += 1
        if status != 503 or retry == "-":
            bad[(status, retry, what)] += 1
    if bad:
        failures.append(f"answers other than 201/409/503+Retry-After: {dict(bad)}")
    in_failover = [r for r in rows if kill <= r[0] < failover_end]
    err_failover = sum(1 for r in in_failover if r[1] not in (201, 409))
    moved_failover = sum(1 for r in in_failover if r[2] in moved)

    # Every 201 is a live booking; nothing oversold.
    acked = [r[4] for r in rows if r[1] == 201]
    sale = ",".join(f"'{e}'" for e in setup["events"])
    statuses = dict(sql(db, f"SELECT id::text, status FROM bookings WHERE event_id IN ({sale})"))
    missing = [b for b in acked if statuses.get(b) not in ("held", "confirmed")]
    if missing:
        failures.append(f"{len(missing)} bookings answered 201 are not live in the database, e.g. {missing[:3]}")
    unacked = len(set(statuses) - set(acked))
    oversold = sql(db, "SELECT count(*) FROM events e WHERE reserved > capacity OR reserved <> (SELECT COALESCE(SUM(quantity),0) "
                       "FROM bookings b WHERE b.event_id = e.id AND status IN ('held','confirmed'))")[0][0]
    doubled = sql(db, "SELECT count(*) FROM (SELECT event_id, seat_id FROM booking_seats GROUP BY 1, 2 HAVING count(*) > 1) d")[0][0]
    if oversold != "0" or doubled != "0":
        failures.append(f"oversold: {oversold} events with reserved > capacity or a counter off; {doubled} seats twice")

    total = len(rows)
    print(f"answers: {total} ({sum(1 for r in rows if r[1] == 201)} x 201, {sum(1 for r in rows if r[1] == 409)} x 409, "
          f"{sum(1 for r in rows if r[1] not in (201, 409))} other) over {(end - start) / 1000:.0f} s; "
          f"killed {tl['victim']} at +{(kill - start) / 1000:.1f} s (it owned events {sorted(moved)} of "
          f"{len(setup['events'])}), restarted at +{(restart - start) / 1000:.1f} s")
    for name, v in tput.items():
        print(f"  {name:15} {v['seconds']:6.1f} s  {v['answers_per_s']:6d} answers/s  {v['holds_per_s']:6d} holds/s  {v['errors']} errors")
    if failover is not None:
        per = ", ".join(f"event {ev}: {(first_served[ev] - kill) / 1000:.1f} s" for ev in sorted(first_served))
        print(f"failover: moved events served again {failover / 1000:.1f} s after the kill ({per})")
    print(f"during failover: {err_failover} of {len(in_failover)} answers were errors "
          f"({100 * err_failover / max(len(in_failover), 1):.1f} %; {moved_failover} answers were for moved events)")
    for (status, has_retry, where, what), n in sorted(kinds.items()):
        print(f"  {n:6d} x {status} {'with' if has_retry else 'WITHOUT'} Retry-After, {where} events, code {what}")
    print(f"database: {len(acked)} bookings answered 201, {len(acked) - len(missing)} of them live; "
          f"{unacked} bookings written without a 201 reaching the client; {oversold} events oversold")
    json.dump({"throughput": tput, "failover_ms": failover, "errors": {f"{k[0]} retry={k[1]} {k[2]} {k[3]}": n for k, n in kinds.items()},
               "acked": len(acked), "missing": len(missing), "unacked": unacked, "oversold": oversold},
              open(timeline_file.replace(".json", "-report.json"), "w"), indent=1)
    if failures:
        for f in failures:
            print("VERIFY FAILED:", f, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

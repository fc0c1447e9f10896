"""Schemathesis hooks for scripts/checks/30-schemathesis.sh.

Auth: admin-only operations get the admin's bearer token, every other operation the user's
(both from the environment, obtained by the check script). Schemathesis knows them as auth, so
`ignored_auth` still tries each secured operation without a token and with a wrong one.

Positive cases only, the request rules that JSON Schema cannot state are kept (each is stated
in the operation's description and enforced with a 422 by the server):
  - create event: exactly one of `capacity` and `seat_map` (not as `oneOf`: the web app's
    generated types cannot build such a body); `max_per_booking` and `max_per_user` at most the capacity; a seat map's
    section names and row labels unique per level, at most 100,000 seats in all, seat ids
    unambiguous;
  - list events: `cursor` is one the API gave (an opaque token), so a made-up one is dropped.
(`quantity` or `seats`, and the field a payment method needs, are in the schema as `oneOf`.)
Negative cases are never filtered.
"""

import os

import schemathesis

ADMIN_TOKEN = os.environ["ST_ADMIN_TOKEN"]
USER_TOKEN = os.environ["ST_USER_TOKEN"]

ADMIN_ONLY = {
    ("POST", "/api/v1/events"),
    ("PATCH", "/api/v1/events/{id}"),
    ("DELETE", "/api/v1/events/{id}"),
    ("POST", "/api/v1/events/{id}/check-in"),
    ("GET", "/api/v1/events/{id}/stats"),
}


@schemathesis.auth(refresh_interval=None)
class Tokens:
    def get(self, case, ctx):
        return {"admin": ADMIN_TOKEN, "user": USER_TOKEN}

    def set(self, case, data, ctx):
        key = (case.operation.method.upper(), case.operation.path)
        token = data["admin"] if key in ADMIN_ONLY else data["user"]
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"


def _positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _int(v):
    # The server reads a whole-number float (`108485.0`) as that integer, so the cross-field
    # rules must compare it too; anything else is for the schema to judge.
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _seat_map_ok(seat_map):
    if not isinstance(seat_map, dict):
        return True  # the schema decides
    sections = seat_map.get("sections")
    if not isinstance(sections, list):
        return True
    names, seats, ids = set(), 0, set()
    if not sections:
        return False
    for section in sections:
        if not isinstance(section, dict):
            return True
        name = section.get("name")
        if name in names:
            return False
        names.add(name)
        rows = section.get("rows") or []
        if not rows:
            return False
        labels = set()
        for row in rows:
            if not isinstance(row, dict):
                return True
            label = row.get("label")
            if label in labels:
                return False
            labels.add(label)
            n = _int(row.get("seats")) or 0
            seats += n
            if seats > 100_000:
                return False
            for i in range(1, n + 1):
                seat_id = f"{name}-{label}-{i}"
                if seat_id in ids:
                    return False
                ids.add(seat_id)
    return True


def _event_ok(body):
    if not isinstance(body, dict):
        return True
    capacity, seat_map = body.get("capacity"), body.get("seat_map")
    if (capacity is None) == (seat_map is None):
        return False
    if seat_map is not None and not _seat_map_ok(seat_map):
        return False
    if capacity is None and isinstance(seat_map, dict):
        capacity = sum(
            _int(r.get("seats")) or 0
            for s in seat_map.get("sections") or []
            if isinstance(s, dict)
            for r in s.get("rows") or []
            if isinstance(r, dict)
        )
    for limit in ("max_per_booking", "max_per_user"):
        v = _int(body.get(limit))
        if v is not None and _int(capacity) is not None and v > capacity:
            return False
    return True


@schemathesis.hook
def filter_case(ctx, case):
    if not _positive(case):
        return True
    op = (case.operation.method.upper(), case.operation.path)
    body = case.body
    if op == ("POST", "/api/v1/events"):
        return _event_ok(body)
    if op == ("GET", "/api/v1/events") and case.query and "cursor" in case.query:
        return False
    return True

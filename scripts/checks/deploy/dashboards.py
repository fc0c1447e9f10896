"""Grafana dashboards: each file is a valid dashboard (the fields Grafana needs, unique panel ids
and refIds, the provisioned datasource), and, given a Prometheus URL, every query of every panel
returns data from it.

    python3 dashboards.py DASHBOARD_DIR DATASOURCE_PROVISIONING [PROMETHEUS_URL]
"""
import glob
import json
import os
import sys
import urllib.parse
import urllib.request

import yaml

PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "text", "row"}
# What Grafana puts in place of its macros for a live query.
MACROS = {"$__rate_interval": "30s", "$__interval": "15s", "$__range": "5m"}


def structure(path, ds_uids):
    problems = []
    try:
        with open(path) as f:
            d = json.load(f)
    except ValueError as e:
        return [f"{path}: not JSON: {e}"], []
    for key, kind in (("uid", str), ("title", str), ("panels", list), ("schemaVersion", int)):
        if not isinstance(d.get(key), kind):
            problems.append(f"{path}: {key} missing or not a {kind.__name__}")
    if d.get("uid") and len(d["uid"]) > 40:
        problems.append(f"{path}: uid longer than 40 characters")
    ids, queries = set(), []
    for p in d.get("panels", []):
        where = f"{path}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids or not isinstance(p.get("id"), int):
            problems.append(f"{where}: id missing or repeated")
        ids.add(p.get("id"))
        if p.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: unknown type {p.get('type')}")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g.get("x", 0) + g.get("w", 0) > 24:
            problems.append(f"{where}: gridPos {g} is not a place on the 24-column grid")
        if p.get("type") in ("text", "row"):
            continue
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append(f"{where}: refIds missing or repeated")
        for t in targets:
            ds = t.get("datasource") or p.get("datasource") or {}
            if ds.get("uid") not in ds_uids:
                problems.append(f"{where}: datasource {ds} is not the provisioned one {sorted(ds_uids)}")
            if not t.get("expr"):
                problems.append(f"{where}: query {t.get('refId')} has no expr")
            else:
                queries.append((where, t["expr"]))
    return problems, queries


def live(prom, where, expr):
    q = expr
    for macro, value in MACROS.items():
        q = q.replace(macro, value)
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        return f"{where}: query failed: {body.get('error')} ({q})"
    if not body["data"]["result"]:
        return f"{where}: no data for {q}"
    return None


def main():
    dash_dir, provisioning = sys.argv[1], sys.argv[2]
    prom = sys.argv[3] if len(sys.argv) > 3 else None
    with open(provisioning) as f:
        ds_uids = {d["uid"] for d in yaml.safe_load(f)["datasources"]}
    files = sorted(glob.glob(os.path.join(dash_dir, "*.json")))
    problems, queries = [], []
    if not files:
        problems.append(f"{dash_dir}: no dashboards")
    uids = set()
    for path in files:
        p, q = structure(path, ds_uids)
        problems += p
        queries += q
        with open(path) as f:
            uid = json.load(f).get("uid")
        if uid in uids:
            problems.append(f"{path}: uid {uid} used twice")
        uids.add(uid)
    answered = 0
    if prom:
        for where, expr in queries:
            p = live(prom, where, expr)
            if p:
                problems.append(p)
            else:
                answered += 1
    for p in problems:
        print(f"dashboards: {p}")
    print(f"dashboards: {len(files)} files, {len(queries)} queries, {answered} answered with data, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

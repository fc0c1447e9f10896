"""Prometheus scraped every engine (all targets up) and loaded the alert rules.

    python3 prom_targets.py PROMETHEUS_URL EXPECTED_TARGETS
"""
import json
import sys
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def main():
    prom, expected = sys.argv[1], int(sys.argv[2])
    targets = get(f"{prom}/api/v1/targets")["data"]["activeTargets"]
    up = [t["scrapeUrl"] for t in targets if t["health"] == "up"]
    rules = [r["name"] for g in get(f"{prom}/api/v1/rules")["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
    print(f"targets up: {up}; alerting rules loaded: {len(rules)}")
    if len(up) != expected or len(targets) != expected:
        raise SystemExit(f"expected {expected} healthy targets, got {[(t['scrapeUrl'], t['health'], t.get('lastError')) for t in targets]}")
    if not rules:
        raise SystemExit("no alerting rule loaded")


if __name__ == "__main__":
    main()

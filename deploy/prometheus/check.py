#!/usr/bin/env python3
"""Asks a live Prometheus that scrapes hookrelay whether every dashboard panel's
query returns series and every metric an alert rule names exists.

usage: check.py PROMETHEUS_URL DASHBOARD_JSON ALERTS_YML
"""
import json
import re
import sys
import urllib.parse
import urllib.request

import yaml


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as res:
        body = json.load(res)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def main():
    base, dashboard, alerts = sys.argv[1:4]
    failures = []
    panels = json.load(open(dashboard))["panels"]
    for panel in panels:
        for target in panel["targets"]:
            if not query(base, target["expr"]):
                failures.append(f'panel "{panel["title"]}": no series for {target["expr"]}')
    rules = [r for g in yaml.safe_load(open(alerts))["groups"] for r in g["rules"]]
    for rule in rules:
        for name in sorted(set(re.findall(r"hookrelay_[a-z_]+", rule["expr"]))):
            if not query(base, f'count({{__name__="{name}"}})'):
                failures.append(f'alert {rule["alert"]}: no series named {name}')
    targets = sum(len(p["targets"]) for p in panels)
    print(f"{targets} panel queries in {len(panels)} panels, {len(rules)} alert rules checked")
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


main()

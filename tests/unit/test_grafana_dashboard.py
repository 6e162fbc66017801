"""deploy/grafana/liaison-bus.json, the Grafana dashboard over the services' Prometheus metrics: it is a dashboard
Grafana imports (unique panel ids, panels on the grid, one Prometheus datasource variable every query uses), and
every series a query names is one a service of ours exports (the metric names declared in the exporters' source),
so a renamed metric fails here, not on an operator's screen."""

from __future__ import annotations

import json
import re

import pytest

from core import REPO_ROOT

pytestmark = pytest.mark.unit

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "liaison-bus.json"
EXPORTERS = ["consumers/forwarder/metrics.py", "consumers/ingress/metrics.py", "consumers/deconfliction/metrics.py",
             "operations/lag/serve.py", "operations/ledger/serve.py"]
#: what prometheus_client adds to a counter's or a histogram's name
SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def exported() -> set[str]:
    names: set[str] = set()
    for rel in EXPORTERS:
        text = (REPO_ROOT / rel).read_text(encoding="utf-8")
        names |= set(re.findall(r'"(liaison_[a-z_]+)"', text))
    ledger = (REPO_ROOT / "operations/ledger/serve.py").read_text(encoding="utf-8")
    names |= {f"liaison_ledger_{n}" for n in re.findall(r'\("([a-z_]+)", "', ledger)}  # f"liaison_ledger_{name}"
    return names


def queried(dash: dict) -> list[tuple[str, str]]:
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", ()):
            for name in re.findall(r"\b(liaison_[a-z_]+)", t["expr"]):
                out.append((p["title"], name))
    return out


def test_every_queried_series_is_exported_by_a_service():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names = exported()
    assert len(names) > 40
    missing = []
    for title, name in queried(dash):
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s) and name[: -len(s)] in names), name)
        if base not in names:
            missing.append((title, name))
    assert not missing, missing
    assert len(queried(dash)) >= 25


def test_the_dashboard_is_one_grafana_imports():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] == "liaison-bus" and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    [var] = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert var["query"] == "prometheus"
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for t in p.get("targets", ()):
            assert t["datasource"]["uid"] == "${" + var["name"] + "}", p["title"]
    kinds = {p["type"] for p in dash["panels"]}
    assert {"row", "timeseries", "stat"} <= kinds

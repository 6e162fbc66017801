"""Prometheus /metrics, /healthz and /ledger (JSON) of ``liaison ledger run --metrics-port N``.

Series (figures computed at scrape time over the windows ending then; labels partner, category, window):

    liaison_ledger_given_records        records given (released) to the partner over the window
    liaison_ledger_given_bytes          their bytes
    liaison_ledger_received_records     records received from the partner (accepted by the ingress guard)
    liaison_ledger_received_bytes       their bytes
    liaison_ledger_ratio                received / given in records (no series when nothing was given)
    liaison_ledger_bytes_ratio          received / given in bytes (likewise)

and of the service: liaison_ledger_audit_records_total (label topic), liaison_ledger_counted_total (label
direction), liaison_ledger_ignored_total (decisions that do not count), liaison_ledger_unreadable_total,
liaison_ledger_transactions_total, liaison_ledger_aborts_total, liaison_ledger_buckets (in the state),
liaison_ledger_last_commit_timestamp_seconds, liaison_ledger_up.

/healthz: 200 while the loop turns (at most LIVE_BOUND_S per turn) and no fault stopped it, else 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from core import http
from operations.ledger.evaluate import rows

#: seconds one loop turn may take (a transaction's retries and abort are bounded by 45 s + 120 s)
LIVE_BOUND_S = 180.0
LABELS = ["partner", "category", "window"]


class LedgerCollector:
    """Custom collector over the service's state (``service.snapshot()``); ``clock`` gives now in seconds."""

    def __init__(self, service, clock: Callable[[], float] = time.time):
        self.service, self.clock = service, clock

    def describe(self):
        return []

    def collect(self):
        state, counters, consumed = self.service.snapshot()
        now_ms = int(self.clock() * 1000)
        fams = {name: GaugeMetricFamily(f"liaison_ledger_{name}", doc, labels=LABELS) for name, doc in (
            ("given_records", "Records given (released) to the partner over the window"),
            ("given_bytes", "Bytes given to the partner over the window"),
            ("received_records", "Records received from the partner (accepted by the ingress guard) over the window"),
            ("received_bytes", "Bytes received from the partner over the window"),
            ("ratio", "Received / given in records over the window (no series when nothing was given)"),
            ("bytes_ratio", "Received / given in bytes over the window (no series when nothing was given)"))}
        for r in rows(state, now_ms):
            labels = [r.partner, r.category, r.window]
            fams["given_records"].add_metric(labels, r.given.count)
            fams["given_bytes"].add_metric(labels, r.given.bytes)
            fams["received_records"].add_metric(labels, r.received.count)
            fams["received_bytes"].add_metric(labels, r.received.bytes)
            if r.ratio is not None:
                fams["ratio"].add_metric(labels, r.ratio)
            if r.bytes_ratio is not None:
                fams["bytes_ratio"].add_metric(labels, r.bytes_ratio)
        yield from fams.values()
        audit = CounterMetricFamily("liaison_ledger_audit_records", "Audit records consumed and committed",
                                    labels=["topic"])
        for topic, n in consumed.items():
            audit.add_metric([topic], n)
        yield audit
        counted = CounterMetricFamily("liaison_ledger_counted", "Audit decisions counted (a decision audit carries "
                                      "one per recipient)", labels=["direction"])
        counted.add_metric(["given"], counters["given"])
        counted.add_metric(["received"], counters["received"])
        yield counted
        yield CounterMetricFamily("liaison_ledger_ignored", "Audit decisions that do not count (withheld, held, "
                                  "quarantined, to a component)", value=counters["ignored"])
        yield CounterMetricFamily("liaison_ledger_unreadable", "Audit records that could not be read (skipped)",
                                  value=counters["unreadable"])
        yield CounterMetricFamily("liaison_ledger_transactions", "Transactions committed", value=counters["transactions"])
        yield CounterMetricFamily("liaison_ledger_aborts", "Transactions aborted (batch consumed again)",
                                  value=counters["aborts"])
        yield GaugeMetricFamily("liaison_ledger_buckets", "Hour buckets in the state", value=len(state))
        if self.service.last_commit is not None:
            yield GaugeMetricFamily("liaison_ledger_last_commit_timestamp_seconds", "When the last transaction "
                                    "committed (epoch seconds)", value=self.service.last_commit)
        yield GaugeMetricFamily("liaison_ledger_up", "1 while the service runs without a fault",
                                value=1 if healthy(self.service)[0] else 0)


def healthy(service, now: float | None = None) -> tuple[bool, dict]:
    now = time.monotonic() if now is None else now
    age = now - service.loop_at
    body = {"loop_age_s": round(age, 1), "fault": service.fault.what if service.fault else None,
            "last_commit": service.last_commit, "stopping": service.stopping}
    return service.fault is None and age <= LIVE_BOUND_S, body


def make_server(service, host: str, port: int, clock: Callable[[], float] = time.time) -> ThreadingHTTPServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(service, clock))

    def health() -> http.Reply:
        ok, body = healthy(service)
        return http.json_reply(body, ok)

    def ledger() -> http.Reply:
        state, _c, _t = service.snapshot()
        return http.json_reply([r.to_dict() for r in rows(state, int(clock() * 1000))], indent=2)

    return http.make_server({"/metrics": http.metrics_route(registry), "/healthz": health, "/ledger": ledger},
                            host, port)


def serve_in_thread(service, host: str, port: int) -> ThreadingHTTPServer:
    return http.serve_in_thread(make_server(service, host, port), "ledger-http")

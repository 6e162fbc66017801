"""Prometheus metrics, health and readiness of the forwarder, on one small HTTP server (``--metrics-port``).

    /metrics   decisions per partner, type and outcome (RELEASE, WITHHOLD, DEAD_LETTER, HELD, RELEASED), input
               records, dead letters (and per stage), held releases and releases from the hold, the hold
               partitions waiting for a record to fall due; the registry's availability and the partitions
               waiting for it; assigned partitions, readiness, client errors per client and kind, restarts
    /healthz   200 while the process loop turns (a batch or a retry may hold it, at most LIVE_BOUND_S) and no
               final error (fenced) stopped it; a supervised restart in progress is healthy
    /readyz    200 when partitions are assigned, the registry answers and the last commit is recent (or there
               was nothing to commit): JSON of every check either way, 503 when one fails
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter as Tally
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer

__all__ = ["Current", "forwarder_counters", "serve_forwarder_metrics", "status"]

#: seconds one loop turn may take before the process counts as stuck (a transaction's retries and abort are
#: bounded by 45 s + 120 s, a registry lookup by about 11 s)
LIVE_BOUND_S = 180.0
#: seconds since the last commit (or the last poll that found nothing to do) before the forwarder is not ready
READY_BOUND_S = 120.0


class Current:
    """What ``liaison forward`` runs now: the Forwarder (None while one is being built), its state, restarts,
    and the client errors of every Forwarder it ran."""

    def __init__(self):
        self.fwd = None
        self.state = "starting"  # starting | running | restarting | stopped | failed
        self.restarts = 0
        self.last_error: str | None = None
        self.errors: Tally = Tally()  # (client, kind) -> n
        self.listeners: list = []  # batch listeners attached to every Forwarder

    def attach(self, fwd) -> None:
        self.fwd = fwd
        fwd.listeners.extend(self.listeners)
        fwd.error_listeners.append(lambda client, kind, err: self.errors.update([(client, kind)]))


def status(current: Current, now: float | None = None) -> tuple[bool, bool, dict]:
    """(healthy, ready, checks)."""
    now = time.monotonic() if now is None else now
    fwd = current.fwd
    body: dict = {"state": current.state, "restarts": current.restarts, "last_error": current.last_error}
    healthy = current.state not in ("failed", "stopped")
    if fwd is None or current.state != "running":
        return healthy, False, body
    loop_age = now - fwd.loop_at
    body.update(loop_age_s=round(loop_age, 1), assigned_partitions=len(fwd.assigned),
                registry_available=fwd.decoder.available, registry_error=fwd.decoder.last_error,
                registry_paused_partitions=len(fwd.registry_paused), hold_paused_partitions=len(fwd.paused),
                last_commit_age_s=None if fwd.last_commit is None else round(now - fwd.last_commit, 1),
                progress_age_s=round(now - fwd.last_progress, 1),
                fault=None if fwd.fault is None else str(fwd.fault))
    healthy = healthy and loop_age < LIVE_BOUND_S and (fwd.fault is None or fwd.fault.recoverable)
    ready = (healthy and fwd.fault is None and bool(fwd.assigned) and fwd.decoder.available
             and now - fwd.last_progress < READY_BOUND_S)
    return healthy, ready, body


class _Collector:
    """Gauges read from the current Forwarder at each scrape, and the counters kept across restarts."""

    def __init__(self, current: Current):
        self.current = current

    def collect(self):
        cur, fwd = self.current, self.current.fwd
        healthy, ready, _ = status(cur)
        g = GaugeMetricFamily
        yield g("liaison_forwarder_ready", "1 when the forwarder is ready (/readyz)", value=int(ready))
        yield g("liaison_forwarder_registry_available", "1 while the schema registry answers the forwarder",
                value=int(fwd is not None and fwd.decoder.available))
        yield g("liaison_forwarder_registry_paused_partitions", "Internal partitions waiting for the registry",
                value=len(fwd.registry_paused) if fwd is not None else 0)
        yield g("liaison_forwarder_assigned_partitions", "Partitions assigned to this forwarder",
                value=len(fwd.assigned) if fwd is not None else 0)
        paused = fwd.paused if fwd is not None else {}
        yield g("liaison_forwarder_hold_paused_partitions", "Hold partitions whose first record is not yet due",
                value=len(paused))
        yield g("liaison_forwarder_hold_next_due_seconds",
                "When the next held record falls due (epoch seconds; 0: none waiting)",
                value=min(paused.values(), default=0) / 1000)
        restarts = CounterMetricFamily("liaison_forwarder_restarts", "Forwarder rebuilds by --supervise")
        restarts.add_metric([], cur.restarts)
        yield restarts
        errors = CounterMetricFamily("liaison_forwarder_client_errors", "Kafka client errors, per client and kind",
                                     labels=["client", "kind"])
        for (client, kind), n in sorted(cur.errors.items()):
            errors.add_metric([client, kind], n)
        yield errors


def forwarder_counters(registry: CollectorRegistry = REGISTRY):
    """The per-batch listener updating the counters."""
    decisions = Counter("liaison_forwarder_decisions", "Release decisions, per partner, type and outcome",
                        ["partner", "type", "decision"], registry=registry)
    records = Counter("liaison_forwarder_records", "Input records forwarded (committed)", registry=registry)
    dead = Counter("liaison_forwarder_dead_letters", "Input records sent to the dead-letter topic",
                   registry=registry)
    stages = Counter("liaison_forwarder_dead_letter_stages", "Dead letters (inputs and hold records) per stage",
                     ["stage"], registry=registry)
    held = Counter("liaison_forwarder_held", "Releases written to the hold topic until their buckets end",
                   ["partner"], registry=registry)
    from_hold = Counter("liaison_forwarder_released_from_hold", "Held releases released when they fell due",
                        ["partner"], registry=registry)

    def on_batch(stats) -> None:
        records.inc(stats.records)
        dead.inc(stats.dead_lettered)
        for stage, n in stats.stages.items():
            stages.labels(stage).inc(n)
        for (partner, type_name, decision), n in stats.counts.items():
            decisions.labels(partner, type_name, decision).inc(n)
            if decision == "HELD":
                held.labels(partner).inc(n)
            elif decision == "RELEASED":
                from_hold.labels(partner).inc(n)

    return on_batch


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def serve_forwarder_metrics(current: Current, port: int, addr: str = "127.0.0.1",
                            registry: CollectorRegistry = REGISTRY):
    """Serve /metrics, /healthz and /readyz for ``current`` on a daemon thread; returns the server."""
    current.listeners.append(forwarder_counters(registry))
    registry.register(_Collector(current))
    metrics = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            healthy, ready, body = status(current)
            ok = healthy if path == "/healthz" else ready
            body.update(healthy=healthy, ready=ready)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps(body, default=str).encode()]
        return metrics(environ, start_response)

    server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="forwarder-metrics").start()
    return server

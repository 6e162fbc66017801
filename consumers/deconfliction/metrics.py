"""Prometheus metrics, health and readiness of the deconfliction service (``--metrics-port``), on the services'
shared shell: its :class:`~consumers.shell.health.Current` and :func:`~consumers.shell.health.status` (the
Deconflictor has the attributes they read), with the service's own metric names.

    /metrics   alerts per status, kind and partner; input records per source; skipped, stale, expired; state
               entries written (tombstones apart); the picture (objects per side and type, open alerts); the
               latency from the oldest record of a batch to its commit (an upper bound of triggering record ->
               alert); the registry's availability; assigned partitions; client errors; restarts
    /healthz   200 while the loop turns and no final error (fenced) stopped it
    /readyz    200 when partitions are assigned, the registry answers and the last commit is recent
"""

from __future__ import annotations

import time
from collections import Counter as Tally

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from consumers.deconfliction.model import Plan
from consumers.shell.health import Current, serve_service_metrics, status

__all__ = ["Current", "deconflict_counters", "picture_counts", "serve_deconflict_metrics", "status"]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def picture_counts(state) -> Tally:
    """(side, type) -> objects in the picture; side "ours" or the partner code, type plan | track."""
    out: Tally = Tally()
    for key, obj in list(state.picture.objects.items()):
        out[(key.split("/", 1)[0] or "ours", "plan" if isinstance(obj, Plan) else "track")] += 1
    return out


class _Collector:
    def __init__(self, current: Current):
        self.current = current

    def collect(self):
        cur, svc = self.current, self.current.fwd
        _healthy, ready, _ = status(cur)
        g = GaugeMetricFamily
        yield g("liaison_deconflict_ready", "1 when the deconfliction service is ready (/readyz)", value=int(ready))
        yield g("liaison_deconflict_registry_available", "1 while the schema registry answers the service",
                value=int(svc is not None and svc.decoder.available))
        yield g("liaison_deconflict_assigned_partitions", "Input partitions assigned (the service's picture is "
                "global: it should hold every partition of its inputs)",
                value=len(svc.assigned) if svc is not None else 0)
        objects = g("liaison_deconflict_objects", "Plans and tracks in the picture, per side and type",
                    labels=["side", "type"])
        for (side, kind), n in sorted(picture_counts(svc.state).items() if svc is not None else ()):
            objects.add_metric([side, kind], n)
        yield objects
        yield g("liaison_deconflict_open_alerts", "Alerts open (NEW or UPDATED, not yet CLEARED)",
                value=len(svc.state.alerts) if svc is not None else 0)
        yield g("liaison_deconflict_restored_entries", "State entries read back from the state topic at start",
                value=svc.restored_entries if svc is not None else 0)
        restarts = CounterMetricFamily("liaison_deconflict_restarts", "Service rebuilds by --supervise")
        restarts.add_metric([], cur.restarts)
        yield restarts
        errors = CounterMetricFamily("liaison_deconflict_client_errors", "Kafka client errors, per client and kind",
                                     labels=["client", "kind"])
        for (client, kind), n in sorted(cur.errors.items()):
            errors.add_metric([client, kind], n)
        yield errors


def deconflict_counters(registry: CollectorRegistry = REGISTRY, clock=time.time):
    """The per-batch listener (called with each committed Batch) updating the counters."""
    alerts = Counter("liaison_deconflict_alerts", "Alerts emitted (committed), per status, kind and partner",
                     ["status", "kind", "partner"], registry=registry)
    records = Counter("liaison_deconflict_records", "Input records consumed (committed), per source",
                      ["source"], registry=registry)
    skipped = Counter("liaison_deconflict_skipped", "Input records skipped: undecodable or unusable",
                      registry=registry)
    stale = Counter("liaison_deconflict_stale", "Input records older than the picture's version", registry=registry)
    expired = Counter("liaison_deconflict_expired_tracks", "Tracks dropped for age", registry=registry)
    entries = Counter("liaison_deconflict_state_entries", "State entries written, tombstones apart",
                      ["op"], registry=registry)
    latency = Histogram("liaison_deconflict_batch_latency_seconds", "Oldest record of a batch (its timestamp) to "
                        "the batch's commit", buckets=LATENCY_BUCKETS, registry=registry)

    def on_batch(batch) -> None:
        s = batch.stats
        for (status_, kind, partner), n in s.alerts.items():
            alerts.labels(status_, kind, partner).inc(n)
        for source, n in s.sources.items():
            records.labels(source).inc(n)
        skipped.inc(s.skipped)
        stale.inc(s.stale)
        expired.inc(s.expired)
        entries.labels("put").inc(s.state_entries - s.tombstones)
        entries.labels("tombstone").inc(s.tombstones)
        if batch.oldest_ms is not None:
            latency.observe(max(0.0, clock() - batch.oldest_ms / 1000))

    return on_batch


def serve_deconflict_metrics(current: Current, port: int, addr: str = "127.0.0.1",
                             registry: CollectorRegistry = REGISTRY):
    """Serve /metrics, /healthz and /readyz for ``current`` on a daemon thread; returns the server."""
    return serve_service_metrics(current, port, _Collector(current), deconflict_counters(registry),
                                 "deconflict-metrics", addr, registry)

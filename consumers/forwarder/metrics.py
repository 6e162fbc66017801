"""Prometheus metrics, health and readiness of the forwarder, on one small HTTP server (``--metrics-port``).

    /metrics   decisions per partner, type and outcome (RELEASE, WITHHOLD, DEAD_LETTER, HELD, RELEASED), input
               records, dead letters (and per stage), held releases and releases from the hold, the hold
               partitions waiting for a record to fall due; the registry's availability and the partitions
               waiting for it; assigned partitions, readiness, client errors per client and kind, restarts
    /healthz, /readyz   consumers.shell.health (the services' shared health and readiness)
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from consumers.shell.health import Current, serve_service_metrics, status

__all__ = ["Current", "forwarder_counters", "serve_forwarder_metrics", "status"]

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


def serve_forwarder_metrics(current: Current, port: int, addr: str = "127.0.0.1",
                            registry: CollectorRegistry = REGISTRY):
    """Serve /metrics, /healthz and /readyz for ``current`` on a daemon thread; returns the server."""
    return serve_service_metrics(current, port, _Collector(current), forwarder_counters(registry), "forwarder-metrics",
                                 addr, registry)

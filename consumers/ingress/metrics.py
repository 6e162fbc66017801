"""Prometheus metrics, health and readiness of the ingress guard (``--metrics-port``), on the services' shared shell:
its :class:`~consumers.shell.health.Current` and :func:`~consumers.shell.health.status` (the Guard has the
attributes they read), with the guard's own metric names.

    /metrics   decisions per partner, type, decision (ACCEPT, QUARANTINE) and check; input records; the seen ids
               held; the registry's availability and the partitions waiting for it; assigned partitions,
               readiness, client errors per client and kind, restarts
    /healthz   200 while the loop turns and no final error (fenced) stopped it
    /readyz    200 when partitions are assigned, the registry answers and the last commit is recent
"""

from __future__ import annotations


from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from consumers.shell.health import Current, serve_service_metrics, status

__all__ = ["Current", "ingress_counters", "serve_ingress_metrics", "status"]


class _Collector:
    def __init__(self, current: Current):
        self.current = current

    def collect(self):
        cur, guard = self.current, self.current.fwd
        _healthy, ready, _ = status(cur)
        g = GaugeMetricFamily
        yield g("liaison_ingress_ready", "1 when the ingress guard is ready (/readyz)", value=int(ready))
        yield g("liaison_ingress_registry_available", "1 while the schema registry answers the guard",
                value=int(guard is not None and guard.decoder.available))
        yield g("liaison_ingress_registry_paused_partitions", "Inbound partitions waiting for the registry",
                value=len(guard.registry_paused) if guard is not None else 0)
        yield g("liaison_ingress_assigned_partitions", "Inbound partitions assigned to this guard",
                value=len(guard.assigned) if guard is not None else 0)
        yield g("liaison_ingress_seen_ids", "Message ids of the partner the guard remembers (replay check)",
                value=len(guard.seen) if guard is not None else 0)
        restarts = CounterMetricFamily("liaison_ingress_restarts", "Guard rebuilds by --supervise")
        restarts.add_metric([], cur.restarts)
        yield restarts
        errors = CounterMetricFamily("liaison_ingress_client_errors", "Kafka client errors, per client and kind",
                                     labels=["client", "kind"])
        for (client, kind), n in sorted(cur.errors.items()):
            errors.add_metric([client, kind], n)
        yield errors


def ingress_counters(registry: CollectorRegistry = REGISTRY):
    """The per-batch listener updating the counters."""
    decisions = Counter("liaison_ingress_decisions", "Ingress decisions, per partner, type, decision and check",
                        ["partner", "type", "decision", "check"], registry=registry)
    records = Counter("liaison_ingress_records", "Inbound records decided (committed)", ["partner"],
                      registry=registry)

    def on_batch(partner: str, stats) -> None:
        records.labels(partner).inc(stats.records)
        for (type_name, decision, check), n in stats.counts.items():
            decisions.labels(partner, type_name, decision, check).inc(n)

    return on_batch


def serve_ingress_metrics(current: Current, port: int, addr: str = "127.0.0.1",
                          registry: CollectorRegistry = REGISTRY):
    """Serve /metrics, /healthz and /readyz for ``current`` on a daemon thread; returns the server."""
    return serve_service_metrics(current, port, _Collector(current), ingress_counters(registry), "ingress-metrics",
                                 addr, registry)

"""Prometheus counters of the forwarder (released / withheld / dead-lettered per partner and type)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, start_http_server


def forwarder_counters(registry: CollectorRegistry = REGISTRY):
    decisions = Counter("liaison_forwarder_decisions", "Release decisions, per partner, type and outcome",
                        ["partner", "type", "decision"], registry=registry)
    records = Counter("liaison_forwarder_records", "Input records forwarded (committed)", registry=registry)
    dead = Counter("liaison_forwarder_dead_letters", "Input records sent to the dead-letter topic",
                   registry=registry)

    def on_batch(stats) -> None:
        records.inc(stats.records)
        dead.inc(stats.dead_lettered)
        for (partner, type_name, decision), n in stats.counts.items():
            decisions.labels(partner, type_name, decision).inc(n)

    return on_batch


def serve_forwarder_metrics(forwarder, port: int, addr: str = "127.0.0.1") -> None:
    forwarder.listeners.append(forwarder_counters())
    start_http_server(port, addr=addr)

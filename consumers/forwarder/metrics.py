"""Prometheus metrics of the forwarder: decisions per partner, type and outcome (RELEASE, WITHHOLD,
DEAD_LETTER, HELD, RELEASED), input records, dead letters, held releases and releases from the hold, and the
hold partitions waiting for a record to fall due."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, start_http_server


def forwarder_counters(registry: CollectorRegistry = REGISTRY, paused=None):
    """The per-batch listener updating the counters; ``paused()`` (optional) -> hold partition -> due ms."""
    decisions = Counter("liaison_forwarder_decisions", "Release decisions, per partner, type and outcome",
                        ["partner", "type", "decision"], registry=registry)
    records = Counter("liaison_forwarder_records", "Input records forwarded (committed)", registry=registry)
    dead = Counter("liaison_forwarder_dead_letters", "Input records sent to the dead-letter topic",
                   registry=registry)
    held = Counter("liaison_forwarder_held", "Releases written to the hold topic until their buckets end",
                   ["partner"], registry=registry)
    from_hold = Counter("liaison_forwarder_released_from_hold", "Held releases released when they fell due",
                        ["partner"], registry=registry)
    if paused is not None:
        waiting = Gauge("liaison_forwarder_hold_paused_partitions",
                        "Hold partitions whose first record is not yet due", registry=registry)
        waiting.set_function(lambda: len(paused()))
        next_due = Gauge("liaison_forwarder_hold_next_due_seconds",
                         "When the next held record falls due (epoch seconds; 0: none waiting)", registry=registry)
        next_due.set_function(lambda: min(paused().values(), default=0) / 1000)

    def on_batch(stats) -> None:
        records.inc(stats.records)
        dead.inc(stats.dead_lettered)
        for (partner, type_name, decision), n in stats.counts.items():
            decisions.labels(partner, type_name, decision).inc(n)
            if decision == "HELD":
                held.labels(partner).inc(n)
            elif decision == "RELEASED":
                from_hold.labels(partner).inc(n)

    return on_batch


def serve_forwarder_metrics(forwarder, port: int, addr: str = "127.0.0.1") -> None:
    forwarder.listeners.append(forwarder_counters(paused=lambda: forwarder.paused))
    start_http_server(port, addr=addr)

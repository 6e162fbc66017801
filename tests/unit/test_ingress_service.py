"""The ingress guard's service parts that need no broker: the seen ids' retention bound, the configuration refused
before any connection (exit 2), the metrics and health endpoints on the forwarder's status()."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from consumers.ingress.metrics import Current, _Collector, ingress_counters, status
from consumers.ingress.pipeline import IngressStats
from consumers.ingress.seen import SEEN_RETENTION_S, check_retention


def test_seen_retention_covers_max_age_plus_max_future():
    assert SEEN_RETENTION_S == 691_200  # deploy/topics.yaml liaison.ingress.seen retention_ms / 1000
    check_retention(7 * 86_400, 300)
    check_retention(8 * 86_400 - 300, 300)
    with pytest.raises(ValueError, match="retention"):
        check_retention(8 * 86_400, 1)


def test_topics_yaml_states_the_same_retention():
    from deploy.topics import load_topics

    [seen] = [t for t in load_topics() if t.name == "liaison.ingress.seen"]
    assert seen.retention_ms == SEEN_RETENTION_S * 1000 and "compact" in seen.cleanup_policy


@pytest.mark.parametrize("kwargs, why", [
    ({"partner": "RUS", "checks": ("size", "framing", "sizes")}, "unknown ingress check"),
    ({"partner": "RUS", "checks": ("framing", "avro", "schema", "label")}, "needs what"),
    ({"partner": "XYZ"}, "no partner policy for XYZ"),
    ({"partner": "russia"}, "not a partner code"),
])
def test_configuration_refused_before_any_connection(kwargs, why):
    from consumers.ingress.service import Guard

    with pytest.raises(ValueError, match=why):
        Guard(**kwargs)  # no server runs for unit tests: any connection would fail otherwise


def test_cli_exit_2_on_configuration():
    import subprocess

    from core import REPO_ROOT

    p = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "liaison"), "ingress", "--partner", "RUS", "--checks",
                        "size,framing"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "must include framing, schema, avro and label" in p.stderr


class FakeGuard:
    def __init__(self):
        self.listeners, self.error_listeners = [], []
        self.loop_at = self.last_progress = time.monotonic()
        self.last_commit = time.monotonic()
        self.assigned = {("liaison.inbound.rus.air.track", 0)}
        self.decoder = type("D", (), {"available": True, "last_error": None})()
        self.registry_paused, self.paused, self.fault = {}, {}, None
        self.seen = {"a", "b"}


def test_metrics_and_readiness():
    cur = Current()
    guard = FakeGuard()
    registry = CollectorRegistry()
    on_batch = ingress_counters(registry)
    registry.register(_Collector(cur))
    cur.attach(guard)
    cur.state = "running"
    assert status(cur)[:2] == (True, True)
    stats = IngressStats(records=3, accepted=2, quarantined=1)
    stats.counts.update({("AirTrack", "ACCEPT", "accepted"): 2, ("AirTrack", "QUARANTINE", "replay"): 1})
    on_batch("RUS", stats)
    text = generate_latest(registry).decode()
    assert 'liaison_ingress_decisions_total{check="replay",decision="QUARANTINE",partner="RUS",type="AirTrack"} 1.0' \
        in text
    assert 'liaison_ingress_records_total{partner="RUS"} 3.0' in text
    assert "liaison_ingress_seen_ids 2.0" in text and "liaison_ingress_ready 1.0" in text
    guard.decoder.available = False
    assert status(cur)[:2] == (True, False)
    cur.state = "failed"
    assert status(cur)[0] is False

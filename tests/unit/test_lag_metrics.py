"""operations.lag.serve's Prometheus collector and HTTP paths over synthetic snapshots (no Kafka)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from operations.lag.collect import wanted
from operations.lag.evaluate import Thresholds
from operations.lag.model import GroupObs, PartitionObs, Snapshot
from operations.lag.monitor import Monitor
from operations.lag.serve import LagCollector, make_server

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


class FakeCollector:
    def __init__(self, snapshots):
        self.snapshots = list(snapshots)

    def poll(self):
        return self.snapshots.pop(0)


def snapshots():
    def g(t, c):
        return GroupObs("fwd", "STABLE", 1, {
            ("in", 0): PartitionObs("in", 0, c, 20, 21),
            ("in", 1): PartitionObs("in", 1, None, 7, 7),  # assigned, never committed
        })
    quiet = GroupObs("quiet", "EMPTY", 0, {("in", 0): PartitionObs("in", 0, 20, 20, 21)})
    return [Snapshot(T0, {"fwd": g(T0, 10), "quiet": quiet}, None, 0.05),
            Snapshot(T0 + 5, {"fwd": g(T0 + 5, 10), "quiet": quiet}, None, 0.04)]


def families(monitor):
    reg = CollectorRegistry(auto_describe=False)
    reg.register(LagCollector(monitor))
    text = generate_latest(reg).decode()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams, name):
    return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples}


def test_metrics_per_partition_and_group_status():
    m = Monitor(FakeCollector(snapshots()), Thresholds(), interval=5)
    m.poll_once()
    m.poll_once()
    text, fams = families(m)
    assert "NaN" not in text
    lag = samples(fams, "liaison_lag_offsets")
    assert lag == {(("group", "fwd"), ("partition", "0"), ("topic", "in")): 10.0,
                   (("group", "quiet"), ("partition", "0"), ("topic", "in")): 0.0}
    # the no-commit partition has no committed / lag series, and an explicit status
    committed = samples(fams, "liaison_lag_committed_offset")
    assert (("group", "fwd"), ("partition", "1"), ("topic", "in")) not in committed
    status = samples(fams, "liaison_lag_partition_status")
    assert status[(("group", "fwd"), ("partition", "1"), ("status", "NO_COMMIT"), ("topic", "in"))] == 1
    assert status[(("group", "fwd"), ("partition", "0"), ("status", "STALLED"), ("topic", "in"))] == 1
    # offset 10 was below the end at the first poll already: waiting at least the 5 s the samples span
    fwd0 = (("group", "fwd"), ("partition", "0"), ("topic", "in"))
    assert samples(fams, "liaison_lag_seconds")[(("estimated", "true"), *fwd0[:1], ("kind", "at_least"),
                                                 *fwd0[1:])] == 5.0
    assert samples(fams, "liaison_lag_seconds_lower_bound")[fwd0] == 5.0
    assert fwd0 not in samples(fams, "liaison_lag_seconds_upper_bound")  # unbounded
    quiet0 = (("group", "quiet"), ("partition", "0"), ("topic", "in"))
    assert samples(fams, "liaison_lag_seconds")[(("estimated", "false"), *quiet0[:1], ("kind", "exact"),
                                                 *quiet0[1:])] == 0.0
    assert samples(fams, "liaison_lag_seconds_upper_bound")[quiet0] == 0.0
    assert samples(fams, "liaison_lag_possible_marker") == {fwd0: 0, quiet0: 0}
    assert samples(fams, "liaison_lag_group_max_lag_seconds")[(("estimated", "true"), ("group", "fwd"),
                                                                ("kind", "at_least"))] == 5.0
    assert samples(fams, "liaison_lag_high_watermark")[(("group", "fwd"), ("partition", "0"), ("topic", "in"))] == 21
    states = samples(fams, "liaison_lag_group_status")
    assert states[(("group", "fwd"), ("liaison_lag_group_status", "STALLED"))] == 1
    assert states[(("group", "fwd"), ("liaison_lag_group_status", "OK"))] == 0
    assert states[(("group", "quiet"), ("liaison_lag_group_status", "OK"))] == 1
    assert samples(fams, "liaison_lag_group_severity") == {(("group", "fwd"),): 2, (("group", "quiet"),): 0}
    assert samples(fams, "liaison_lag_group_partitions")[(("group", "fwd"), ("kind", "without_commit"))] == 1
    assert samples(fams, "liaison_lag_up") == {(): 1}
    assert samples(fams, "liaison_lag_polls")[()] == 2


def test_failed_poll_reports_error_and_up_0():
    snaps = snapshots()[:1] + [Snapshot(T0 + 5, {}, "_TRANSPORT: all brokers down", 10.0)]
    m = Monitor(FakeCollector(snaps), Thresholds(), interval=5)
    m.poll_once()
    m.poll_once()
    _, fams = families(m)
    assert samples(fams, "liaison_lag_up") == {(): 0}
    assert samples(fams, "liaison_lag_group_severity") == {(("group", "fwd"),): 4, (("group", "quiet"),): 4}
    assert "liaison_lag_offsets" not in fams or not fams["liaison_lag_offsets"].samples
    assert samples(fams, "liaison_lag_poll_failures")[()] == 1


def test_http_paths():
    m = Monitor(FakeCollector(snapshots()), Thresholds(), interval=5)
    m.poll_once()
    server = make_server(m, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            names = {f.name for f in text_string_to_metric_families(r.read().decode())}
        assert {"liaison_lag_offsets", "liaison_lag_group_status"} <= names
        with urllib.request.urlopen(base + "/lag", timeout=5) as r:
            body = json.loads(r.read())
        assert [g["group"] for g in body["groups"]] == ["fwd", "quiet"]
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/nope", timeout=5)
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_group_filter():
    assert wanted("liaison-forwarder", None, ["liaison-readback-"])
    assert not wanted("liaison-readback-1234", None, ["liaison-readback-"])
    assert wanted("liaison-readback-1234", None, [""])
    assert wanted("a", ["a", "b"], ["a"])  # explicit groups win over exclusions
    assert not wanted("c", ["a", "b"], [])

"""The project's own server lifecycle: cluster shape, port conflicts, no process left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from core import REPO_ROOT, kafka
from deploy.infra import servers
from core.settings import Settings

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")


def _live_servers(state: Path) -> list[int]:
    """Live (non-zombie) processes carrying this state directory's server marker."""
    return [p for p in servers.stray_pids(state) if servers._alive(p)]


@pytest.mark.cluster
def test_cluster_shape_starts_three_nodes_rf3_roundtrip_and_down_leaves_nothing(tmp_path):
    state = REPO_ROOT / ".state" / "test-cluster"
    s = Settings(state_dir=state, port_base=39092, registry_port=38081, registry_storage="mem",
                 bootstrap_servers="", schema_registry_url="")
    try:
        data = servers.up(s, "cluster", "mem", log=lambda *_: None)
        assert len([p for p in data["processes"] if p["kind"] == "kafka"]) == 3
        assert data["security"]["protocol"] == "SASL_SSL"  # the cluster shape is secured like the single one
        conf = servers.client_settings(data)
        admin = kafka.admin(settings=conf)
        assert len(admin.list_topics(timeout=10).brokers) == 3
        topic = f"test.cluster.{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[topic].result()
        md = admin.list_topics(topic, timeout=10).topics[topic]
        assert all(len(p.replicas) == 3 for p in md.partitions.values())
        p = kafka.producer(settings=conf)
        p.produce(topic, key=b"k", value=b"survives a broker", partition=1)
        assert p.flush(30) == 0
        c = kafka.consumer("test-cluster", settings=conf)
        c.assign([TopicPartition(topic, 1, 0)])
        msg = c.poll(30)
        c.close()
        assert msg is not None and msg.value() == b"survives a broker"
        # the same security as the single shape: no credentials, no entry; a principal without ACLs, no write
        # (the authenticated clients above are the positive control on the same listeners)
        with pytest.raises(KafkaException) as refused:
            AdminClient({"bootstrap.servers": data["bootstrap_servers"], "log_level": 0}).list_topics(timeout=5)
        assert refused.value.args[0].code() == KafkaError._TRANSPORT  # closed by the TLS listener: no metadata
        denied = []
        w = kafka.producer({"enable.idempotence": False, "message.timeout.ms": 10000}, settings=conf,
                           principal="partner-rus")
        w.produce(topic, b"x", on_delivery=lambda err, m: denied.append(err and err.code()))
        w.flush(20)
        assert denied == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        assert servers.registry_healthy(data["schema_registry_url"])
    finally:
        servers.down(s, log=lambda *_: None)
    assert _live_servers(state.resolve()) == []


def test_up_with_port_taken_fails_with_one_clear_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {**os.environ, "LIAISON_STATE_DIR": str(tmp_path / "state"), "LIAISON_PORT_BASE": str(port),
               "LIAISON_REGISTRY_PORT": "48081"}
        res = subprocess.run([LIAISON, "infra", "up"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert f"port {port}" in lines[0] and "already in use" in lines[0]
    assert _live_servers((tmp_path / "state").resolve()) == []


def test_status_and_idempotent_up(backend, tmp_path):
    if backend.kind != "local":
        pytest.skip(f"checks `liaison infra up/status` of the project's own servers; this run uses the {backend.kind} backend, whose servers the project does not manage")
    from tests.conftest import TEST_PORT_BASE, TEST_REGISTRY_PORT, TEST_STATE

    env = {**os.environ, "LIAISON_STATE_DIR": str(TEST_STATE), "LIAISON_PORT_BASE": str(TEST_PORT_BASE),
           "LIAISON_REGISTRY_PORT": str(TEST_REGISTRY_PORT), "LIAISON_REGISTRY_STORAGE": "mem"}
    before = servers.read_state(TEST_STATE.resolve())
    res = subprocess.run([LIAISON, "infra", "up"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "already running" in res.stderr
    assert servers.read_state(TEST_STATE.resolve())["processes"] == before["processes"]
    res = subprocess.run([LIAISON, "infra", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "kafka-1" in res.stdout and "registry" in res.stdout and "unhealthy" not in res.stdout

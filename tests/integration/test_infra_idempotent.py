"""`liaison infra up` starts only what is missing, `restart NAME` restarts exactly one server, `down` is bounded,
and the registry is called ready only when every id it holds answers - on real servers in their own state
directories and ports (single: .state/test-idem, 45092.., registry 45081; cluster: .state/test-cluster-idem,
47092.., registry 47081), KafkaSQL storage (the one that replays a journal after a start).

Each test prints its figures: pids before and after, and the outage (kill -9 until `up` returned with the server
healthy again)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema

from core import REPO_ROOT, kafka, serde
from core.settings import Settings
from deploy.infra import servers
from deploy.infra.errors import InfraError
from deploy.infra.process import http_get, pid_alive

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
SINGLE = (REPO_ROOT / ".state" / "test-idem", 45092, 45081)
CLUSTER = (REPO_ROOT / ".state" / "test-cluster-idem", 47092, 47081)


def _settings(where) -> Settings:
    state, port_base, registry_port = where
    return Settings(state_dir=state, port_base=port_base, registry_port=registry_port, registry_storage="kafkasql",
                    bootstrap_servers="", schema_registry_url="")


def _env(where) -> dict:
    state, port_base, registry_port = where
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    return {**env, "LIAISON_STATE_DIR": str(state), "LIAISON_PORT_BASE": str(port_base),
            "LIAISON_REGISTRY_PORT": str(registry_port), "LIAISON_REGISTRY_STORAGE": "kafkasql"}


def _liaison(where, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([LIAISON, "infra", *args], env=_env(where), capture_output=True, text=True, timeout=timeout)


def _pids(s: Settings) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in servers.read_state(Path(s.state_dir).resolve())["processes"]}


def _live_servers(state: Path) -> list[int]:
    return [p for p in servers.stray_pids(state.resolve()) if pid_alive(p)]


def _kill9(*pids: int) -> float:
    """kill -9 the pids and wait until they are gone; returns the monotonic time of the kill."""
    t = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = t + 10
    while any(pid_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"{pids} still alive 10 s after SIGKILL"
        time.sleep(0.02)
    return t


def _register(data: dict, count: int, prefix: str) -> dict[str, int]:
    client = serde.registry_client(settings=servers.client_settings(data))
    ids = {}
    for i in range(count):
        record = {"type": "record", "name": f"R{i}", "namespace": prefix, "fields": [{"name": "a", "type": "int"}]}
        subject = f"{prefix}.s{i}-value"
        ids[subject] = client.register_schema(subject, Schema(json.dumps(record), "AVRO"))
    return ids


def _ids_not_answering(data: dict, ids: dict[str, int]) -> dict[int, int | None]:
    """Registered ids that the registry (through the gateway, as admin, no client cache) does not serve now."""
    sec = data["security"]
    password = json.loads((Path(sec["credentials_dir"]) / "admin.json").read_text())["password"]
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
    ca = data["registry"]["ssl_ca_location"]
    bad = {}
    for sid in sorted(set(ids.values())):
        status, _ = http_get(f"{data['schema_registry_url']}/schemas/ids/{sid}", 10, ca, auth)
        if status != 200:
            bad[sid] = status
    return bad


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(n for n in before if before[n] != after.get(n))


def _report(case: str, before: dict, after: dict, **figures) -> None:
    extra = " ".join(f"{k}={v:.1f}s" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"\n[{case}] pids before {before} after {after} changed {_changed(before, after)} {extra}")


@pytest.fixture(scope="module")
def single():
    s = _settings(SINGLE)
    servers.down(s, log=lambda *_: None)  # a run interrupted earlier may have left its own servers
    try:
        data = servers.up(s, "single", "kafkasql", log=lambda *_: None)
        ids = _register(data, 30, "test.idem")
        yield s, ids
    finally:
        servers.down(s, log=lambda *_: None)
        assert _live_servers(SINGLE[0]) == []


def test_up_with_everything_running_changes_no_pid(single):
    s, ids = single
    before = _pids(s)
    t0 = time.monotonic()
    res = _liaison(SINGLE, "up")
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert "already running" in res.stderr and "none started" in res.stderr
    after = _pids(s)
    _report("single, all running: up", before, after, up=took)
    assert after == before


def test_registry_killed_up_restarts_the_registry_only_and_it_is_ready(single):
    s, ids = single
    before = _pids(s)
    killed_at = _kill9(before["registry"])
    t0 = time.monotonic()
    data = servers.up(s, log=lambda *_: None)
    returned = time.monotonic()
    # ready means every id answers the moment `up` returns: no retry here
    assert _ids_not_answering(data, ids) == {}
    after = _pids(s)
    _report("single, registry kill -9: up", before, after, up=returned - t0, outage=returned - killed_at)
    assert _changed(before, after) == ["registry"]
    assert pid_alive(after["registry"])


def test_restart_registry_changes_only_the_registry_pid(single):
    s, ids = single
    before = _pids(s)
    t0 = time.monotonic()
    res = _liaison(SINGLE, "restart", "registry")
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    data = servers.read_state(SINGLE[0].resolve())
    assert _ids_not_answering(data, ids) == {}
    after = _pids(s)
    _report("single: restart registry", before, after, restart=took)
    print(res.stderr.strip())
    assert _changed(before, after) == ["registry"]


def test_broker_killed_up_restarts_kafka_only(single):
    s, ids = single
    before = _pids(s)
    killed_at = _kill9(before["kafka-1"])
    t0 = time.monotonic()
    data = servers.up(s, log=lambda *_: None)
    returned = time.monotonic()
    after = _pids(s)
    _report("single, kafka-1 kill -9: up", before, after, up=returned - t0, outage=returned - killed_at)
    assert _changed(before, after) == ["kafka-1"]
    assert _ids_not_answering(data, ids) == {}
    res = _liaison(SINGLE, "status", timeout=60)
    assert res.returncode == 0 and "unhealthy" not in res.stdout, res.stdout + res.stderr


def test_a_hung_server_is_named_and_left_running(single):
    """A server that runs but does not answer (here: SIGSTOP) is not restarted: `up` waits for it, then fails in
    one line naming it and how to restart it; once it answers again, `up` finds everything healthy."""
    s, _ = single
    before = _pids(s)
    gateway = before["registry-gateway"]
    os.kill(gateway, signal.SIGSTOP)
    try:
        impatient = _settings(SINGLE).model_copy(update={"start_timeout": 5.0})
        t0 = time.monotonic()
        with pytest.raises(InfraError) as failed:
            servers.up(impatient, log=lambda *_: None)
        took = time.monotonic() - t0
        message = str(failed.value)
        print(f"\n[single, gateway SIGSTOP: up] failed after {took:.1f}s: {message}")
        assert "\n" not in message and "registry-gateway" in message and "left running" in message
        assert "liaison infra restart registry-gateway" in message
        assert _pids(s) == before and pid_alive(gateway)
    finally:
        os.kill(gateway, signal.SIGCONT)
    res = _liaison(SINGLE, "up")
    assert res.returncode == 0 and "none started" in res.stderr, res.stderr
    assert _pids(s) == before


# ---- cluster shape -----------------------------------------------------------------------------------------

TOPIC = f"test.cluster.idem.{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def cluster():
    s = _settings(CLUSTER)
    servers.down(s, log=lambda *_: None)
    try:
        t0 = time.monotonic()
        data = servers.up(s, "cluster", "kafkasql", log=lambda *_: None)
        print(f"\n[cluster] up from nothing in {time.monotonic() - t0:.1f}s")
        ids = _register(data, 10, "test.cluster.idem")
        admin = kafka.admin(settings=servers.client_settings(data))
        admin.create_topics([NewTopic(TOPIC, 3, 3, config={"min.insync.replicas": "2"})])[TOPIC].result()
        yield s, ids
    finally:
        servers.down(s, log=lambda *_: None)
        assert _live_servers(CLUSTER[0]) == []


def _roundtrip_acks_all(s: Settings) -> None:
    """Produce with acks=all to the RF 3 topic (min ISR 2) and read the records back, on every partition."""
    data = servers.read_state(Path(s.state_dir).resolve())
    conf = servers.client_settings(data)
    md = kafka.admin(settings=conf).list_topics(TOPIC, timeout=10).topics[TOPIC]
    assert all(len(p.replicas) == 3 for p in md.partitions.values())
    p = kafka.producer({"acks": "all"}, settings=conf)
    value = uuid.uuid4().hex.encode()
    errors = []
    for part in md.partitions:
        p.produce(TOPIC, key=b"k", value=value, partition=part, on_delivery=lambda err, m: errors.append(err))
    assert p.flush(30) == 0 and errors == [None] * len(md.partitions)
    c = kafka.consumer(f"test-cluster-idem-{uuid.uuid4().hex[:6]}", settings=conf)
    try:
        c.assign([TopicPartition(TOPIC, part, 0) for part in md.partitions])
        seen, deadline = set(), time.monotonic() + 30
        while len(seen) < len(md.partitions) and time.monotonic() < deadline:
            msg = c.poll(1)
            if msg is not None and not msg.error() and msg.value() == value:
                seen.add(msg.partition())
    finally:
        c.close()
    assert seen == set(md.partitions)



@pytest.mark.cluster
@pytest.mark.faults
def test_cluster_up_with_everything_running_changes_no_pid(cluster):
    s, ids = cluster
    before = _pids(s)
    t0 = time.monotonic()
    res = _liaison(CLUSTER, "up")
    assert res.returncode == 0 and "none started" in res.stderr, res.stderr
    after = _pids(s)
    _report("cluster, all running: up", before, after, up=time.monotonic() - t0)
    assert after == before


@pytest.mark.cluster
@pytest.mark.faults
def test_cluster_one_broker_killed_up_restarts_exactly_it(cluster):
    s, ids = cluster
    before = _pids(s)
    killed_at = _kill9(before["kafka-2"])
    t0 = time.monotonic()
    data = servers.up(s, log=lambda *_: None)
    returned = time.monotonic()
    after = _pids(s)
    _report("cluster, kafka-2 kill -9: up", before, after, up=returned - t0, outage=returned - killed_at)
    assert _changed(before, after) == ["kafka-2"]
    _roundtrip_acks_all(s)
    assert _ids_not_answering(data, ids) == {}


@pytest.mark.cluster
@pytest.mark.faults
def test_cluster_two_brokers_killed_up_restarts_exactly_those(cluster):
    s, ids = cluster
    before = _pids(s)
    killed_at = _kill9(before["kafka-1"], before["kafka-3"])
    t0 = time.monotonic()
    data = servers.up(s, log=lambda *_: None)
    returned = time.monotonic()
    after = _pids(s)
    _report("cluster, kafka-1 + kafka-3 kill -9: up", before, after, up=returned - t0, outage=returned - killed_at)
    assert _changed(before, after) == ["kafka-1", "kafka-3"]
    _roundtrip_acks_all(s)
    assert _ids_not_answering(data, ids) == {}


@pytest.mark.cluster
@pytest.mark.faults
def test_cluster_restart_one_broker_changes_only_its_pid(cluster):
    s, ids = cluster
    before = _pids(s)
    t0 = time.monotonic()
    res = _liaison(CLUSTER, "restart", "kafka-3")
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    after = _pids(s)
    _report("cluster: restart kafka-3", before, after, restart=took)
    print(res.stderr.strip())
    assert _changed(before, after) == ["kafka-3"]
    _roundtrip_acks_all(s)


@pytest.mark.cluster
@pytest.mark.faults
def test_cluster_down_with_two_brokers_dead_is_bounded_and_leaves_nothing(cluster):
    s, _ = cluster
    before = _pids(s)
    _kill9(before["kafka-1"], before["kafka-2"])
    t0 = time.monotonic()
    res = _liaison(CLUSTER, "down", timeout=120)
    took = time.monotonic() - t0
    print(f"\n[cluster, kafka-1 + kafka-2 dead: down] {took:.1f}s\n{res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    assert "no controller quorum" in res.stderr
    # every survivor (kafka-3, registry, gateway) is killed after NO_QUORUM_BOUND at the latest
    assert took < servers.NO_QUORUM_BOUND + 10
    assert _live_servers(CLUSTER[0]) == []
    assert servers.read_state(CLUSTER[0].resolve()) is None

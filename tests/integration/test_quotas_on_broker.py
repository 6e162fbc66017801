"""Client quotas on the real, secured broker: deploy/quotas.yaml applied (by `infra up` and `liaison quotas
apply`), a second apply changes nothing, drift reported and pruned only when asked, and a partner flooding its
inbound topic throttled by the broker to its producer_byte_rate while an unquoted principal is not."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from core import REPO_ROOT, kafka
from core.settings import get_settings
from core.topics import inbound_prefix
from deploy.quotas import admin_tool, load_quotas

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
MIB = 1 << 20


@pytest.fixture(scope="module")
def tool(backend):
    if get_settings().security() is None:
        pytest.fail("the servers in use are PLAINTEXT: every client is User:ANONYMOUS there, so a partner's quota "
                    "cannot be shown. Run the suite on the project's own (secured) servers.", pytrace=False)
    return admin_tool()


@pytest.fixture(scope="module")
def declared():
    return load_quotas()


def _quotas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LIAISON, "quotas", *args], capture_output=True, text=True, timeout=180, env=os.environ)


def test_the_declared_quotas_are_on_the_broker_and_a_second_apply_changes_nothing(tool, declared):
    assert set(declared) == {"partner-rus", "partner-usa"}
    res = _quotas("apply")  # `infra up` applied them when it started the broker: normally nothing to do
    assert res.returncode == 0, res.stdout + res.stderr
    assert tool.describe() == declared
    res = _quotas("apply")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == f"nothing to do: {sum(len(v) for v in declared.values())} quota(s) on the broker, as declared"
    # describe: the broker's own tool output, and the CLI's view of it
    text = tool.describe_text("partner-rus")
    assert "Quota configs for user-principal 'partner-rus' are" in text
    assert "producer_byte_rate=1048576.0" in text and "request_percentage=25.0" in text
    res = _quotas("describe")
    assert res.returncode == 0, res.stderr
    assert "User:partner-usa producer_byte_rate=1048576" in res.stdout.splitlines()
    assert "[" not in res.stdout  # nothing marked: as declared


def test_apply_restores_a_changed_quota_reports_drift_and_prunes_only_when_asked(tool, declared):
    try:
        tool.alter("partner-usa", {"producer_byte_rate": 2048.0}, ["consumer_byte_rate"])
        tool.alter("lag-monitor", {"request_percentage": 7.0})  # a quota the file does not declare
        res = _quotas("apply", "--dry-run")
        assert res.returncode == 3, res.stdout + res.stderr
        assert "would set User:partner-usa producer_byte_rate=1048576 (was 2048)" in res.stdout
        assert tool.describe()["partner-usa"]["producer_byte_rate"] == 2048.0  # dry run: unchanged
        res = _quotas("apply")
        assert res.returncode == 3, res.stdout + res.stderr
        lines = res.stdout.splitlines()
        assert "set User:partner-usa producer_byte_rate=1048576 (was 2048)" in lines
        assert "set User:partner-usa consumer_byte_rate=4194304 (was unset)" in lines
        assert ("drift: User:lag-monitor request_percentage=7 (on the broker, not in the file; --prune removes it)"
                in lines)
        assert lines[-1] == "2 set, 4 already as declared, 1 drift"
        assert tool.describe() == {**declared, "lag-monitor": {"request_percentage": 7.0}}  # drift kept
        res = _quotas("apply", "--prune")
        assert res.returncode == 0 and "pruned User:lag-monitor request_percentage=7" in res.stdout, res.stdout
        assert tool.describe() == declared
        res = _quotas("apply")
        assert res.returncode == 0 and res.stdout.startswith("nothing to do"), res.stdout
    finally:
        on_broker = tool.describe()
        if "lag-monitor" in on_broker:
            tool.alter("lag-monitor", {}, list(on_broker["lag-monitor"]))
        if on_broker.get("partner-usa") != declared["partner-usa"]:
            tool.alter("partner-usa", declared["partner-usa"])


def test_an_invalid_quota_file_is_one_line(tool, tmp_path):
    (tmp_path / "topics.yaml").write_text("partners: [RUS]\n")
    f = tmp_path / "quotas.yaml"
    f.write_text("per_partner:\n  defaults: {producer_byte_rate: fast}\n")
    res = _quotas("apply", "--file", str(f))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(f) in lines[0] and "producer_byte_rate" in lines[0], res.stderr


@pytest.fixture
def probe_topic(tool):
    """A topic under RUS's inbound prefix (the partner may WRITE it), not one the ingress guard reads, with the
    inbound topics' record bound; deleted afterwards."""
    admin = kafka.admin()
    topic = f"{inbound_prefix('RUS')}quota-probe-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "131072"})])[topic].result(30)
    yield topic
    admin.delete_topics([topic])[topic].result(30)


def _flood(principal: str, topic: str, total: int, record: int = 4096) -> dict:
    """Produce ``total`` bytes as fast as the client may, as ``principal``: seconds until every record is
    acknowledged, bytes acknowledged, the throttle times the broker reported, and the rate acknowledged after
    the first throttle (the steady state of a throttled client)."""
    throttles: list[tuple[float, float]] = []
    acks: list[tuple[float, int]] = []
    errors: list[str] = []

    def delivered(err, msg):
        if err is None:
            acks.append((time.monotonic(), len(msg.value())))
        else:
            errors.append(str(err))

    # inbound topics take batches of at most 128 KiB (max.message.bytes applies to a whole batch)
    p = kafka.producer({"compression.type": "none", "linger.ms": 5, "batch.size": 65536, "acks": "all",
                        "throttle_cb": lambda e: throttles.append((time.monotonic(), e.throttle_time))},
                       principal=principal)
    value = os.urandom(record)
    t0 = time.monotonic()
    for _ in range(total // record):
        while True:
            try:
                p.produce(topic, value, on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(180) == 0
    elapsed = time.monotonic() - t0
    assert not errors, errors[:3]
    out = {"seconds": elapsed, "bytes": sum(n for _, n in acks), "throttles": [t for _, t in throttles if t > 0],
           "steady_rate": None}
    first = next((at for at, t in throttles if t > 0), None)
    if first is not None:
        after = [(at, n) for at, n in acks if at > first]
        if after and after[-1][0] - first > 2:
            out["steady_rate"] = sum(n for _, n in after) / (after[-1][0] - first)
    return out


def test_a_partner_flooding_its_inbound_topic_is_throttled_to_its_quota(tool, declared, probe_topic):
    quota = declared["partner-rus"]["producer_byte_rate"]
    assert tool.describe()["partner-rus"]["producer_byte_rate"] == quota
    # The broker measures a rate over its quota window (quota.window.num 11 x 1 s) and pads a young window to
    # 10 s, so a principal idle until now may send about 10 s worth at once; 20 s worth must be throttled.
    window = 11
    total = int(20 * quota)
    # positive control: the same flood by a principal without a quota is never throttled
    free = _flood("admin", probe_topic, total)
    assert free["bytes"] == total and not free["throttles"]
    rus = _flood("partner-rus", probe_topic, total)
    summary = (f"partner-rus {rus['bytes'] / MIB:.1f} MiB in {rus['seconds']:.1f}s = "
               f"{rus['bytes'] / rus['seconds'] / MIB:.2f} MiB/s, after its first throttle "
               f"{(rus['steady_rate'] or 0) / MIB:.2f} MiB/s (quota {quota / MIB:.2f} MiB/s), "
               f"{len(rus['throttles'])} throttles up to {max(rus['throttles'], default=0):.2f}s; admin "
               f"{free['bytes'] / free['seconds'] / MIB:.2f} MiB/s, never throttled")
    print(summary)
    assert rus["bytes"] == total, summary  # throttled, not refused: nothing lost
    assert rus["throttles"], summary  # the broker's throttle_time_ms (KIP-219), seen by librdkafka
    # what the partner got through is bounded by its quota over the time it took (plus one window)
    assert rus["bytes"] <= 1.1 * quota * (rus["seconds"] + window), summary
    assert rus["steady_rate"] is not None and rus["steady_rate"] <= 1.5 * quota, summary

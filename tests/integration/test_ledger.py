"""The reciprocity ledger on the real broker (issue 11, acceptance 5): known DecisionAudit and IngressAudit
records, framed with the registered schemas, some inside an aborted transaction; `liaison ledger run` as the
`ledger` principal, killed with SIGKILL while a transaction is open and started again; the changelog's figures
equal counts computed independently from the two audit topics (read_committed, decoded by confluent-kafka's
deserializer) and what the writer committed, bucket by bucket: nothing aborted counted, nothing counted twice.

The ledger's changelog and group are deleted first and the group is positioned at the audit topics' current ends
(what an operator does to start a ledger afresh), so the ledger and the independent count both count from there:
what earlier tests left on the audit topics (a million records after the forwarder's tests) is counted by neither.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections import Counter

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext
from prometheus_client.parser import text_string_to_metric_families

from core import REPO_ROOT, kafka, serde
from core.audit import decisions_of
from core.readback import committed_offsets, end_offsets, read_between
from core.topics import AUDIT_TOPIC, INGRESS_AUDIT_TOPIC, LEDGER_TOPIC
from deploy import governance, topics
from operations.ledger import load_state
from operations.ledger.model import HOUR_MS, BucketKey, Figures
from schemas.agreement import CATEGORY_OF
from tests.integration.forwarder_helpers import ForwarderLog

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
GROUP = "liaison-ledger"


# ---------------------------------------------------------------------------------------------- setup


def _reset_ledger() -> dict[tuple[str, int], int]:
    """Delete liaison.ledger and the ledger's group, wait until the topic is gone, create it again; commit the
    group's offsets at the audit topics' current ends and return them."""
    admin = kafka.admin()
    for fut in admin.delete_consumer_groups([GROUP], request_timeout=30).values():
        try:
            fut.result()
        except Exception:  # noqa: BLE001 - no such group yet
            pass
    if LEDGER_TOPIC in admin.list_topics(timeout=10).topics:
        admin.delete_topics([LEDGER_TOPIC], operation_timeout=30)[LEDGER_TOPIC].result()
    deadline = time.monotonic() + 60
    spec = [t for t in topics.load_topics() if t.name == LEDGER_TOPIC]
    while True:
        try:
            topics.apply_topics(spec, admin)
        except Exception:  # noqa: BLE001 - still marked for deletion
            pass
        md = admin.list_topics(LEDGER_TOPIC, timeout=10).topics.get(LEDGER_TOPIC)
        if md is not None and md.error is None and md.partitions and all(p.leader >= 0 for p in md.partitions.values()):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{LEDGER_TOPIC} not created again")
        time.sleep(0.2)  # topic deletion completes asynchronously on the controller
    start = end_offsets([AUDIT_TOPIC, INGRESS_AUDIT_TOPIC])
    request = ConsumerGroupTopicPartitions(GROUP, [TopicPartition(t, p, o) for (t, p), o in start.items()])
    admin.alter_consumer_group_offsets([request], request_timeout=30)[GROUP].result()
    assert committed_offsets(GROUP, [AUDIT_TOPIC, INGRESS_AUDIT_TOPIC]) == start
    return start


class AuditWriter:
    """Framed audit records (the registered schemas' ids) in transactions, as admin; tallies what it committed
    per bucket, by its own reading of the rules."""

    def __init__(self):
        client = serde.registry_client()
        self.decision = serde.lookup_encoder(serde.value_subject(AUDIT_TOPIC),
                                             governance.audit_schema_path().read_text(), client)
        self.ingress = serde.lookup_encoder(serde.value_subject(INGRESS_AUDIT_TOPIC),
                                            governance.ingress_audit_schema_path().read_text(), client)
        self.producer = kafka.producer({"transactional.id": f"test-ledger-writer-{uuid.uuid4().hex[:8]}"})
        self.producer.init_transactions(30)
        self.committed: Counter = Counter()  # (partner, category, direction, hour) -> records
        self.committed_bytes: Counter = Counter()
        self.n = 0

    def _decision(self, partner, decision, type_name, at, size):
        self.n += 1
        rec = {"input_topic": "liaison.internal.test", "input_partition": 0, "input_offset": self.n,
               "message_id": f"m-{self.n}", "message_type": type_name, "decided_at": at, "forwarder": "test",
               "decisions": [{"partner": partner, "decision": decision, "rule": "test", "reason": "test",
                              "policy_version": "test", "output_topic": None, "due_at": None,
                              "bytes": size if decision in ("RELEASE", "HELD", "RELEASED") else None}]}
        counts = decision in ("RELEASE", "RELEASED") and len(partner) == 3 and partner.isupper()
        return AUDIT_TOPIC, self.decision.encode(rec), (partner, CATEGORY_OF[type_name], "given", at, size, counts)

    def _ingress(self, partner, decision, type_name, at, size):
        self.n += 1
        rec = {"input_topic": "liaison.inbound.test", "input_partition": 0, "input_offset": self.n,
               "partner": partner, "message_type": type_name, "message_id": f"i-{self.n}", "decision": decision,
               "check": "accepted" if decision == "ACCEPT" else "label", "reason": "test", "output_topic": "t",
               "bytes": size, "decided_at": at, "guard": "test"}
        return INGRESS_AUDIT_TOPIC, self.ingress.encode(rec), (partner, CATEGORY_OF[type_name], "received", at, size,
                                                               decision == "ACCEPT")

    def transaction(self, specs, commit: bool = True) -> None:
        self.producer.begin_transaction()
        tally = []
        for kind, *args in specs:
            topic, value, (partner, category, direction, at, size, counts) = (
                self._decision(*args) if kind == "d" else self._ingress(*args))
            self.producer.produce(topic, value, f"k{self.n}".encode())
            if counts:
                tally.append(((partner, category, direction, at - at % HOUR_MS), size))
        if commit:
            self.producer.commit_transaction(30)
            for key, size in tally:
                self.committed[key] += 1
                self.committed_bytes[key] += size
        else:
            self.producer.flush(30)
            self.producer.abort_transaction(30)


def workload(now_ms: int, seed: int, n: int):
    """n transactions of mixed audits: partners and components, every decision, hours now-5h..now, 3 days back,
    10 days back (outside the week)."""
    types = list(CATEGORY_OF)
    offsets_h = [0, 1, 2, 5, 72, 240]
    out = []
    for t in range(n):
        specs = []
        for i in range(20):
            k = seed * 1000 + t * 20 + i
            at = now_ms - offsets_h[k % len(offsets_h)] * HOUR_MS - (k * 7919) % HOUR_MS
            type_name = types[k % len(types)]
            recipient = ("RUS", "USA", "naval", "intel")[k % 4]
            decision = ("RELEASE", "RELEASE", "WITHHOLD", "HELD", "RELEASED", "DEAD_LETTER")[(k // 4) % 6]
            specs.append(("d", recipient, decision, type_name, at, 100 + k % 50))
            if i % 2 == 0:
                specs.append(("i", ("RUS", "USA")[k % 2], ("ACCEPT", "ACCEPT", "QUARANTINE")[k % 3], type_name, at,
                              60 + k % 30))
        out.append(specs)
    return out


# ---------------------------------------------------------------------------------------------- the service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ledger(*extra: str) -> tuple[subprocess.Popen, ForwarderLog, int]:
    port = free_port()
    p = subprocess.Popen([LIAISON, "ledger", "run", "--batch-size", "40", "--metrics-port", str(port), *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ)
    return p, ForwarderLog(p), port


def metrics(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def wait_caught_up(p, log, targets: dict[tuple[str, int], int], timeout: float = 180) -> None:
    """Until the ledger's group has committed, on every audit partition, the offset after its last committed
    record (what a read_committed reader saw); between checks, wait for its next committed batch."""
    deadline = time.monotonic() + timeout
    committed: dict = {}
    while time.monotonic() < deadline:
        assert p.poll() is None, log.finish()[-3000:]
        committed = committed_offsets(GROUP, [AUDIT_TOPIC, INGRESS_AUDIT_TOPIC])
        if all(committed.get(tp, 0) >= o for tp, o in targets.items()):
            return
        n = log.count("ledger batch committed")
        with log._cond:
            log._cond.wait_for(lambda: log.events.count("ledger batch committed") > n or log._closed, 5)
    late = {tp: (committed.get(tp), o) for tp, o in targets.items() if committed.get(tp, 0) < o}
    raise AssertionError(f"ledger not caught up (committed, wanted): {late}:\n{log.finish()[-3000:]}")


# ---------------------------------------------------------------------------------------------- independent count


def independent_counts(start: dict[tuple[str, int], int]) -> tuple[dict, dict[tuple[str, int], int]]:
    """Bucket figures from the audit topics themselves after `start` (read_committed, confluent-kafka's Avro
    deserializer), and per partition the offset after its last committed record."""
    ends = end_offsets([AUDIT_TOPIC, INGRESS_AUDIT_TOPIC])
    msgs = read_between(start, ends, timeout=120)
    deser = serde.avro_deserializer()
    counts: Counter = Counter()
    sizes: Counter = Counter()
    after: dict[tuple[str, int], int] = {}
    for m in msgs:
        tp = (m.topic(), m.partition())
        after[tp] = max(after.get(tp, 0), m.offset() + 1)
        record = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
        for a in decisions_of(record) if m.topic() == AUDIT_TOPIC else [record]:  # every decision it carries
            at = a["decided_at"]
            at_ms = int(at.timestamp() * 1000) if hasattr(at, "timestamp") else int(at)
            hour = at_ms - at_ms % HOUR_MS
            partner = a["partner"]
            if not (len(partner) == 3 and partner.isalpha() and partner.isupper()):
                continue
            category = CATEGORY_OF.get((a.get("message_type") or "").rpartition("/")[2])
            if category is None:
                continue
            if m.topic() == AUDIT_TOPIC and a["decision"] in ("RELEASE", "RELEASED"):
                key = BucketKey(partner, category, "given", hour)
            elif m.topic() == INGRESS_AUDIT_TOPIC and a["decision"] == "ACCEPT":
                key = BucketKey(partner, category, "received", hour)
            else:
                continue
            counts[key] += 1
            sizes[key] += a.get("bytes") or 0
    return {k: Figures(counts[k], sizes[k]) for k in counts}, after


def changelog_state(principal: str | None = None, group: str = "liaison-ledger-check-", eof: bool = True):
    c = kafka.consumer(f"{group}{uuid.uuid4().hex[:8]}",
                       {"isolation.level": "read_committed", "enable.partition.eof": eof}, principal=principal)
    try:
        return load_state(c, timeout=60)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------- the test


def test_ledger_equals_the_audits_across_a_kill_and_restart(bus):
    start = _reset_ledger()
    writer = AuditWriter()
    now = int(time.time() * 1000)

    # phase 1: committed transactions, one aborted in the middle (its records must never count)
    phase1 = workload(now, 1, 12)
    for i, specs in enumerate(phase1):
        writer.transaction(specs)
        if i == 5:
            writer.transaction(workload(now, 9, 1)[0] + [("d", "RUS", "RELEASE", "StrikeReport", now, 999)] * 30,
                               commit=False)

    # the first run commits a few batches, then is killed while a transaction is open with its records sent
    p, log, _port = start_ledger("--pause-before-commit", "1.5")
    try:
        log.wait_for("ledger batch committed", 3, timeout=180)
        n = log.count("ledger transaction open, pausing before commit")
        log.wait_for("ledger transaction open, pausing before commit", n + 1, timeout=60)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    first_log = log.finish()
    assert p.returncode == -signal.SIGKILL

    # the second run: restores from the changelog (the open transaction aborted by its init_transactions),
    # goes on, and counts phase 2 while it is written
    p, log, port = start_ledger()
    try:
        log.wait_for("ledger restored", timeout=120)
        restored = json.loads(next(line for line in log.lines if '"ledger restored"' in line))
        assert restored["buckets"] > 0, first_log[-2000:]
        for specs in workload(now, 2, 8):
            writer.transaction(specs)
        writer.transaction(workload(now, 8, 1)[0], commit=False)
        expected, targets = independent_counts(start)
        wait_caught_up(p, log, targets)
        fams = metrics(port)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
        # a category this test gave RUS records of in the last hours (counted in the day and the week)
        recent = sorted(c for (pt, c, d, hour), _n in writer.committed.items()
                        if pt == "RUS" and d == "given" and hour >= now - 3 * HOUR_MS)
        assert recent, writer.committed
        given_now = recent[0]
        week_given = {s.labels["partner"]: s.value for s in fams["liaison_ledger_given_records"].samples
                      if s.labels["window"] == "week" and s.labels["category"] == given_now}
        assert week_given["RUS"] > 0
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.finish()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    log.finish()

    # the ledger equals the independent count, bucket by bucket; what this test committed is all there
    got = changelog_state()
    assert got.buckets == expected
    for (partner, category, direction, hour), n in writer.committed.items():
        key = BucketKey(partner, category, direction, hour)
        assert got.get(key) == Figures(n, writer.committed_bytes[(partner, category, direction, hour)]), key
    assert got.buckets and all(k.partner in ("RUS", "USA") for k in got.buckets)
    # what the forwarder reads, as its own principal, with a consumer of its own (no partition EOF events)
    assert changelog_state("forwarder", "liaison-forwarder-ledger-", eof=False) == got

    # `liaison ledger --json` shows the same figures over day and week
    res = subprocess.run([LIAISON, "ledger", "--json", "--partner", "RUS"], capture_output=True, text=True,
                         timeout=120, env=os.environ)
    assert res.returncode == 0, res.stderr[-2000:]
    shown = {(r["category"], r["window"]): r for r in json.loads(res.stdout)["rows"]}
    from operations.ledger.evaluate import LedgerState, rows

    want_rows = {(r.category, r.window): r.to_dict() for r in rows(LedgerState(expected), int(time.time() * 1000),
                                                                    ["RUS"])}
    assert shown == want_rows
    assert shown[(given_now, "day")]["given"]["count"] > 0
    assert shown[(given_now, "week")]["given"]["count"] >= shown[(given_now, "day")]["given"]["count"]

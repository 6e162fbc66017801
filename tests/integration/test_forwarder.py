"""The forwarder on the real broker and registry: no leaks, exact accounting, exactly once, dead letters."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

import schemas

from core.topics import topic_for
from core.topics import AUDIT_TOPIC, DEADLETTER_TOPIC, PARTNER_PREFIX
from release import SecretStore, decide, load_policies
from core import REPO_ROOT, kafka, serde
from deploy import topics
from core.readback import end_offsets, read_between, seed_group
from producers.publisher import Publisher
from producers.simulate import SENTINEL_PREFIX, Simulator
from schemas.models import to_avro

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
INTERNAL = [topic_for(t) for t in schemas.MESSAGE_TYPES]
PARTNER_TOPICS = [t.name for t in topics.load_topics() if t.name.startswith(PARTNER_PREFIX)]
ALL = INTERNAL + PARTNER_TOPICS + [AUDIT_TOPIC, DEADLETTER_TOPIC]
POLICIES = REPO_ROOT / "deploy" / "policies"


def start_forwarder(group: str, instance: str, *extra: str, policies=POLICIES) -> subprocess.Popen:
    return subprocess.Popen([LIAISON, "forward", "--group", group, "--instance", instance,
                             "--policies", str(policies), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)


class ForwarderLog:
    """A forwarder subprocess's stderr (one JSON event per line), read as it comes so a test can wait for
    events. Take the whole text with finish() once the process has exited."""

    def __init__(self, p: subprocess.Popen):
        self.lines: list[str] = []
        self.events: list[str] = []  # the "event" of each line ("" for a line that is not JSON)
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(p.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            try:
                event = json.loads(line).get("event", "")
            except (ValueError, AttributeError):
                event = ""
            with self._cond:
                self.lines.append(line)
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def count(self, event: str) -> int:
        with self._cond:
            return self.events.count(event)

    def wait_for(self, event: str, n: int = 1, timeout: float = 120.0) -> None:
        """Until the forwarder has logged `event` n times; fails if it exits or times out first."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.events.count(event) >= n or self._closed, timeout):
                raise AssertionError(f"no {event!r} x{n} within {timeout:.0f}s:\n{''.join(self.lines[-20:])}")
            if self.events.count(event) < n:
                raise AssertionError(f"the forwarder exited before {event!r} x{n}:\n{''.join(self.lines[-20:])}")

    def finish(self, timeout: float = 30.0) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)


def run_forwarder(group: str, instance: str, idle: float = 4.0, timeout: float = 300) -> str:
    p = start_forwarder(group, instance, "--max-idle", str(idle))
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    return err


def fresh_group() -> tuple[str, str]:
    """A new forwarder group that starts at the current end of the internal topics."""
    group = f"liaison-forwarder-test-{uuid.uuid4().hex[:8]}"  # the forwarder principal's groups: liaison-forwarder*
    seed_group(group, end_offsets(INTERNAL))
    return group, group


def publish(models) -> dict[str, object]:
    with Publisher() as pub:
        for m in models:
            pub.publish(m)
    return {str(m.label.message_id): m for m in models}


def expected_releases(models: dict) -> dict[str, set[str]]:
    """Pure decisions for the same inputs: partner -> message ids it must receive."""
    policies = load_policies(POLICIES, SecretStore())
    out = {code: set() for code in policies}
    for mid, m in models.items():
        name = type(m).__name__
        for code, pol in policies.items():
            if decide(name, to_avro(m), pol).decision == "RELEASE":
                out[code].add(mid)
    return out


def by_partner(msgs) -> dict[str, list]:
    out: dict[str, list] = {}
    for m in msgs:
        if m.topic().startswith(PARTNER_PREFIX):
            out.setdefault(m.topic().split(".")[2].upper(), []).append(m)
    return out


def header(msg, name: str) -> str | None:
    for k, v in msg.headers() or []:
        if k == name:
            return v.decode()
    return None


def audits(msgs) -> list[dict]:
    deser = serde.avro_deserializer()
    return [deser(m.value(), SerializationContext(AUDIT_TOPIC, MessageField.VALUE))
            for m in msgs if m.topic() == AUDIT_TOPIC]


@pytest.fixture(scope="module")
def leak_run(bus):
    """>= 100,000 simulated records with sentinels in every field some partner must not see, forwarded."""
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    group, instance = fresh_group()
    start = end_offsets(ALL)
    sim = Simulator({"naval", "air", "intel"}, seed=4242, start=__import__("datetime").datetime.now(
        __import__("datetime").timezone.utc), sentinels=True)
    models = [m for _, m in sim.events(2000.0, 50.5)]
    assert len(models) >= 100_000
    sent = publish(models)
    run_forwarder(group, instance, idle=5, timeout=900)
    msgs = read_between(start, end_offsets(ALL), timeout=300)
    return sent, msgs


#: Sentinel fields a partner may legitimately receive (BRIEF): everything else planted must never appear.
#: observed_activity / travel_indicators are released only for designated groups, checked below.
ALLOWED_SENTINELS = {
    "RUS": {"observed_activity", "travel_indicators"},
    "USA": {"observed_activity", "travel_indicators", "mission_purpose", "mission", "collateral_assessment"},
}


def test_leak_no_forbidden_sentinel_reaches_any_partner_topic(leak_run):
    sent, msgs = leak_run
    partner_msgs = by_partner(msgs)
    assert set(partner_msgs) == {"RUS", "USA"}, "nothing was released to some partner"
    planted = sum(1 for m in msgs if m.topic() in INTERNAL and SENTINEL_PREFIX.encode() in m.value())
    assert planted > 10_000, "the simulator did not plant sentinels"
    pattern = re.compile(rb"SENTINEL-([a-z_.]+)-[0-9a-f]{8}")
    seen = {code: Counter() for code in partner_msgs}
    leaks = []
    for code, ms in partner_msgs.items():
        for m in ms:
            raw = b"".join([m.value(), m.key() or b""] + [v or b"" for _, v in m.headers() or []])
            for field in pattern.findall(raw):
                field = field.decode()
                seen[code][field] += 1
                if field not in ALLOWED_SENTINELS[code]:
                    leaks.append((code, m.topic(), m.offset(), field))
    assert leaks == []
    # the scan can see sentinels: the fields a partner is granted do arrive
    assert seen["USA"]["mission_purpose"] > 0 and seen["USA"]["collateral_assessment"] > 0
    assert seen["RUS"]["mission_purpose"] == 0


def test_leak_positive_cases_each_partner_gets_what_the_brief_grants(leak_run):
    sent, msgs = leak_run
    expected = expected_releases(sent)
    got = {code: Counter(header(m, "message_id") for m in ms) for code, ms in by_partner(msgs).items()}
    for code in ("RUS", "USA"):
        assert set(got[code]) == expected[code]
        assert max(got[code].values()) == 1
    # the brief, in the large: both get air tracks and logistics; only designated strike results; RUS never
    # gets a non-designated group's location
    deser = serde.avro_deserializer()
    types = {code: Counter(m.topic().split(".", 3)[3] for m in ms) for code, ms in by_partner(msgs).items()}
    for code in ("RUS", "USA"):
        for t in ("air.track", "naval.track", "intel.logistics", "air.mission-plan", "intel.foreign-fighter"):
            assert types[code][t] > 0, (code, t)
    rus_groups = {deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE)).get("group_id")
                  for m in by_partner(msgs)["RUS"] if m.topic().endswith(("group-location", "strike-report"))}
    assert rus_groups <= {"daesh"}
    usa_groups = {deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE)).get("group_id")
                  for m in by_partner(msgs)["USA"] if m.topic().endswith(("group-location", "strike-report"))}
    assert usa_groups <= {"daesh", "al-nusra"} and "al-nusra" in usa_groups
    # travel indicators and last known area only for designated affiliations
    for code, designated in (("RUS", {"daesh"}), ("USA", {"daesh", "al-nusra"})):
        ff = [deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
              for m in by_partner(msgs)[code] if m.topic().endswith("foreign-fighter")]
        assert ff
        for v in ff:
            assert "name" not in v["subject"] and "date_of_birth" not in v["subject"]
            if v.get("travel_indicators") or v.get("last_known_area"):
                assert v["affiliation"] in designated


def test_accounting_one_audit_per_input_and_partner(leak_run):
    sent, msgs = leak_run
    inputs = [m for m in msgs if m.topic() in INTERNAL]
    records = audits(msgs)
    per_key = Counter((a["input_topic"], a["input_partition"], a["input_offset"], a["partner"]) for a in records)
    assert set(per_key.values()) == {1}
    assert {(t, p, o) for t, p, o, _ in per_key} == {(m.topic(), m.partition(), m.offset()) for m in inputs}
    dead = sum(1 for m in msgs if m.topic() == DEADLETTER_TOPIC)
    for code in ("RUS", "USA"):
        mine = [a for a in records if a["partner"] == code]
        released = sum(a["decision"] == "RELEASE" for a in mine)
        withheld = sum(a["decision"] == "WITHHOLD" for a in mine)
        assert released + withheld == len(inputs) - dead
        assert released == len(by_partner(msgs)[code])
        assert all(a["policy_version"] for a in mine)


def test_crash_kill_9_five_times_then_exactly_once(bus):
    group, instance = fresh_group()
    start = end_offsets(ALL)
    sim = Simulator({"naval", "air", "intel"}, seed=99, start=__import__("datetime").datetime.now(
        __import__("datetime").timezone.utc))
    sent = publish([m for _, m in sim.events(1000.0, 30.0)])
    # Where each kill lands: right after the n-th batch's transaction was begun (before its commit), or
    # right after the n-th commit (between transactions), or before any batch.
    kills = [("batch begun", 1), ("batch committed", 2), ("batch begun", 2), ("forwarder started", 1),
             ("batch begun", 3)]
    in_transaction = []
    for event, n in kills:
        p = start_forwarder(group, instance)
        logs = ForwarderLog(p)
        logs.wait_for(event, n)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        logs.finish()
        p.stdout.close()
        # the last transaction event it logged before it died: "batch begun" = killed with a transaction open
        # (begun, outputs being produced or committed, never logged committed; the only false positive, a kill
        # between commit_transaction() returning and its log line, is microseconds against a batch's tens of ms)
        last = [e for e in logs.events if e in ("batch begun", "batch committed")][-1:]
        in_transaction.append(last == ["batch begun"])
    assert sum(in_transaction) >= 1, f"no kill landed while a transaction was open: {list(zip(kills, in_transaction))}"
    run_forwarder(group, instance, idle=5)
    msgs = read_between(start, end_offsets(ALL), timeout=300)
    expected = expected_releases(sent)
    got = {code: Counter(header(m, "message_id") for m in ms) for code, ms in by_partner(msgs).items()}
    for code in ("RUS", "USA"):
        dupes = [k for k, n in got[code].items() if n > 1]
        assert dupes == [], f"{code}: {len(dupes)} duplicates"
        assert set(got[code]) == expected[code]
    per_key = Counter((a["input_topic"], a["input_partition"], a["input_offset"], a["partner"]) for a in audits(msgs))
    assert set(per_key.values()) == {1}
    assert len(per_key) == 2 * len(sent)


def test_poison_pills_go_to_dead_letter_and_the_forwarder_keeps_going(bus):
    group, instance = fresh_group()
    start = end_offsets(ALL)
    topic = topic_for("AirTrack")
    p = kafka.producer()
    pills = {
        b"pill-random": bytes(random.Random(1).getrandbits(8) for _ in range(64)),
        b"pill-magic": b"\x07" + bytes(20),
        b"pill-unknown-id": serde.frame(987654, b"\x02\x04abc"),
        b"pill-truncated": serde.frame(serde.registry_client().get_latest_version(
            serde.value_subject(topic)).schema_id, b"\x02"),
    }
    for key, value in pills.items():
        p.produce(topic, key=key, value=value, headers=[("origin", b"test")])
    assert p.flush(30) == 0
    good = publish([m for _, m in Simulator({"air"}, seed=3, start=__import__("datetime").datetime.now(
        __import__("datetime").timezone.utc)).events(100.0, 2.0)])
    run_forwarder(group, instance, idle=4)
    msgs = read_between(start, end_offsets(ALL))
    dead = {m.key(): m for m in msgs if m.topic() == DEADLETTER_TOPIC}
    assert set(dead) == set(pills)
    for key, m in dead.items():
        assert m.value() == pills[key]
        assert header(m, "liaison.dlq.source.topic") == topic
        assert header(m, "liaison.dlq.source.offset") is not None
        assert header(m, "origin") == "test"
    assert "magic byte" in header(dead[b"pill-magic"], "liaison.dlq.error")
    assert "987654" in header(dead[b"pill-unknown-id"], "liaison.dlq.error")
    assert header(dead[b"pill-truncated"], "liaison.dlq.stage") == "avro"
    # the good records after the pills were forwarded: one audit per input and partner
    assert len([a for a in audits(msgs) if a["decision"] != "DEAD_LETTER"]) == 2 * len(good)
    assert len([a for a in audits(msgs) if a["decision"] == "DEAD_LETTER"]) == 2 * len(pills)


def test_invalid_policy_refuses_to_start_naming_file_and_field(bus, tmp_path):
    bad = tmp_path / "policies"
    shutil.copytree(POLICIES, bad)
    text = (bad / "RUS.yaml").read_text()
    assert "classification_ceiling: CONFIDENTIAL" in text
    (bad / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                               "classification_ceiling: CONFIDENTIAL\nweapons_ok: true"))
    p = start_forwarder("test-bad-policy", "bad", "--max-idle", "1", policies=bad)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert "RUS.yaml" in err and "weapons_ok" in err


def test_sighup_reloads_policies_and_refuses_an_invalid_one(bus, tmp_path):
    pol = tmp_path / "policies"
    shutil.copytree(POLICIES, pol)
    group, instance = fresh_group()
    p = start_forwarder(group, instance, policies=pol)
    logs = ForwarderLog(p)
    try:
        def send_tracks(n):
            start = end_offsets(ALL)
            ms = [m for _, m in Simulator({"air"}, seed=rng_seed(), start=__import__("datetime").datetime.now(
                __import__("datetime").timezone.utc)).events(200.0, n / 200.0)]
            publish(ms)
            deadline = time.time() + 60
            while time.time() < deadline:
                msgs = read_between(start, end_offsets(ALL))
                decided = audits(msgs)
                released = sum(a["decision"] == "RELEASE" for a in decided)
                # commit markers reach each partition on their own: wait until the partner topics show
                # every release the audit topic records
                if len(decided) >= 2 * len(ms) and sum(len(v) for v in by_partner(msgs).values()) == released:
                    return msgs
                time.sleep(0.5)
            raise AssertionError("forwarder did not process the records")

        first = send_tracks(300)
        decisions = Counter((a["partner"], a["decision"], a["rule"]) for a in audits(first))
        assert "RUS" in by_partner(first), decisions
        before = {header(m, "liaison.policy.version") for m in by_partner(first)["RUS"]}
        assert len(before) == 1
        # an invalid policy is refused; the old one stays in force
        text = (pol / "RUS.yaml").read_text()
        (pol / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                                   "classification_ceiling: CONFIDENTIAL\nbogus_key: 1"))
        p.send_signal(signal.SIGHUP)
        logs.wait_for("policy reload refused", timeout=60)  # reloads happen at a batch boundary
        still = {header(m, "liaison.policy.version") for m in by_partner(send_tracks(300))["RUS"]}
        assert still == before and p.poll() is None
        # a valid change is taken: a new version hash on released records
        # (a higher ceiling: a valid change that can only release more, so RUS records keep arriving)
        (pol / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                                   "classification_ceiling: SECRET"))
        p.send_signal(signal.SIGHUP)
        logs.wait_for("policies reloaded", timeout=60)
        after = {header(m, "liaison.policy.version") for m in by_partner(send_tracks(300))["RUS"]}
        assert after and after.isdisjoint(before)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        err = logs.finish()
        p.stdout.close()
    assert p.returncode == 0
    assert logs.count("policy reload refused") == 1 and logs.count("policies reloaded") == 1
    assert "bogus_key" in err
    assert "policies reloaded" in err


_SEEDS = iter(range(1000, 2000))


def rng_seed() -> int:
    return next(_SEEDS)


def test_forwarder_exports_its_counters_as_prometheus_metrics(bus):
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    group, instance = fresh_group()
    p = start_forwarder(group, instance, "--metrics-port", str(port))
    try:
        start = end_offsets(ALL)
        ms = [m for _, m in Simulator({"air", "intel"}, seed=rng_seed(), start=__import__("datetime").datetime.now(
            __import__("datetime").timezone.utc)).events(100.0, 1.0)]
        publish(ms)
        deadline = time.time() + 60
        while time.time() < deadline:
            records = audits(read_between(start, end_offsets(ALL)))
            if len(records) >= 2 * len(ms):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "liaison_forwarder_decisions" in families, text[-1500:]
    got = Counter()
    for sample in families["liaison_forwarder_decisions"].samples:
        if sample.name.endswith("_total"):
            got[(sample.labels["partner"], sample.labels["decision"])] += sample.value
    want = Counter((a["partner"], a["decision"]) for a in records)
    assert got == want
    assert sum(s.value for s in families["liaison_forwarder_records"].samples if s.name.endswith("_total")) == len(ms)

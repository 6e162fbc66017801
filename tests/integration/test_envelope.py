"""Nothing withheld reaches a partner through the envelope, the timing or the shape of a record (real broker).

A simulator run with sentinels goes through a forwarder on a policy variant whose RUS strike reports are
bucketed to 10 s (time and label.created_at), so that held records fall due within the test. Every partner
topic is dumped raw with a read_committed consumer that notes when each record arrived; then: no internal
message id where the view drops it, no header outside release.HEADERS, RUS strike timestamps and creation
times at their bucket start, and no RUS strike visible before its bucket ended (receipt wall-clock: the
topics use CreateTime, and the record timestamp is the bucket start by design). Then kill -9 while records
are held: every held record released exactly once.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
import threading
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from core import kafka, serde
from core.readback import end_offsets, read_between
from core.topics import AUDIT_TOPIC, DEADLETTER_TOPIC, HOLD_TOPIC, topic_for
from forwarder_helpers import (ALL, INTERNAL, PARTNER_TOPICS, ForwarderLog, audit_key, audits, by_partner, partner_feeds,
                               check_partner_records, decision_audits, fresh_group, header, publish, scan_sentinels,
                               short_bucket_policies, start_forwarder)
from producers.simulate import Simulator
from release import HEADERS, SecretStore

BUCKET_S = 10
STRIKES = "liaison.partner.rus.air.strike-report"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ALLOWED_SENTINELS = {
    "RUS": {"observed_activity", "travel_indicators"},
    "USA": {"observed_activity", "travel_indicators", "mission_purpose", "mission", "collateral_assessment"},
}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def ms(value: datetime.datetime) -> int:
    return int(value.timestamp() * 1000)


class Receiver:
    """Every record of the partner topics from ``start`` on, read_committed, with the wall-clock (ms) at which
    this consumer received it."""

    def __init__(self, start: dict):
        self.got: list[tuple[object, int]] = []
        self._stop = threading.Event()
        self._c = kafka.consumer(f"liaison-readback-{uuid.uuid4().hex[:8]}",
                                 {"isolation.level": "read_committed", "fetch.wait.max.ms": 50})
        self._c.assign([TopicPartition(t, p, o) for (t, p), o in start.items() if t in PARTNER_TOPICS])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self._c.consume(1000, 0.1):
                if m.error() is None:
                    self.got.append((m, int(time.time() * 1000)))
        self._c.close()

    def stop(self) -> list[tuple[object, int]]:
        self._stop.set()
        self._thread.join(30)
        return self.got


def wait_until_due_holds_released(start: dict, logs: ForwarderLog, timeout: float = 180.0) -> list:
    """Until every HELD audit due within the test (the 10 s buckets, not RUS's day buckets of foreign-fighter
    reports) has its RELEASED audit and the partner topics show every release; the read-back records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = read_between(start, end_offsets(ALL))
        records = audits(msgs)
        soon = ms(now()) + 120_000
        held = {audit_key(a) for a in records if a["decision"] == "HELD" and ms(a["due_at"]) < soon}
        released = {audit_key(a) for a in records if a["decision"] == "RELEASED"}
        n_released = sum(a["decision"] in ("RELEASE", "RELEASED") for a in records)
        if held and held <= released and sum(len(v) for v in by_partner(msgs).values()) == n_released:
            return msgs
        assert logs.count("forwarder stopped") == 0, "".join(logs.lines[-20:])
        time.sleep(1.0)
    raise AssertionError(f"held records not all released within {timeout:.0f}s:\n{''.join(logs.lines[-10:])}")


def released_from_hold(line: str, event: str) -> int:
    """How many held records a forwarder log line of ``event`` says its batch releases (0: none, another event)."""
    try:
        got = json.loads(line)
    except ValueError:
        return 0
    return got.get("released_from_hold", 0) if got.get("event") == event else 0


@pytest.fixture(scope="module")
def short_run(bus, tmp_path_factory):
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    policies = short_bucket_policies(tmp_path_factory.mktemp("short") / "policies", BUCKET_S)
    group, instance = fresh_group()
    start = end_offsets(ALL)
    receiver = Receiver(start)
    p = start_forwarder(group, instance, policies=policies)
    logs = ForwarderLog(p)
    try:
        sim = Simulator({"naval", "air", "intel"}, seed=5151, start=now(), sentinels=True)
        sent = publish([m for _, m in sim.events(500.0, 40.0)])
        msgs = wait_until_due_holds_released(start, logs)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        logs.finish()
        p.stdout.close()
    received = receiver.stop()
    return sent, msgs, received, policies


def test_partner_records_are_the_views_with_their_envelopes_nothing_missing_nothing_twice(short_run):
    sent, msgs, received, policies = short_run
    decided = check_partner_records(sent, msgs, policies)
    assert decided["RUS"]["RELEASED"] > 20 and decided["RUS"]["RELEASED"] <= decided["RUS"]["HELD"]
    # the receiver saw exactly the committed partner records
    assert Counter((m.topic(), m.partition(), m.offset()) for m, _ in received) == \
        Counter((m.topic(), m.partition(), m.offset()) for ms_ in partner_feeds(msgs).values() for m in ms_)


def test_no_header_outside_the_envelope_and_no_internal_id_where_the_view_drops_it(short_run):
    sent, msgs, received, _ = short_run
    internal_ids = {mid.encode() for mid in sent}  # every input's message id
    deser = serde.avro_deserializer()
    dropped = 0
    for m, _ in received:
        names = [k for k, _ in m.headers() or []]
        assert set(names) <= set(HEADERS) and names == [h for h in HEADERS if h in names], (m.topic(), names)
        assert not any(k.startswith("liaison.hold") or k == "rule" for k in names)
        view = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
        kept = view.get("label", {}).get("message_id")
        raw = b"".join([m.value(), m.key() or b""] + [v or b"" for _, v in m.headers() or []])
        ids = set(UUID.findall(raw)) & internal_ids
        if kept is None:
            dropped += 1
            assert ids == set(), (m.topic(), ids)
            assert header(m, "message_id") is None
        else:
            assert ids <= {str(kept).encode()} and header(m, "message_id") == str(kept)
    assert dropped > 20  # foreign-fighter reports (USA's released at once; RUS's held until their day ends)
    seen, leaks = scan_sentinels(by_partner([m for m, _ in received]), ALLOWED_SENTINELS)
    assert leaks == []
    assert seen["USA"]["mission_purpose"] > 0


def test_rus_strikes_stamped_at_their_bucket_start_and_never_visible_before_it_ended(short_run):
    sent, msgs, received, _ = short_run
    deser = serde.avro_deserializer()
    strikes = [(m, at) for m, at in received if m.topic() == STRIKES]
    decided = {a["message_id"]: a for a in audits(msgs) if a["decision"] in ("HELD", "RELEASE") and a["partner"] == "RUS"}
    assert len(strikes) > 20
    bucket = BUCKET_S * 1000
    for m, received_at in strikes:
        view = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
        ts, created, when = m.timestamp()[1], ms(view["label"]["created_at"]), ms(view["time"])
        assert ts % bucket == 0 and created % bucket == 0 and ts == when  # timestamp = the strike's bucket start
        original = sent[header(m, "message_id")]
        assert when == ms(original.time) // bucket * bucket and created == ms(original.label.created_at) // bucket * bucket
        due = max(when, created) + bucket  # the end of both buckets
        assert received_at >= due, f"visible {due - received_at} ms before its bucket ended"
        a = decided[header(m, "message_id")]
        if a["decision"] == "HELD":
            assert ms(a["due_at"]) == due
        else:  # decided only after its bucket had ended (a busy forwarder): released at once, never early
            assert ms(a["decided_at"]) >= due


def test_kill_9_while_records_are_held_then_each_released_exactly_once(bus, tmp_path):
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    policies = short_bucket_policies(tmp_path / "policies", BUCKET_S)
    group, instance = fresh_group()
    start = end_offsets(ALL)
    sent = publish([m for _, m in Simulator({"air"}, seed=808, start=now()).events(300.0, 40.0)])
    kills = []
    # kill 1: a hold partition waits for a record to fall due (HELD records not yet RELEASED);
    # kill 2: right after a transaction releasing held records was begun (open, its outputs being produced)
    for event in ("hold paused", "batch begun"):
        p = start_forwarder(group, instance, policies=policies)
        logs = ForwarderLog(p)
        if event == "hold paused":
            logs.wait_for("hold paused", timeout=120)
        else:
            deadline = time.monotonic() + 120
            while not any(released_from_hold(line, event) for line in list(logs.lines)):
                assert time.monotonic() < deadline, "".join(logs.lines[-10:])
                logs.wait_for(event, logs.count(event) + 1, timeout=120)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        logs.finish()
        p.stdout.close()
        decided = Counter(a["decision"] for a in audits(read_between(start, end_offsets([AUDIT_TOPIC]))))
        kills.append((event, decided["HELD"], decided["RELEASED"]))
    assert kills[0][1] > kills[0][2], f"no record was held when the forwarder was killed: {kills}"
    # the second kill: the release transaction it killed was never committed (and more were held still)
    last = [json.loads(x)["event"] for x in logs.lines if x.startswith("{")]
    last = [e for e in last if e in ("batch begun", "batch committed")][-1:]
    assert last == ["batch begun"] and kills[1][1] > kills[1][2], (kills, last)
    p = start_forwarder(group, instance, policies=policies)
    logs = ForwarderLog(p)
    try:
        msgs = wait_until_due_holds_released(start, logs)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        logs.finish()
        p.stdout.close()
    records = audits(msgs)
    inputs = [m for m in msgs if m.topic() in INTERNAL]
    dead = sum(1 for m in msgs if m.topic() == DEADLETTER_TOPIC)
    assert len(inputs) == len(sent) and set(Counter(audit_key(a) for a in decision_audits(records)).values()) == {1}
    held = Counter(audit_key(a) for a in records if a["decision"] == "HELD")
    released = Counter(audit_key(a) for a in records if a["decision"] == "RELEASED")
    holds = Counter((header(m, "liaison.hold.source.topic"), int(header(m, "liaison.hold.source.partition")),
                     int(header(m, "liaison.hold.source.offset")), header(m, "liaison.hold.partner"))
                    for m in msgs if m.topic() == HOLD_TOPIC)
    # partner records of held inputs, by the message id the strike view keeps
    held_ids = {(a["partner"], a["message_id"]) for a in records if a["decision"] == "HELD"}
    delivered = Counter((code, header(m, "message_id")) for code, ms_ in by_partner(msgs).items() for m in ms_
                        if (code, header(m, "message_id")) in held_ids)
    missing = len(held_ids - set(delivered))
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    figures = {}
    for code in ("RUS", "USA"):
        n = Counter(a["decision"] for a in records if a["partner"] == code)
        figures[code] = dict(records_in=len(inputs), released=n["RELEASE"] + n["RELEASED"], withheld=n["WITHHOLD"],
                             held=n["HELD"] - n["RELEASED"], held_total=n["HELD"], released_from_hold=n["RELEASED"],
                             dead_lettered=dead, partner_records=len(by_partner(msgs).get(code, [])))
    print(f"\nkills (event, HELD, RELEASED audited when killed): {kills}")
    print(f"per partner: {figures}")
    print(f"held records: {len(held_ids)}, released: {sum(delivered.values())}, duplicates: {duplicates}, "
          f"missing: {missing}")
    assert held and holds == held and released == held  # each held once, each released once
    assert missing == 0 and duplicates == 0
    check_partner_records(sent, msgs, policies)
    for code, f in figures.items():
        assert f["released"] + f["withheld"] + f["held"] == f["records_in"] - f["dead_lettered"], (code, f)
        assert f["held"] == 0 and f["released"] == f["partner_records"], (code, f)
    assert figures["RUS"]["held_total"] > 20
    assert topic_for("StrikeReport") in {k[0] for k in held}

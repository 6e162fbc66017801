"""Envelopes and held releases in the pipeline, without a broker: every partner record's key, headers and
timestamp come from release.envelope; a release not yet due goes to the hold topic (HELD audit with its due
time); the hold partition stops at a record not yet due (pause at its offset, later records skipped, offset
not advanced); once due, the partner record carries exactly the envelope (RELEASED audit); the counts add up."""

from __future__ import annotations

import shutil
import zlib
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from consumers.forwarder.hold import PREFIX, check_hold_bound
from consumers.shell.codec import InputDecoder
from consumers.forwarder.pipeline import MAX_HOLD_MS, BatchResult, InRecord, OutRecord, Pipeline, build_plans
from core.topics import DEADLETTER_TOPIC, HOLD_TOPIC, partner_topic, topic_for
from forwarder_support import (FORWARDER, POLICIES, Env, make_env, per_partner, read_audits, records_of, simulated,
                               value_id)
from release import HEADERS, PolicyError, decide, envelope, load_policies
from schemas.examples import BASE_TIME, example

pytestmark = pytest.mark.unit

UTC = timezone.utc
STRIKE_TOPIC = partner_topic("RUS", topic_for("StrikeReport"))


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


#: The example StrikeReport: time 07:52:30, created_at 09:00; RUS buckets both to the hour, so it is due at 10:00.
DUE = ms(datetime(2015, 11, 23, 10, tzinfo=UTC))
BEFORE = DUE - 30 * 60_000


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    return make_env(tmp_path_factory.mktemp("secrets"))


def strike(env: Env, offset: int = 40, partition: int = 1) -> InRecord:
    [rec] = records_of(env, [example("StrikeReport")])
    rec.partition, rec.offset = partition, offset
    return rec


def as_consumed(out: OutRecord, partition: int, offset: int) -> InRecord:
    """A hold record as the service reads it back from the hold topic."""
    assert out.topic == HOLD_TOPIC
    return InRecord(HOLD_TOPIC, partition, offset, out.key, out.value, out.headers, 1_700_000_000_000)


def audits_of(result: BatchResult) -> list[dict]:
    return [a for o in result.audits for a in read_audits(o.value)]


# ---------------------------------------------------------------------------------------------- envelopes


def test_every_partner_record_carries_its_envelope_and_nothing_else(env):
    batch = records_of(env, simulated(4.0, seed=31))
    result = env.pipeline().process(batch, ms(BASE_TIME) + 10 * 86_400_000)  # every bucket has ended
    assert result.holds == [] and result.views
    by_input = {(r.topic, r.partition, r.offset): r for r in batch}
    audits = [a for a in audits_of(result) if a["decision"] == "RELEASE"]
    assert len(audits) == len(result.views)
    ff_views = 0
    for view, a in zip(result.views, audits):  # a partner's view comes just before its audit
        rec = by_input[(a["input_topic"], a["input_partition"], a["input_offset"])]
        type_name = a["message_type"]
        policy = env.policies[a["partner"]]
        record = env.decoded(rec)
        e = envelope(type_name, decide(type_name, record, policy), policy)
        assert (view.key, view.headers, view.timestamp) == (e.key, e.headers, e.timestamp_ms)
        names = [n for n, _ in view.headers]
        assert "rule" not in names and set(names) <= set(HEADERS)
        assert all(a["rule"].encode() not in v for _, v in view.headers)
        if type_name == "ForeignFighterReport" and a["partner"].isupper():  # a partner's view drops the message
            # id: so do key and headers (the intelligence cell, ours, keeps it)
            ff_views += 1
            mid = str(record["label"]["message_id"]).encode()
            assert "message_id" not in names and view.key != mid and all(mid not in v for _, v in view.headers)
            assert mid not in view.value
        assert view.timestamp is not None and view.timestamp != rec.timestamp
    assert ff_views > 0
    # the audit keeps the rule
    assert all(a["rule"] for a in audits)


# ---------------------------------------------------------------------------------------------- holding


def test_a_release_not_yet_due_goes_to_the_hold_topic_with_a_held_audit(env):
    rec = strike(env)
    result = env.pipeline().process([rec], BEFORE)
    [hold] = result.holds
    assert [o.topic for o in result.views] == [partner_topic("USA", rec.topic)]  # USA: exact, not bucketed
    assert hold.key == f"RUS {STRIKE_TOPIC}".encode() and hold.timestamp is None
    policy = env.policies["RUS"]
    record = env.decoded(rec)
    d = decide("StrikeReport", record, policy)
    e = envelope("StrikeReport", d, policy)
    assert e.due_ms == DUE
    assert hold.value == env.plans["RUS"].encoders["StrikeReport"].encode(d.released)
    assert hold.headers[:len(e.headers)] == e.headers
    internal = dict(hold.headers[len(e.headers):])
    assert all(name.startswith(PREFIX) for name in internal)
    assert internal == {
        PREFIX + "topic": STRIKE_TOPIC.encode(), PREFIX + "due": str(DUE).encode(),
        PREFIX + "timestamp": str(e.timestamp_ms).encode(), PREFIX + "key": e.key,
        PREFIX + "source.topic": rec.topic.encode(), PREFIX + "source.partition": b"1",
        PREFIX + "source.offset": b"40", PREFIX + "message_id": str(record["label"]["message_id"]).encode(),
        PREFIX + "type": b"StrikeReport", PREFIX + "partner": b"RUS", PREFIX + "rule": d.rule.encode(),
        PREFIX + "policy_version": policy.version.encode()}
    rus = [a for a in audits_of(result) if a["partner"] == "RUS"]
    assert [(a["decision"], a["rule"], a["output_topic"], a["due_at"]) for a in rus] == [
        ("HELD", d.rule, STRIKE_TOPIC, DUE)]
    assert result.offsets == {(rec.topic, 1): 41} and result.pauses == {}
    assert (result.stats.held, result.stats.released_from_hold) == (1, 0)


def test_a_release_due_beyond_the_hold_bound_is_withheld(env):
    rec = strike(env)
    result = env.pipeline().process([rec], DUE - MAX_HOLD_MS - 1)
    assert result.holds == []
    [a] = [a for a in audits_of(result) if a["partner"] == "RUS"]
    assert (a["decision"], a["rule"], a["output_topic"], a["due_at"]) == ("WITHHOLD", "hold-bound", None, None)


def held_partition(env: Env, n: int = 3) -> tuple[list[InRecord], list[int]]:
    """n hold records in one hold partition (offsets 100, 101, ...), due an hour apart from DUE on."""
    records, dues = [], []
    for i in range(n):
        model = example("StrikeReport")
        model = model.model_copy(update={"label": model.label.model_copy(update={
            "created_at": model.label.created_at + timedelta(hours=i),
            "message_id": model.label.message_id.__class__(int=model.label.message_id.int + i)})})
        [rec] = records_of(env, [model])
        [hold] = env.pipeline().process([rec], BEFORE).holds
        records.append(as_consumed(hold, 5, 100 + i))
        dues.append(DUE + i * 3_600_000)
    return records, dues


def test_a_hold_record_not_yet_due_pauses_its_partition_at_its_offset(env):
    holds, dues = held_partition(env)
    other = strike(env, offset=7, partition=0)
    batch = [holds[0], other, holds[1], holds[2]]
    result = env.pipeline().process(batch, DUE - 1)
    assert result.pauses == {(HOLD_TOPIC, 5): (100, DUE)}
    # not advanced: committed up to its head, which comes again on resume; the internal record forwarded as ever
    assert result.offsets == {(HOLD_TOPIC, 5): 100, (other.topic, 0): 8}
    assert not [o for o in result.outputs if o.topic == STRIKE_TOPIC]
    assert result.stats.released_from_hold == 0 and result.stats.records == 1
    # the head due, the next not: one released, the partition stops at the next one
    result = env.pipeline().process(holds, DUE)
    assert result.pauses == {(HOLD_TOPIC, 5): (101, dues[1])}
    assert result.offsets == {(HOLD_TOPIC, 5): 101}
    assert [o.topic for o in result.views] == [STRIKE_TOPIC]


def test_a_due_hold_record_is_released_with_exactly_its_envelope_and_a_released_audit(env):
    rec = strike(env)
    [hold] = env.pipeline().process([rec], BEFORE).holds
    result = env.pipeline().process([as_consumed(hold, 3, 12)], DUE + 250)
    policy = env.policies["RUS"]
    record = env.decoded(rec)
    d = decide("StrikeReport", record, policy)
    e = envelope("StrikeReport", d, policy)
    [view] = result.views
    assert view == OutRecord(STRIKE_TOPIC, e.key, hold.value, e.headers, e.timestamp_ms)
    assert not any(name.startswith(PREFIX) for name, _ in view.headers)
    assert value_id(view.value) == env.plans["RUS"].encoders["StrikeReport"].schema_id
    [audit_out] = result.audits
    assert audit_out.key == str(record["label"]["message_id"]).encode()
    assert read_audits(audit_out.value) == [dict(
        input_topic=rec.topic, input_partition=1, input_offset=40, message_id=str(record["label"]["message_id"]),
        message_type="StrikeReport", partner="RUS", decision="RELEASED", rule=d.rule,
        reason=f"StrikeReport: released from {HOLD_TOPIC} by rule {d.rule}, its time buckets ended",
        policy_version=policy.version, output_topic=STRIKE_TOPIC, decided_at=DUE + 250, forwarder=FORWARDER,
        due_at=DUE, bytes=len(hold.value))]
    assert result.offsets == {(HOLD_TOPIC, 3): 13} and result.pauses == {}
    assert result.stats.records == 0 and result.stats.released_from_hold == 1
    assert result.stats.counts == Counter({("RUS", "StrikeReport", "RELEASED"): 1})


def test_a_hold_record_belongs_to_the_group_that_wrote_it(env):
    mine, theirs = (Pipeline(InputDecoder(env.registry), env.audit, env.plans, FORWARDER, group=g)
                    for g in ("liaison-forwarder-a", "liaison-forwarder-b"))
    [hold] = mine.process([strike(env)], BEFORE).holds
    assert (PREFIX + "group", b"liaison-forwarder-a") in hold.headers
    later = [as_consumed(hold, 0, 0), as_consumed(hold, 0, 1)]
    skipped = theirs.process(later, BEFORE)  # not due, but not theirs either: passed over, never paused
    assert (skipped.outputs, skipped.pauses, skipped.offsets) == ([], {}, {(HOLD_TOPIC, 0): 2})
    assert skipped.stats.hold_skipped == 2
    assert [o.topic for o in mine.process(later[:1], DUE).views] == [STRIKE_TOPIC]
    # a group-less pipeline (as in the other tests) takes every hold record
    assert len(env.pipeline().process(later, DUE).views) == 2


def test_a_hold_record_without_the_forwarders_headers_is_dead_lettered(env):
    bad = InRecord(HOLD_TOPIC, 2, 9, b"k", b"v", [("type", b"StrikeReport")])
    result = env.pipeline().process([bad], DUE)
    [dead] = result.outputs
    assert dead.topic == DEADLETTER_TOPIC and dead.value == b"v"
    assert dict(dead.headers)["liaison.dlq.stage"] == b"hold"
    assert result.offsets == {(HOLD_TOPIC, 2): 10} and result.stats.hold_dead_lettered == 1


# ---------------------------------------------------------------------------------------------- accounting


def test_accounting_released_withheld_held_add_up_to_the_input_at_every_instant(env):
    models = simulated(6.0, seed=41)
    batch = records_of(env, models)
    batch.insert(5, InRecord(topic_for("AirTrack"), 4, 3, b"pill", b"\x07junk", None))
    pipeline = env.pipeline()
    decided = pipeline.process(batch, ms(BASE_TIME) + 10_000)  # buckets of the hour and the day not ended
    assert decided.holds
    holds = [as_consumed(o, zlib.crc32(o.key) % 12, i) for i, o in enumerate(decided.holds)]
    holds.sort(key=lambda r: (r.partition, r.offset))
    later = pipeline.process(holds, ms(BASE_TIME) + 3 * 86_400_000)  # every bucket has ended
    total = BatchResult().stats
    for step in (decided, later):
        total.add(step.stats)
        for code, row in total.per_partner().items():
            held = row["held"] - row["released_from_hold"]
            assert row["released"] + row["withheld"] + held == total.records - total.dead_lettered, (code, row)
    inputs = len(batch) - 1
    rows = total.per_partner()
    for code in env.plans:
        n = per_partner(decided)[code]
        assert rows[code]["held"] == n["HELD"] == rows[code]["released_from_hold"]  # all released in the end
        assert rows[code]["released"] == n["RELEASE"] + n["HELD"]
        assert rows[code]["released"] + rows[code]["withheld"] == inputs
    assert rows["RUS"]["held"] > 0
    assert len(later.views) == len(holds) and later.pauses == {}
    assert {a["decision"] for a in audits_of(later)} == {"RELEASED"}
    # per (input, partner): one decision; plus one RELEASED for each HELD one
    first = Counter((a["input_topic"], a["input_partition"], a["input_offset"], a["partner"])
                    for a in audits_of(decided))
    assert set(first.values()) == {1}
    released = Counter((a["input_topic"], a["input_partition"], a["input_offset"], a["partner"])
                       for a in audits_of(later))
    held_keys = {(a["input_topic"], a["input_partition"], a["input_offset"], a["partner"])
                 for a in audits_of(decided) if a["decision"] == "HELD"}
    assert released == Counter(held_keys)


# ---------------------------------------------------------------------------------------------- the bound


def test_a_policy_bucketing_longer_than_the_hold_bound_is_refused(env, tmp_path):
    check_hold_bound(env.policies)  # the shipped policies: a day at most
    long = tmp_path / "policies"
    shutil.copytree(POLICIES, long)
    text = (long / "RUS.yaml").read_text()
    assert text.count("{bucket: {seconds: 86400}}") == 2  # the foreign-fighter report's two times
    (long / "RUS.yaml").write_text(text.replace("{bucket: {seconds: 86400}}", "{bucket: {seconds: 259200}}"))
    policies = load_policies(long, env.secrets)
    with pytest.raises(PolicyError, match=r"RUS.yaml:\d+: .*259200 s is longer than the forwarder holds"):
        build_plans(policies, env.registry.encoder_for)


def test_the_hold_topic_keeps_records_longer_than_the_longest_hold():
    from core.topics import MAX_HOLD_SECONDS
    from deploy.topics import load_topics

    [hold] = [t for t in load_topics() if t.name == HOLD_TOPIC]
    assert hold.retention_ms >= MAX_HOLD_SECONDS * 1000 + 3 * 86_400_000
    assert hold.partitions >= 6


def test_the_shipped_held_keys_land_in_distinct_hold_partitions(env):
    """librdkafka's default partitioner (consistent_random: CRC-32 of the key): a partner topic whose releases
    are held never shares a hold partition with another, so an hour's bucket never waits behind a day's."""
    from consumers.forwarder.hold import hold_key
    from deploy.topics import load_topics

    [hold] = [t for t in load_topics() if t.name == HOLD_TOPIC]
    held = [(code, type_name) for code, policy in env.policies.items() for type_name in policy.types
            if any(rule.bucketed() for rule in policy.facts.types.get(type_name, ()))]
    assert ("RUS", "StrikeReport") in held and ("RUS", "ForeignFighterReport") in held
    parts = [zlib.crc32(hold_key(code, env.plans[code].topics[t])) % hold.partitions for code, t in held]
    assert len(set(parts)) == len(parts), dict(zip(held, parts))

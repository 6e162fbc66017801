"""The forwarder's pipeline without a broker or a registry server: synthetic batches (the simulator, the
examples of every type, poison pills) framed with an in-memory registry, through the partner policies of
deploy/policies. Expected outputs are built independently (tests/unit/forwarder_support.py: fastavro's writer,
release.decide, release.envelope). Held releases: test_forwarder_hold.py; unlinkability: test_forwarder_unlinkable.py."""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter

import fastavro
import pytest

import schemas
from consumers.forwarder.pipeline import InRecord, build_plans
from core import serde
from core.topics import (DEADLETTER_TOPIC, is_partner_code, partner_topic, recipient_prefix, recipient_topic,
                         source_of_recipient_topic, topic_for)
from forwarder_support import (FORWARDER, NOW, POLICIES, Env, expected_outputs, make_env, per_partner, read_audits,
                               records_of, simulated)
from release import decide, load_policies
from schemas.examples import example
from schemas.models import model_name, to_avro

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    return make_env(tmp_path_factory.mktemp("secrets"))


# ---------------------------------------------------------------------------------------------- plans


def test_plans_cover_every_partner_of_deploy_policies(env):
    assert set(env.plans) == {p.stem for p in POLICIES.glob("*.yaml")} == {"RUS", "USA", "air", "intel", "naval"}
    assert list(env.plans) == sorted(env.plans)
    for code, plan in env.plans.items():
        assert plan.version_header == ("liaison.policy.version", env.policies[code].version.encode())
        assert set(plan.topics) == set(plan.encoders) == set(env.policies[code].sources)
        for type_name, topic in plan.topics.items():
            assert topic == recipient_topic(code, type_name)
            if "/" not in type_name and is_partner_code(code):
                assert topic == partner_topic(code, topic_for(type_name))
            assert plan.encoders[type_name].schema_id == env.registry.subjects[
                (serde.value_subject(topic), json.dumps(env.policies[code].derived_schema(type_name)))]


def test_plans_are_built_the_same_way_at_reload_and_a_changed_policy_shows_in_the_version_header(env, tmp_path):
    again = build_plans(load_policies(POLICIES, env.secrets), env.registry.encoder_for)
    assert {c: (p.topics, {t: e.schema_id for t, e in p.encoders.items()}, p.version_header)
            for c, p in again.items()} == {c: (p.topics, {t: e.schema_id for t, e in p.encoders.items()},
                                               p.version_header) for c, p in env.plans.items()}
    changed = tmp_path / "policies"
    shutil.copytree(POLICIES, changed)
    text = (changed / "RUS.yaml").read_text()
    assert "classification_ceiling: CONFIDENTIAL" in text
    (changed / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                                   "classification_ceiling: SECRET"))
    pipeline = env.pipeline()
    batch = records_of(env, simulated(2.0, seed=5))
    before = pipeline.process(batch, NOW)
    pipeline.plans = build_plans(load_policies(changed, env.secrets), env.registry.encoder_for)
    after = pipeline.process(batch, NOW)
    rus = env.policies["RUS"].version.encode()
    new = pipeline.plans["RUS"].version_header[1]
    assert new != rus
    assert {dict(o.headers)["liaison.policy.version"] for o in before.views if ".rus." in o.topic} == {rus}
    assert {dict(o.headers)["liaison.policy.version"] for o in after.views if ".rus." in o.topic} == {new}
    assert per_partner(after)["RUS"]["RELEASE"] >= per_partner(before)["RUS"]["RELEASE"]
    assert [o for o in after.outputs if ".usa." in o.topic] == [o for o in before.outputs if ".usa." in o.topic]


# ---------------------------------------------------------------------------------------------- releases


def test_simulated_batch_every_partner_gets_decide_of_each_record_byte_for_byte(env):
    batch = records_of(env, simulated())
    result = env.pipeline().process(batch, NOW)
    assert result.outputs == [o for rec in batch for o in expected_outputs(env, rec)]
    assert result.dead_letters == [] and result.stats.dead_lettered == 0
    for code, counts in per_partner(result).items():  # the policies do decide: both ways for both partners
        assert counts["RELEASE"] > 0 and counts["WITHHOLD"] > 0, code


@pytest.mark.parametrize("type_name", schemas.MESSAGE_TYPES)
def test_an_example_of_every_type_released_views_equal_decide(env, type_name):
    model = example(type_name)
    [rec] = records_of(env, [model])
    result = env.pipeline().process([rec], NOW)
    assert result.outputs == expected_outputs(env, rec)
    views = {source_of_recipient_topic(o.topic)[0]: o for o in result.views}
    for code, policy in env.policies.items():
        d = decide(type_name, to_avro(model), policy)
        if d.released is None:
            assert code not in views
            continue
        view = views[code]
        got = fastavro.schemaless_reader(io.BytesIO(view.value[5:]),
                                         fastavro.parse_schema(policy.derived_schema(type_name)))
        assert json.loads(json.dumps(got, default=str)) == json.loads(json.dumps(d.released, default=str))
        assert view.topic == recipient_topic(code, type_name)


def test_one_audit_per_input_with_every_partners_decision_and_the_clock(env):
    batch = records_of(env, simulated(2.0, seed=3))
    result = env.pipeline().process(batch, NOW + 7)
    assert len(result.audits) == len(batch)
    audits = [a for o in result.audits for a in read_audits(o.value)]
    assert Counter((a["input_topic"], a["input_partition"], a["input_offset"], a["partner"]) for a in audits) == \
        Counter((r.topic, r.partition, r.offset, code) for r in batch for code in env.plans)
    assert {a["decided_at"] for a in audits} == {NOW + 7}
    assert {a["forwarder"] for a in audits} == {FORWARDER}
    released = Counter(a["output_topic"] for a in audits if a["decision"] == "RELEASE")
    assert released == Counter(o.topic for o in result.views)
    assert all(a["output_topic"] is None for a in audits if a["decision"] == "WITHHOLD")
    # same batch, same clock: the same bytes
    assert env.pipeline().process(batch, NOW + 7).outputs == result.outputs


def test_an_empty_batch_has_no_outputs_and_no_offsets(env):
    result = env.pipeline().process([], NOW)
    assert (result.outputs, result.offsets, result.stats.records, result.stats.counts) == ([], {}, 0, Counter())


# ---------------------------------------------------------------------------------------------- dead letters


def _air(env: Env, **changes) -> bytes:
    return env.frame("AirTrack", {**to_avro(example("AirTrack")), **changes})


def _view_id(env: Env) -> int:
    policy = env.policies["RUS"]
    return env.registry.subjects[(serde.value_subject(partner_topic("RUS", topic_for("AirTrack"))),
                                  json.dumps(policy.derived_schema("AirTrack")))]


PILLS = {  # kind -> (topic type, value from env, stage, words in liaison.dlq.error)
    "too-short": ("AirTrack", lambda env: b"\x00\x00\x01", "framing", "fewer than the 5-byte"),
    "tombstone": ("AirTrack", lambda env: None, "framing", "tombstone"),
    "wrong-magic": ("AirTrack", lambda env: b"\x07" + bytes(20), "framing", "magic byte is 0x07"),
    "unknown-id": ("AirTrack", lambda env: serde.frame(987654, b"\x02\x04abc"), "schema",
                   "schema id 987654 unknown to the registry"),
    "audit-id": ("AirTrack", lambda env: serde.frame(env.audit.schema_id, b"\x00"), "schema",
                 "not a liaison message type"),
    "partner-view-id": ("AirTrack", lambda env: serde.frame(_view_id(env), b"\x00"), "schema",
                        "not a liaison message type"),
    "wrong-topic": ("MaritimeTrack", lambda env: _air(env), "schema", "AirTrack record on"),
    "corrupt-body": ("AirTrack", lambda env: _air(env)[:-9], "avro", "does not decode"),
    "trailing-bytes": ("AirTrack", lambda env: _air(env) + b"\x00", "avro", "1 trailing byte(s)"),
    "invalid": ("AirTrack", lambda env: _air(env, altitude_ft=200_000), "validation", "invalid record: altitude_ft"),
}


@pytest.mark.parametrize("kind", PILLS)
def test_dead_letters_keep_the_original_bytes_and_say_where_decoding_failed(env, kind):
    type_name, value_of, stage, words = PILLS[kind]
    good = records_of(env, [example("AirTrack"), example("MaritimeTrack")])
    pill = InRecord(topic_for(type_name), 4, 77, b"pill-" + kind.encode(), value_of(env),
                    [("origin", b"test"), ("empty", None)], 1_700_000_000_000)
    result = env.pipeline().process([good[0], pill, good[1]], NOW)
    [dead] = result.dead_letters
    assert (dead.topic, dead.key, dead.value, dead.timestamp) == (DEADLETTER_TOPIC, pill.key, pill.value, None)
    error = dict(dead.headers)["liaison.dlq.error"].decode()
    assert words in error
    assert dead.headers == [("origin", b"test"), ("empty", None), ("liaison.dlq.error", error.encode()),
                            ("liaison.dlq.stage", stage.encode()),
                            ("liaison.dlq.source.topic", pill.topic.encode()),
                            ("liaison.dlq.source.partition", b"4"), ("liaison.dlq.source.offset", b"77"),
                            ("liaison.dlq.forwarder", FORWARDER.encode())]
    # in produce order: the first good record's outputs, the dead letter and its audit, the second's outputs
    first, second = expected_outputs(env, good[0]), expected_outputs(env, good[1])
    pill_audit = result.outputs[len(first) + 1]
    assert result.outputs == first + [dead, pill_audit] + second
    assert pill_audit.key == f"{pill.topic}/4/77".encode()
    assert read_audits(pill_audit.value) == [
        dict(input_topic=pill.topic, input_partition=4, input_offset=77, message_id=None, message_type=None,
             partner=code, decision="DEAD_LETTER", rule="dead-letter", reason=f"{stage}: {error}"[:500],
             policy_version=env.policies[code].version, output_topic=DEADLETTER_TOPIC, decided_at=NOW,
             forwarder=FORWARDER, due_at=None, bytes=None) for code in sorted(env.plans)]
    assert result.stats.dead_lettered == 1 and result.stats.records == 3
    assert {code: result.stats.counts[(code, "?", "DEAD_LETTER")] for code in env.plans} == {c: 1 for c in env.plans}
    assert result.offsets[(pill.topic, 4)] == 78


def test_a_dead_letter_without_headers_carries_only_the_dlq_headers(env):
    pill = InRecord(topic_for("AirTrack"), 0, 5, None, b"\x01", None)
    [dead] = env.pipeline().process([pill], NOW).dead_letters
    assert dead.key is None and dead.value == b"\x01"
    assert [k for k, _ in dead.headers] == ["liaison.dlq.error", "liaison.dlq.stage", "liaison.dlq.source.topic",
                                            "liaison.dlq.source.partition", "liaison.dlq.source.offset",
                                            "liaison.dlq.forwarder"]


# ---------------------------------------------------------------------------------------------- offsets, counts


def test_offsets_are_last_offset_plus_one_per_partition_across_interleaved_partitions(env):
    batch = records_of(env, simulated(3.0, seed=8), partitions=4, seed=9)
    pill = InRecord(topic_for("AirTrack"), 3, 9_999, b"pill", b"\x07junk", None)
    batch.append(pill)  # a dead letter is consumed too
    parts = [(r.topic, r.partition) for r in batch]
    assert len(set(parts)) > 10 and any(a != b for a, b in zip(parts, parts[1:]))  # really interleaved
    last = {}
    for r in batch:
        last[(r.topic, r.partition)] = r.offset
    result = env.pipeline().process(batch, NOW)
    assert result.offsets == {tp: off + 1 for tp, off in last.items()}
    assert result.offsets[(pill.topic, 3)] == 10_000


def test_counts_add_up_per_partner_and_match_the_outputs(env):
    models = simulated(3.0, seed=21)
    batch = records_of(env, models)
    for i, kind in enumerate(PILLS):  # pills among the good records
        type_name, value_of, _stage, _words = PILLS[kind]
        batch.insert(7 * i + 3, InRecord(topic_for(type_name), 5, i, b"pill", value_of(env), None))
    result = env.pipeline().process(batch, NOW)
    stats = result.stats
    assert stats.records == len(batch) and stats.dead_lettered == len(PILLS) == len(result.dead_letters)
    for code, counts in per_partner(result).items():
        assert counts["RELEASE"] + counts["WITHHOLD"] + counts["DEAD_LETTER"] == len(batch), code
        assert counts["DEAD_LETTER"] == len(PILLS)
        assert counts["RELEASE"] == sum(1 for o in result.views if o.topic.startswith(recipient_prefix(code)))
    assert set(per_partner(result)) == set(env.plans)
    assert len(result.audits) == len(batch)
    assert len(result.outputs) == len(result.views) + len(result.audits) + len(result.dead_letters)
    decided = Counter((a["partner"], a["message_type"] or "?", a["decision"]) for o in result.audits
                      for a in read_audits(o.value))
    assert decided == stats.counts
    by_type = Counter(model_name(m) for m in models)
    for code in env.plans:
        assert {t: stats.counts[(code, t, "RELEASE")] + stats.counts[(code, t, "WITHHOLD")] for t in by_type} == by_type


# ---------------------------------------------------------------------------------------------- the service's adapter


def test_consumed_messages_become_in_records_eof_skipped_errors_reported_fatal_raised():
    from confluent_kafka import KafkaError, Message

    from consumers.shell.faults import ForwarderFault
    from consumers.shell.records import in_records

    msgs = [Message(topic="t", partition=1, offset=7, key=b"k", value=b"v", headers=[("h", b"1")],
                    timestamp=(1, 1_700_000_000_123)),
            Message(topic="t", partition=2, offset=9, error=KafkaError(KafkaError._PARTITION_EOF)),
            Message(topic="u", partition=0, offset=0, value=None)]
    assert in_records(msgs) == [InRecord("t", 1, 7, b"k", b"v", [("h", b"1")], 1_700_000_000_123),
                                InRecord("u", 0, 0, None, None, None, None)]
    seen = []  # a transient error event is reported and skipped: librdkafka goes on by itself
    assert in_records([Message(topic="t", partition=0, offset=1, error=KafkaError(KafkaError._TRANSPORT)),
                       msgs[0]], seen.append) == [InRecord("t", 1, 7, b"k", b"v", [("h", b"1")], 1_700_000_000_123)]
    assert [e.code() for e in seen] == [KafkaError._TRANSPORT]
    with pytest.raises(ForwarderFault) as info:  # a fatal one (a static member fenced) stops the clients
        in_records([Message(topic="t", partition=0, offset=1, error=KafkaError(KafkaError._FENCED, "Static consumer "
                                                                               "fenced", fatal=True))])
    assert info.value.kind == "fatal" and info.value.recoverable


def test_a_reciprocity_pause_withholds_that_category_for_that_partner_only_with_its_reason(env):
    models = [m for m in simulated(3.0, seed=8) if model_name(m) in ("ForeignFighterReport", "AirTrack")]
    batch = records_of(env, models)
    why = "reciprocity pause: RUS foreign_fighters over the week: received 1 / given 40 = ratio 0.025 < min_ratio 0.2"
    free = env.pipeline().process(batch, NOW)
    paused = env.pipeline().process(batch, NOW, paused={"RUS": {"foreign_fighters": why}})
    before = {(a["input_offset"], a["input_partition"]): a for o in free.audits for a in read_audits(o.value)
              if a["partner"] == "RUS" and a["message_type"] == "ForeignFighterReport"}
    decided = [a for o in paused.audits for a in read_audits(o.value)]
    ff_rus = [a for a in decided if a["partner"] == "RUS" and a["message_type"] == "ForeignFighterReport"]
    # labels come first (a record above RUS's ceiling stays a label withhold); every other decision is the pause
    for a in ff_rus:
        was = before[(a["input_offset"], a["input_partition"])]
        if was["rule"].startswith("label-"):
            assert (a["rule"], a["reason"]) == (was["rule"], was["reason"])
        else:
            assert (a["decision"], a["rule"], a["reason"], a["output_topic"]) == ("WITHHOLD", "reciprocity-pause", why,
                                                                                  None)
    assert sum(a["rule"] == "reciprocity-pause" for a in ff_rus) >= 3
    assert not [o for o in paused.views if o.topic == "liaison.partner.rus.intel.foreign-fighter"]
    # released without the pause; everything else exactly as without it
    assert [o for o in free.views if o.topic == "liaison.partner.rus.intel.foreign-fighter"]
    assert [o for o in paused.views] == [o for o in free.views if o.topic != "liaison.partner.rus.intel.foreign-fighter"]

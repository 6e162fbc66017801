"""Fuzzing (fault suite): generated inputs through the forwarder's decoder and pipeline and the policy loader.

No servers: the decoder and pipeline run on the in-memory registry of tests/unit/forwarder_support.py, the
loader on files in a tmp dir. Every property runs a fixed number of hypothesis examples, derandomized (the same
inputs on every run: reproducible in CI; LIAISON_FUZZ_SCALE=4 runs four times as many, other inputs too):

- decoder: any bytes; framed bytes of any schema id; framed mutations of valid records of every type (bit
  flips, truncation, extension, insertion, deletion, a varint claiming 2^31 or another huge length, another
  schema id, another magic byte, a valid record of another type on a topic) -> ``InputDecoder.decode`` returns
  a (type, record) of the topic's type that validates against the model, or raises ``DecodeError`` with a
  known stage and a message; never anything else (RecursionError, MemoryError, IndexError ...). A length or
  block count of 2^31 at any byte of a record allocates nothing of that size (tracemalloc).
- pipeline: batches mixing valid records, bad records, records of another type and garbage or forged records
  on the hold topic, over several topics and partitions -> each input ends exactly once per partner as
  released, withheld or held (its view or hold record, and one audit), or is dead-lettered (its key, value and
  headers, plus ``liaison.dlq.stage`` and ``liaison.dlq.error``; one DEAD_LETTER audit per partner); every
  audit decodes; offsets = last + 1 per partition; no exception escapes.
- policy loader: hypothesis-built documents (shapeless nested dicts/lists/scalars, and policy-shaped ones),
  mutated shipped policies (deleted keys, renamed fields, wrong types, unknown actions, huge numbers, deep
  nesting), text and byte mutations (non-UTF-8, YAML syntax, tags), alias bombs (billion laughs, recursive and
  deep aliases) -> ``load_policy`` / ``load_policies`` return policies that build plans and decide every
  example record, or raise ``PolicyError`` naming the file (and a line of it when there is one); each example
  within :data:`HANG_S`.

What the fuzzing found outside the loader (hold headers trusted, policy bounds) is fixed and kept as plain
regression tests below. The examples per property are printed at the end.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import fastavro
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from consumers.shell.codec import DecodeError, InputDecoder, _zigzag
from consumers.forwarder.pipeline import InRecord, build_plans
from core import REPO_ROOT, serde
from core.audit import rows_of
from core.topics import (AUDIT_TOPIC, COMPONENT_PREFIX, DEADLETTER_TOPIC, HOLD_TOPIC, PARTNER_PREFIX,
                         partner_topic, topic_for)
from release import PolicyError, decide, load_policies, load_policy
from schemas.examples import BASE_TIME, example
from schemas.models import from_avro, model_name, to_avro

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from forwarder_support import AUDIT, NOW, Env, make_env, simulated  # noqa: E402

pytestmark = pytest.mark.faults

SCALE = float(os.environ.get("LIAISON_FUZZ_SCALE", "1"))


def n(examples: int) -> int:
    return max(1, int(examples * SCALE))


FUZZ = dict(derandomize=True, database=None, deadline=None, print_blob=True,
            suppress_health_check=list(HealthCheck))
#: Seconds one example may take before it counts as a hang (loose: a shared 2-core machine).
HANG_S = 10.0

TYPES = schemas.MESSAGE_TYPES
TOPICS = [topic_for(t) for t in TYPES]
TOPIC_TYPE = dict(zip(TOPICS, TYPES))
STAGES = {"framing", "schema", "avro", "validation"}
HUGE = (2**31, 2**31 - 1, 2**32, 2**62, 2**63 - 1, -(2**31), -(2**63), -1)

#: property -> hypothesis examples; property -> outcomes; property -> slowest example (s); inputs per property
EXAMPLES: Counter = Counter()
INPUTS: Counter = Counter()
OUTCOMES: dict[str, Counter] = {}
SLOWEST: dict[str, float] = {}
PROPERTIES = ("decoder.bytes", "decoder.framed", "decoder.mutated", "decoder.length-prefix", "pipeline.batches",
              "policy.documents", "policy.shaped", "policy.mutated", "policy.text", "policy.bombs", "policy.sets")
#: not hypothesis examples: every byte position of the good records, enumerated
ENUMERATED = {"decoder.length-prefix"}


def count(prop: str, outcome: str, started: float, inputs: int = 1) -> None:
    elapsed = time.perf_counter() - started
    EXAMPLES[prop] += 1
    INPUTS[prop] += inputs
    OUTCOMES.setdefault(prop, Counter())[outcome] += 1
    SLOWEST[prop] = max(SLOWEST.get(prop, 0.0), elapsed)
    assert elapsed < HANG_S, f"{prop}: one example took {elapsed:.1f} s"


@pytest.fixture(scope="module", autouse=True)
def report(request):
    t0 = time.perf_counter()
    yield
    examples = sum(v for k, v in EXAMPLES.items() if k not in ENUMERATED)
    lines = ["", f"fuzz: {examples} hypothesis examples, {sum(INPUTS.values())} inputs, "
                 f"{time.perf_counter() - t0:.0f} s (LIAISON_FUZZ_SCALE={SCALE:g})",
             f"  {'property':22} {'examples':>8} {'inputs':>8} {'slowest':>9}  outcomes"]
    for prop in PROPERTIES:
        if EXAMPLES[prop]:
            outcomes = ", ".join(f"{k} {v}" for k, v in OUTCOMES[prop].most_common())
            ex = "-" if prop in ENUMERATED else EXAMPLES[prop]
            lines.append(f"  {prop:22} {ex:>8} {INPUTS[prop]:8d} {SLOWEST[prop] * 1000:6.0f} ms  {outcomes}")
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for line in lines:
            (tr.write_line(line) if tr else print(line))
    if all(EXAMPLES[p] for p in PROPERTIES) and SCALE >= 1:
        assert examples >= 100_000, f"only {examples} hypothesis examples"


class Program:
    """Choices read from one hypothesis-drawn byte string (zeros once it runs out): one draw per example keeps
    generation cheap, and hypothesis still shrinks a failure towards fewer and smaller mutations."""

    __slots__ = ("data", "i")

    def __init__(self, data: bytes):
        self.data, self.i = data, 0

    def below(self, bound: int) -> int:
        """0 <= value < bound, from as many bytes as bound needs."""
        value, width = 0, max(1, (bound.bit_length() + 7) // 8)
        for _ in range(width):
            value = value << 8 | (self.data[self.i] if self.i < len(self.data) else 0)
            self.i += 1
        return value % bound if bound > 0 else 0

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def take(self, k: int) -> bytes:
        out = self.data[self.i:self.i + k]
        self.i += k
        return out


PROGRAMS = st.binary(min_size=0, max_size=96)


# ---------------------------------------------------------------------------------------------- environment


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    return make_env(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="module")
def good(env) -> dict[str, list[bytes]]:
    """Valid framed records of every type: the example of each, and simulated ones."""
    out: dict[str, list[bytes]] = {t: [env.frame(t, to_avro(example(t)))] for t in TYPES}
    for m in simulated(2.0, seed=3)[:300]:
        name = model_name(m)
        if len(out[name]) < 8:
            out[name].append(env.frame(name, to_avro(m)))
    return out


@pytest.fixture(scope="module")
def ids(env) -> list[int]:
    """Every id of the registry: the producers' schemas, the partner views, the audit."""
    return sorted(env.registry.texts)


@pytest.fixture(scope="module")
def decoder(env) -> InputDecoder:
    return InputDecoder(env.registry)


def check_decode(decoder: InputDecoder, topic: str, value: bytes | None) -> str:
    """The decoder's contract on one input; the outcome (ok or the stage)."""
    try:
        type_name, record = decoder.decode(topic, value)
    except DecodeError as e:
        assert e.stage in STAGES, e.stage
        assert str(e).strip(), "DecodeError without a message"
        return e.stage
    assert type_name in TYPES
    if topic in TOPIC_TYPE:
        assert type_name == TOPIC_TYPE[topic]
    from_avro(type_name, record)  # validates, or raises: then the decoder let an invalid record through
    return "ok"


# ---------------------------------------------------------------------------------------------- mutations

MUTATIONS = ("flip", "truncate", "extend", "insert", "delete", "overwrite", "huge-length", "schema-id", "magic")


def mutate(value: bytes, p: Program, ids: list[int]) -> bytes:
    v = bytearray(value)
    kind = p.choice(MUTATIONS)
    pos = p.below(max(1, len(v)))
    if kind == "flip" and v:
        v[pos] ^= 1 << p.below(8)
    elif kind == "truncate":
        del v[pos:]
    elif kind == "extend":
        v += p.take(1 + p.below(64)) or b"\x00"
    elif kind == "insert":
        v[pos:pos] = p.take(1 + p.below(16)) or b"\x00"
    elif kind == "delete":
        del v[pos:pos + 1 + p.below(16)]
    elif kind == "overwrite" and v:
        v[pos] = p.below(256)
    elif kind == "huge-length":  # a varint claiming 2^31 (or another huge count) at a byte of the body
        at = max(5, pos)
        v[at:at + p.below(2)] = _zigzag(p.choice(HUGE))
    elif kind == "schema-id":
        v[1:5] = (p.choice(ids) if p.below(2) else p.below(2**32)).to_bytes(4, "big")
    elif kind == "magic" and v:
        v[0] = 1 + p.below(255)
    return bytes(v)


def mutated_record(p: Program, good: dict[str, list[bytes]], ids: list[int]) -> tuple[str, bytes]:
    """(topic, value): a valid record of some type mutated 0-4 times, on its own topic (mostly) or another."""
    type_name = p.choice(TYPES)
    value = p.choice(good[type_name])
    for _ in range(p.below(5)):
        value = mutate(value, p, ids)
    topic = p.choice([topic_for(type_name)] * 3 + TOPICS)
    return topic, value


# ---------------------------------------------------------------------------------------------- decoder


def test_decoder_any_bytes(decoder):
    @settings(max_examples=n(25_000), **FUZZ)
    @given(st.sampled_from(TOPICS + ["liaison.internal.unknown"]), st.none() | st.binary(max_size=300))
    def prop(topic, value):
        t = time.perf_counter()
        count("decoder.bytes", check_decode(decoder, topic, value), t)

    prop()


def test_decoder_framed_bytes_of_any_schema_id(env, decoder, ids):
    own = {t: env.registry.subjects[(serde.value_subject(topic_for(t)), schemas.schema_str(t))] for t in TYPES}

    @settings(max_examples=n(20_000), **FUZZ)
    @given(PROGRAMS, st.binary(max_size=300))
    def prop(program, body):
        p = Program(program)
        type_name = p.choice(TYPES)
        which = p.below(4)
        sid = own[type_name] if which < 2 else p.choice(ids) if which == 2 else p.below(2**32)
        t = time.perf_counter()
        count("decoder.framed", check_decode(decoder, topic_for(type_name), serde.frame(sid, body)), t)

    prop()


def test_decoder_mutated_valid_records(decoder, good, ids):
    @settings(max_examples=n(45_000), **FUZZ)
    @given(PROGRAMS)
    def prop(program):
        topic, value = mutated_record(Program(program), good, ids)
        t = time.perf_counter()
        count("decoder.mutated", check_decode(decoder, topic, value), t)

    prop()


def test_decoder_a_length_prefix_of_2_31_allocates_nothing_of_its_size(decoder, good):
    """A varint of 2^31 (and other huge counts) inserted at, or written over, every byte of the body of two good
    records of every type: a string, bytes, array or map length claiming 2 GiB fails on the missing bytes."""
    cases = []
    for type_name in TYPES:
        for value in good[type_name][:2]:
            for at in range(5, len(value) + 1):
                for huge in (2**31, 2**31 - 1, 2**62):
                    cases.append((topic_for(type_name), value[:at] + _zigzag(huge) + value[at:]))
                    cases.append((topic_for(type_name), value[:at] + _zigzag(huge) + value[at + 1:]))
    tracemalloc.start()
    try:
        worst = 0
        for topic, value in cases:
            t = time.perf_counter()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            outcome = check_decode(decoder, topic, value)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - base)
            count("decoder.length-prefix", outcome, t)
    finally:
        tracemalloc.stop()
    assert worst < 16 * 2**20, f"one decode allocated {worst / 2**20:.0f} MiB"


# ---------------------------------------------------------------------------------------------- pipeline

#: now_ms of a batch: the StrikeReport example's bucket not yet ended (HELD), just ended, far later
DUE = int(BASE_TIME.timestamp() * 1000) + 4 * 3600_000
NOWS = (DUE - 30 * 60_000, DUE + 1, NOW)
KINDS = ("good", "good", "good", "good", "mutated", "mutated", "bytes", "null", "other-type", "hold", "hold-forged")
HEADER_NAMES = ("message_id", "type", "liaison.hold.topic", "liaison.hold.due", "liaison.hold.source.topic",
                "liaison.hold.source.partition", "liaison.hold.source.offset", "liaison.hold.message_id",
                "liaison.hold.type", "liaison.hold.partner", "liaison.hold.rule", "liaison.hold.policy_version",
                "liaison.policy.version", "x")
HEADER_VALUES = (None, b"", b"1", b"-1", b"99999999999999999999", b"RUS", b"\xff\xfe", b"x" * 40)
HOLD_FIELDS = ("topic", "due", "timestamp", "source.topic", "source.partition", "source.offset", "message_id", "type",
               "partner", "rule", "policy_version")
#: forged hold headers: numbers within Avro's long and datetime's range, target topics that are partner topics
#: (beyond: test_a_hold_record_with_out_of_range_numbers..., test_a_forged_hold_record_is_released_to...)
HOLD_NUMBERS = (b"0", b"1", b"-1", b"1700000000000", b"253402300799999", b"x", b"")
HOLD_TEXTS = (b"RUS", b"", b"\xff", b"liaison.partner.rus.air.track", b"liaison.partner.usa.naval.track")
HOLD_TARGETS = (b"liaison.partner.rus.air.track", b"liaison.partner.usa.naval.track", b"liaison.partner.rus.x")


def batch_of(p: Program, good: dict[str, list[bytes]], ids: list[int]) -> tuple[list[InRecord], list[str]]:
    """(records, kinds): 1-20 records over 1-4 partitions of the internal topics (offsets rising, with gaps),
    now and then a record on the hold topic."""
    size, parts = 1 + p.below(20), 1 + p.below(4)
    next_offset: dict[tuple[str, int], int] = {}
    records, kinds = [], []
    for _ in range(size):
        kind = p.choice(KINDS)
        headers = [("message_id", b"m"), ("type", b"t")]
        if kind == "good":
            type_name = p.choice(TYPES)
            topic, value = topic_for(type_name), p.choice(good[type_name])
        elif kind == "mutated":
            topic, value = mutated_record(p, good, ids)
        elif kind == "other-type":  # a valid record of another type on a topic
            a = p.choice(TYPES)
            topic, value = topic_for(a), p.choice(good[p.choice([t for t in TYPES if t != a])])
        elif kind == "null":
            topic, value = p.choice(TOPICS), None
        else:
            topic = HOLD_TOPIC if kind.startswith("hold") else p.choice(TOPICS)
            value = p.take(p.below(120)) if p.below(4) else None
            if kind == "hold-forged":  # every header the forwarder writes, with odd values
                headers = [("liaison.hold." + f, p.choice(
                    HOLD_TARGETS if f == "topic" else
                    HOLD_NUMBERS if f in ("due", "timestamp", "source.partition", "source.offset") else HOLD_TEXTS))
                    for f in HOLD_FIELDS if f != "timestamp" or p.below(2)]
            else:
                headers = None if not p.below(4) else [(p.choice(HEADER_NAMES), p.choice(HEADER_VALUES))
                                                       for _ in range(p.below(15))]
        part = p.below(parts)
        tp = (topic, part)
        offset = next_offset.get(tp, p.below(2**40)) + p.choice((0, 0, 0, 1, 7))
        next_offset[tp] = offset + 1
        key = p.take(p.below(17)) if p.below(2) else None
        records.append(InRecord(topic, part, offset, key, value, headers, 1_700_000_000_000))
        kinds.append(kind)
    return records, kinds


def check_batch(env: Env, records: list[InRecord], kinds: list[str], now_ms: int) -> Counter:
    result = env.pipeline().process(records, now_ms)  # an exception here fails the property
    partners = sorted(env.plans)
    audits = rows_of(fastavro.schemaless_reader(io.BytesIO(o.value[5:]), AUDIT) for o in result.audits)
    by_input: dict[tuple, list[dict]] = {}
    for a in audits:
        by_input.setdefault((a["input_topic"], a["input_partition"], a["input_offset"]), []).append(a)
    dlq = {}
    for o in result.dead_letters:
        h = dict(o.headers)
        coord = (h["liaison.dlq.source.topic"].decode(), int(h["liaison.dlq.source.partition"]),
                 int(h["liaison.dlq.source.offset"]))
        assert coord not in dlq, f"{coord} dead-lettered twice"
        assert h["liaison.dlq.stage"] and h["liaison.dlq.error"], h
        dlq[coord] = o
    outcome: Counter = Counter()
    check = InputDecoder(env.registry)
    inputs = [(r, k) for r, k in zip(records, kinds) if r.topic != HOLD_TOPIC]
    for rec, kind in inputs:
        coord = (rec.topic, rec.partition, rec.offset)
        rows = [a for a in by_input.get(coord, []) if a["decision"] != "RELEASED"]
        assert sorted(a["partner"] for a in rows) == partners, f"{kind} input {coord}: audits {rows}"
        try:
            check.decode(rec.topic, rec.value)
            decodes = True
        except DecodeError:
            decodes = False
        if coord in dlq:
            out = dlq.pop(coord)
            stage = dict(out.headers)["liaison.dlq.stage"]
            # a record that decodes is dead-lettered only when a partner's view of it does not encode
            assert (not decodes or stage == b"encode") and kind != "good", f"{kind} input {coord} dead-lettered"
            assert (out.key, out.value) == (rec.key, rec.value)
            assert list(out.headers[:len(rec.headers or [])]) == list(rec.headers or [])
            assert {a["decision"] for a in rows} == {"DEAD_LETTER"}
            outcome["dead-lettered"] += 1
        else:
            assert decodes, f"{kind} input {coord} undecodable but not dead-lettered"
            assert {a["decision"] for a in rows} <= {"RELEASE", "WITHHOLD", "HELD"}
            outcome.update(a["decision"].lower() for a in rows)
    for rec in records:  # hold-topic records: released (a RELEASED audit), skipped, paused or dead-lettered
        coord = (rec.topic, rec.partition, rec.offset)
        if rec.topic == HOLD_TOPIC and coord in dlq:
            out = dlq.pop(coord)
            assert dict(out.headers)["liaison.dlq.stage"] == b"hold" and out.value == rec.value
            outcome["hold dead-lettered"] += 1
    assert not dlq, f"dead letters of no input: {sorted(dlq)}"
    # views, holds and audits add up
    releases = [a for a in audits if a["decision"] in ("RELEASE", "RELEASED")]
    released = [o for o in result.outputs if o.topic not in (AUDIT_TOPIC, DEADLETTER_TOPIC, HOLD_TOPIC)]
    assert sorted(o.topic for o in released) == sorted(a["output_topic"] for a in releases)
    assert all(o.topic.startswith((PARTNER_PREFIX, COMPONENT_PREFIX)) for o in released)  # a recipient's feed
    assert len(result.holds) == sum(a["decision"] == "HELD" for a in audits)
    outcome["released from hold"] += sum(a["decision"] == "RELEASED" for a in audits)
    assert result.stats.records == len(inputs)
    assert result.stats.dead_lettered == outcome["dead-lettered"]
    # offsets: last + 1 per partition of the inputs; a hold partition's within its records
    last: dict[tuple[str, int], int] = {}
    for rec in records:
        if rec.topic != HOLD_TOPIC:
            last[(rec.topic, rec.partition)] = rec.offset
    for tp, off in last.items():
        assert result.offsets[tp] == off + 1, (tp, result.offsets.get(tp), off)
    for tp, off in result.offsets.items():
        if tp[0] == HOLD_TOPIC:
            offs = [r.offset for r in records if (r.topic, r.partition) == tp]
            assert min(offs) <= off <= max(offs) + 1
    return outcome


PIPELINE: Counter = Counter()


def test_pipeline_every_input_ends_exactly_once(env, good, ids):
    @settings(max_examples=n(2_000), **FUZZ)
    @given(PROGRAMS | st.binary(min_size=64, max_size=600), st.sampled_from(NOWS))
    def prop(program, now_ms):
        records, kinds = batch_of(Program(program), good, ids)
        t = time.perf_counter()
        outcome = check_batch(env, records, kinds, now_ms)
        count("pipeline.batches", "batches", t, inputs=len(records))
        PIPELINE.update(outcome)

    prop()
    OUTCOMES["pipeline.batches"] = Counter({(k if "lettered" in k or "hold" in k else f"{k} (input, partner)"): v
                                            for k, v in PIPELINE.items() if v})
    assert {"dead-lettered", "release", "withhold", "held", "hold dead-lettered"} <= set(PIPELINE), PIPELINE


@pytest.mark.parametrize("target", ["RUS", AUDIT_TOPIC, partner_topic("USA", topic_for("AirTrack"))])
def test_a_forged_hold_record_naming_another_topic_is_dead_lettered(env, target):
    headers = [("liaison.hold." + k, v) for k, v in {
        "topic": target.encode(), "due": b"0", "source.topic": topic_for("AirTrack").encode(),
        "source.partition": b"0", "source.offset": b"1", "message_id": b"m", "type": b"AirTrack",
        "partner": b"RUS", "rule": b"r", "policy_version": b"v"}.items()]
    result = env.pipeline().process([InRecord(HOLD_TOPIC, 0, 5, b"k", b"\x00" * 8, headers, 0)], NOW)
    assert [o.topic for o in result.outputs] == [DEADLETTER_TOPIC], [o.topic for o in result.outputs]


@pytest.mark.parametrize("header, value", [("due", b"-99999999999999999999"), ("due", b"-253402300800000"),
                                           ("source.offset", b"99999999999999999999999"),
                                           ("source.partition", b"-99999999999999999999")])
def test_a_hold_record_with_out_of_range_numbers_is_dead_lettered(env, header, value):
    fields = {"topic": partner_topic("RUS", topic_for("AirTrack")).encode(), "due": b"0",
              "source.topic": topic_for("AirTrack").encode(), "source.partition": b"0", "source.offset": b"1",
              "message_id": b"m", "type": b"AirTrack", "partner": b"RUS", "rule": b"r", "policy_version": b"v"}
    fields[header] = value
    headers = [("liaison.hold." + k, v) for k, v in fields.items()]
    result = env.pipeline().process([InRecord(HOLD_TOPIC, 0, 5, b"k", b"\x00" * 8, headers, 0)], NOW)
    for audit in result.audits:  # what an audit reader does
        fastavro.schemaless_reader(io.BytesIO(audit.value[5:]), AUDIT)
    assert [o.topic for o in result.outputs] == [DEADLETTER_TOPIC], [o.topic for o in result.outputs]


# ---------------------------------------------------------------------------------------------- policy loader

SHIPPED = REPO_ROOT / "deploy" / "policies"
#: A small valid policy (tests/unit/test_release_policy_errors.py's), compiled fast: most mutations start here.
SMALL = """\
partner: RUS
classification_ceiling: CONFIDENTIAL
sets:
  designated: [daesh]
label:
  classification: keep
  message_id: keep
  releasable_to: drop
rules:
  StrikeReport:
    - id: strike
      when:
        - {field: group_id, in_set: designated}
      fields:
        strike_id: keep
        time: {bucket: {seconds: 3600}}
        position: {coarsen: {grid_deg: 0.1}}
        weapon: drop
  AirMissionPlan:
    - id: plan
      fields:
        callsign: keep
        route: keep
        status: keep
  ForeignFighterReport:
    - id: ff
      when:
        - any:
            - {field: subject.nationality, contains_any: [RUS]}
            - {field: subject.languages, contains_any: [ru]}
      fields:
        subject.subject_ref: pseudonymise
        subject.name: drop
        time: keep
"""
BASES = {"small": SMALL, "RUS": (SHIPPED / "RUS.yaml").read_text(), "USA": (SHIPPED / "USA.yaml").read_text()}
TREES = {name: yaml.safe_load(text) for name, text in BASES.items()}

ACTIONS = ["keep", "drop", "pseudonymise", "coarsen", "bucket", "blur", "KEEP", "", "keep ", "redact"]
KEYS = ["partner", "classification_ceiling", "require_releasable_to", "sets", "label", "rules", "id", "when",
        "fields", "timestamp", "acknowledge", "nullable", "field", "equals", "in_set", "contains_any",
        "contains_any_set", "inside", "any", "all", "coarsen", "bucket", "grid_deg", "seconds", "lat_min",
        "lat_max", "lon_min", "lon_max", "precision", "distinguishable", "linkable", *TYPES, "time", "position",
        "label.created_at", "label.message_id", "subject.subject_ref", "group_id", "route", "route.eta", "x"]
HUGE_VALUES = [10**30, -10**30, 2**63, 2**64 + 1, 1e308, -1e308, float("inf"), float("-inf"), float("nan"), 0, -1,
               0.0, 1e-320, 10**4000]
FIELD_PATHS = ["time", "position", "label.created_at", "label.message_id", "callsign", "route", "route.eta",
               "subject.subject_ref", "subject.name", "subject.nationality", "group_id", "strike_id", "track_id",
               "status", "x", "time.x", ""]

SCALARS = (st.none() | st.booleans() | st.integers() | st.sampled_from(HUGE_VALUES) | st.floats()
           | st.text(max_size=12)
           | st.sampled_from(KEYS + ACTIONS + ["RUS", "USA", "CONFIDENTIAL", "SECRET", "daesh", "2015-11-23"]))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
                         max_leaves=25)
ACTION = st.sampled_from(ACTIONS + [
    {"coarsen": {"grid_deg": g}} for g in (0.1, 0.5, 0, -1, 1e308, "x", 90, 91, 1e-9)] + [
    {"bucket": {"seconds": s}} for s in (1, 60, 3600, 86400, 0, -5, 7 * 86400, 30 * 86400, 1.5, "x", None)] + [
    {"pseudonymise": {}}, {"keep": {"x": 1}}, {"bucket": {}}, {"coarsen": None}, {"drop": {}, "keep": {}}, [], {}])
CONDITION = st.fixed_dictionaries({"field": st.sampled_from(FIELD_PATHS)}, optional={
    "equals": SCALARS, "in_set": st.sampled_from(["designated", "nope"]), "contains_any": st.lists(SCALARS, max_size=3),
    "contains_any_set": st.sampled_from(["designated", "nope"]),
    "inside": st.fixed_dictionaries({k: st.sampled_from([0, 90, -90, 180, 1e308, "x"])
                                     for k in ("lat_min", "lat_max", "lon_min", "lon_max")}),
    "any": st.lists(st.fixed_dictionaries({"field": st.sampled_from(FIELD_PATHS), "equals": SCALARS}), max_size=2)})
RULE = st.fixed_dictionaries({"id": st.sampled_from(["r", "r2", "Bad Id", "", "default-deny"]),
                              "fields": st.dictionaries(st.sampled_from(FIELD_PATHS), ACTION, max_size=5)},
                             optional={"when": st.lists(CONDITION, max_size=3),
                                       "timestamp": st.sampled_from(FIELD_PATHS),
                                       "nullable": st.lists(st.sampled_from(FIELD_PATHS), max_size=2),
                                       "acknowledge": DOCUMENTS})
SHAPED = st.fixed_dictionaries({
    "partner": st.sampled_from(["RUS", "USA", "rus", "XX", "ABCD", 1]),
    "classification_ceiling": st.sampled_from(["CONFIDENTIAL", "SECRET", "TOP_SECRET", "secret", 3]),
    "label": st.dictionaries(st.sampled_from(["classification", "message_id", "created_at", "releasable_to", "caveats",
                                              "originator", "x"]), ACTION, max_size=6),
    "rules": st.dictionaries(st.sampled_from(list(TYPES) + ["NoSuchType"]), st.lists(RULE, max_size=3), max_size=3)},
    optional={"sets": st.dictionaries(st.sampled_from(["designated", "other"]), st.lists(SCALARS, max_size=3),
                                      max_size=2),
              "require_releasable_to": st.sampled_from([True, False, "yes", 1])})


def dump(tree) -> bytes:
    try:
        return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, RecursionError):
        return repr(tree).encode("utf-8", "surrogatepass")


def policy_file(directory: Path, data: bytes, partner) -> Path:
    """The file, named <partner>.yaml when it can be (a policy compiles only under its partner's name)."""
    name = partner if isinstance(partner, str) and len(partner) == 3 and partner.isalpha() else "RUS"
    for old in directory.glob("*"):
        old.unlink()
    path = directory / f"{name}.yaml"
    path.write_bytes(data)
    return path


#: Exceptions the fuzzing found in release/ beyond the loader, each pinned by a strict xfail test below:
#: (file, function, type) of the innermost frame -> outcome. Counted, not failed, so the properties go on finding
#: the rest; delete an entry when its xfail test starts to pass.
KNOWN = {
}


@contextlib.contextmanager
def known_issues(found: list):
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a known finding
        tb, code = exc.__traceback__, None
        while tb is not None:  # the innermost frame in release/
            if Path(tb.tb_frame.f_code.co_filename).parent.name == "release":
                code = tb.tb_frame.f_code
            tb = tb.tb_next
        name = code and KNOWN.get((Path(code.co_filename).name, code.co_name, type(exc)))
        if not name:
            raise
        found.append(name)


def check_policy_error(e: PolicyError, files: dict[Path, bytes]) -> None:
    """The error names one of the files (or their folder) and, for each problem with a line, a line of it."""
    by_path = {p.resolve(): d for p, d in files.items()}
    folder = next(iter(files)).parent.resolve()
    for err in getattr(e, "errors", [e]):
        named = Path(err.file).resolve()
        assert named in by_path or named == folder, f"error names {err.file}, not the file: {err}"
        text = str(err)
        assert text.startswith(err.file), text
        lines = by_path.get(named, b"").count(b"\n") + 2
        for line, _path, message in err.problems:
            assert message.strip()
            assert line is None or 1 <= line <= lines, (line, lines, message)
            if line is not None:
                assert f"{err.file}:{line}" in text


def check_policy(path: Path, data: bytes, env: Env | None = None) -> str:
    """load_policy's contract on one file; the outcome."""
    found: list[str] = []
    with known_issues(found):
        try:
            policy = load_policy(path)
        except PolicyError as e:
            check_policy_error(e, {path: data})
            return "PolicyError"
        if env is not None:  # a policy that loads must be usable: its plan builds and it decides every type
            try:
                plans = build_plans({policy.partner: policy}, env.registry.encoder_for)
            except PolicyError as e:  # a bucket longer than a release is held
                check_policy_error(e, {path: data})
                return "PolicyError (build_plans)"
            assert list(plans) == [policy.partner]
            for type_name in TYPES:
                decide(type_name, to_avro(example(type_name)), policy)
        return "compiled"
    return found[0]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("policies")


def test_the_fuzz_bases_are_valid(env, policy_dir):
    """The unmutated bases compile (mutations start from a policy, not from an error)."""
    for name, text in BASES.items():
        path = policy_file(policy_dir, text.encode(), "RUS" if name == "small" else name)
        assert check_policy(path, text.encode(), env) == "compiled"


def test_policy_random_documents(env, policy_dir):
    @settings(max_examples=n(3_000), **FUZZ)
    @given(DOCUMENTS)
    def prop(tree):
        data = dump(tree)
        path = policy_file(policy_dir, data, tree.get("partner") if isinstance(tree, dict) else None)
        t = time.perf_counter()
        count("policy.documents", check_policy(path, data, env), t)

    prop()


def test_policy_shaped_documents(env, policy_dir):
    @settings(max_examples=n(2_000), **FUZZ)
    @given(SHAPED)
    def prop(tree):
        data = dump(tree)
        path = policy_file(policy_dir, data, tree.get("partner"))
        t = time.perf_counter()
        count("policy.shaped", check_policy(path, data, env), t)

    prop()


def paths_of(tree, loc=()):
    yield loc
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths_of(v, loc + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from paths_of(v, loc + (i,))


TREE_MUTATIONS = ("delete", "rename", "wrong-type", "unknown-action", "huge-number", "deep-nesting", "duplicate")
WRONG = [None, True, 0, -1, 1.5, "", "x", "keep", [], [1], {}, {"x": 1}, ["daesh"], {"keep": {}}]
ODD_ACTIONS = ACTIONS + [{"coarsen": {"grid_deg": "fine"}}, {"bucket": {}}, {"keep": {"x": 1}},
                         {"bucket": {"seconds": 3600}, "drop": {}}, {"bucket": {"seconds": 10**12}}]


def mutated_tree(p: Program):
    """(base, tree): a parsed base policy with 1-3 structural mutations at random places."""
    name = p.choice(["small"] * 6 + ["RUS", "USA"])
    tree = copy.deepcopy(TREES[name])
    for _ in range(1 + p.below(3)):
        paths = [loc for loc in paths_of(tree) if loc]
        if not paths:
            break
        loc = p.choice(paths)
        parent = tree
        for part in loc[:-1]:
            parent = parent[part]
        last = loc[-1]
        kind = p.choice(TREE_MUTATIONS)
        if kind == "delete":
            del parent[last]
        elif kind == "rename" and isinstance(parent, dict):
            new = p.choice(KEYS) if p.below(3) else p.take(1 + p.below(8)).decode("latin-1")
            if new not in parent:
                parent[new] = parent.pop(last)
        elif kind == "wrong-type":
            parent[last] = copy.deepcopy(p.choice(WRONG))
        elif kind == "unknown-action":
            parent[last] = copy.deepcopy(p.choice(ODD_ACTIONS))
        elif kind == "huge-number":
            parent[last] = p.choice(HUGE_VALUES)
        elif kind == "deep-nesting":
            value = parent[last]
            for _ in range(1 + p.below(80)):
                value = [value] if p.below(2) else {"x": value}
            parent[last] = value
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return name, tree


def test_policy_mutated_shipped_policies(env, policy_dir):
    @settings(max_examples=n(2_500), **FUZZ)
    @given(PROGRAMS)
    def prop(program):
        _name, tree = mutated_tree(Program(program))
        data = dump(tree)
        path = policy_file(policy_dir, data, tree.get("partner") if isinstance(tree, dict) else None)
        t = time.perf_counter()
        count("policy.mutated", check_policy(path, data, env), t)

    prop()


SNIPPETS = ["&a ", "*a", "*nope", "!!python/object:os.system ", "!!binary ", "!!timestamp ", "!!int ", "!!float ",
            "!!set ", "!!omap ", "!!map ", "!!seq ", "!foo ", "<<: *a\n", "<<: {}\n", "{", "}", "[", "]", "- ", ": ",
            "? ", "|", ">", "\t", "\x00", "\x85", "\ufeff", "\u2028", "%YAML 1.1\n", "---\n", "...\n", "#", "'", '"',
            "\\", "\n", "  ", "2015-13-45", "2001-12-14t21:59:43.10-99:00", "9" * 5000, "0x" + "f" * 400, "1e999",
            ".nan", "~", "null", "é", "\U0001f600"]
TEXT_MUTATIONS = ("snippet", "snippet", "snippet", "bytes", "delete", "truncate", "line", "indent")


def mutated_text(p: Program) -> tuple[str, bytes]:
    """(base, bytes): a base policy's text with 1-4 mutations: YAML snippets, raw bytes (non-UTF-8 too), deleted
    ranges, truncation, repeated lines (duplicate keys and rules), indentation."""
    name = p.choice(["small"] * 4 + ["RUS", "USA"])
    data = bytearray(BASES[name].encode())
    for _ in range(1 + p.below(4)):
        pos = p.below(len(data) + 1)
        kind = p.choice(TEXT_MUTATIONS)
        if kind == "snippet":
            data[pos:pos] = p.choice(SNIPPETS).encode("utf-8")
        elif kind == "bytes":
            data[pos:pos] = p.take(1 + p.below(8)) or b"\xff"
        elif kind == "delete":
            del data[pos:pos + 1 + p.below(40)]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "line":
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end + 1
            data[end:end] = data[start:end]
        else:
            start = data.rfind(b"\n", 0, pos) + 1
            data[start:start] = b" " * (1 + p.below(3))
    return name, bytes(data)


def test_policy_text_and_byte_mutations(env, policy_dir):
    @settings(max_examples=n(2_500), **FUZZ)
    @given(PROGRAMS)
    def prop(program):
        name, data = mutated_text(Program(program))
        path = policy_file(policy_dir, data, "RUS" if name == "small" else name)
        t = time.perf_counter()
        count("policy.text", check_policy(path, data, env), t)

    prop()


def alias_bomb(p: Program) -> bytes:
    """Billion laughs (levels x width of aliases of aliases) placed where a policy expects values, recursive
    aliases, deep aliases (nesting through aliases), anchored keys used again."""
    kind = p.choice(("laughs", "laughs", "recursive", "deep", "key"))
    if kind == "laughs":
        levels, width = 2 + p.below(11), 2 + p.below(11)
        lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
        body = "\n".join("  " + line for line in lines)
        where = p.choice(["sets:\n  designated: *top\n", "label: *top\n", "rules: {AirTrack: *top}\n", "x: *top\n"])
        return (f"partner: RUS\nclassification_ceiling: SECRET\nbombs:\n{body}\n  top: &top *l{levels - 1}\n"
                f"{where}").encode()
    if kind == "recursive":
        return p.choice([b"partner: &a [*a]\n", b"&a {x: *a}\n", b"label: &a {time: [*a]}\n",
                         b"rules: &r {AirTrack: [{id: r, fields: *r}]}\n", b"&a [&b [*a, *b]]\n",
                         b"partner: RUS\nsets: &s {designated: [*s]}\n"])
    if kind == "deep":
        depth, chain = 10 + p.below(54), 1 + p.below(30)
        lines = [f"k{i}: &x{i} " + "[" * depth + (f"*x{i - 1}" if i else "1") + "]" * depth for i in range(chain)]
        return ("\n".join(lines) + "\n").encode()
    width = 1 + p.below(200)
    return ("a: &k " + "x" * width + "\n" + "\n".join(f"? *k\n: {i}" for i in range(1 + p.below(3))) + "\n").encode()


def test_policy_alias_bombs_are_refused_in_bounded_time(env, policy_dir):
    @settings(max_examples=n(1_000), **FUZZ)
    @given(PROGRAMS)
    def prop(program):
        data = alias_bomb(Program(program))
        path = policy_file(policy_dir, data, "RUS")
        t = time.perf_counter()
        outcome = check_policy(path, data, env)
        count("policy.bombs", outcome, t)
        assert outcome == "PolicyError"

    prop()


def test_policy_sets_through_load_policies(env, tmp_path_factory):
    """load_policies over a folder: the shipped USA policy next to a mutated RUS one (escape routes across
    partners are checked there), sometimes a stray file."""
    folder = tmp_path_factory.mktemp("policy-sets")

    @settings(max_examples=n(600), **FUZZ)
    @given(PROGRAMS)
    def prop(program):
        p = Program(program)
        if p.below(2):
            data = mutated_text(p)[1]
        else:
            data = dump(mutated_tree(p)[1])
        stray = p.choice([None, None, None, "x.yml", "y.yaml"])
        shutil.rmtree(folder)
        folder.mkdir()
        files = {folder / "RUS.yaml": data, folder / "USA.yaml": BASES["USA"].encode()}
        if stray:
            files[folder / stray] = b"partner: XYZ\n"
        for path, content in files.items():
            path.write_bytes(content)
        t = time.perf_counter()
        found: list[str] = []
        outcome = None
        with known_issues(found):
            try:
                policies = load_policies(folder)
                outcome = "compiled"
                build_plans(policies, env.registry.encoder_for)
            except PolicyError as e:
                check_policy_error(e, files)
                outcome = "PolicyError"
        count("policy.sets", outcome or found[0], t)

    prop()


def _small_with(old: str, new: str) -> bytes:
    assert old in SMALL
    return SMALL.replace(old, new).encode()


@pytest.mark.parametrize("seconds", [86_400_000_000_000, 10**30])
def test_a_bucket_beyond_timedelta_is_a_policy_error(policy_dir, seconds):
    data = _small_with("seconds: 3600", f"seconds: {seconds}")
    with pytest.raises(PolicyError):
        load_policy(policy_file(policy_dir, data, "RUS"))


def test_a_subnormal_grid_is_refused_at_load(policy_dir):
    data = _small_with("grid_deg: 0.1", "grid_deg: 1.0e-320")
    with pytest.raises(PolicyError) as refused:
        load_policy(policy_file(policy_dir, data, "RUS"))
    assert "coarsen.grid_deg must be a number >= 1e-06" in str(refused.value)


@pytest.mark.parametrize("condition", ["{any: null}", "{all: null}", "{field: subject.languages, contains_any: null}",
                                       "{field: subject.nationality, contains_any_set: null}"])
def test_a_condition_operator_without_a_value_is_a_policy_error(policy_dir, condition):
    data = _small_with("        - any:\n", f"        - {condition}\n        - any:\n")
    with pytest.raises(PolicyError):
        load_policy(policy_file(policy_dir, data, "RUS"))

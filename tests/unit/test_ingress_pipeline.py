"""The ingress guard's pure pipeline: every check, in order, on records built here (no broker, no registry: an
in-memory one), the relabelled output, the quarantine with the original bytes, the audits, the seen ids; on the
reference engine and on the compiled one (tests taking ``env`` run on both)."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import fastavro
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers.shell.codec import RegistryUnavailable
from consumers.shell.records import InRecord, Poison
from consumers.ingress.checks import CHECKS, MAX_VALUE_BYTES, GuardConfig, build_checks
from consumers.ingress.compiled import GuardCore
from consumers.ingress.pipeline import QUARANTINE_HEADERS, Pipeline, seen_key
from consumers.ingress.plans import guard_config, type_plans
from consumers.ingress.registry import InboundSchemas, plain_uuids
from consumers.ingress.validation import _record_of
from core import REPO_ROOT, serde
from core.topics import INGRESS_AUDIT_TOPIC, SEEN_TOPIC, inbound_topic, origin_topic, quarantine_topic, topic_for
from release import load_policies
from release.exchange import inbound_schema, origin_schema
from release.spec import Inbound
from schemas import MESSAGE_TYPES, SCHEMA_DIR, schema_str
from schemas.agreement import is_exchanged
from schemas.examples import example
from schemas.models import to_avro

#: What a partner sends us: every type but the ones each side computes for itself (its deconfliction alerts).
EXCHANGED = tuple(t for t in MESSAGE_TYPES if is_exchanged(t))

POLICIES = REPO_ROOT / "deploy" / "policies"
NOW = 1_795_454_354_805
NOW_DT = datetime.fromtimestamp(NOW / 1000, timezone.utc)
GUARD = "liaison-ingress-rus"
AUDIT_SCHEMA = json.loads((SCHEMA_DIR / "audit" / "IngressAudit.avsc").read_text())


class FakeRegistry:
    """Subjects, versions and ids in memory, answering as SchemaRegistryClient does (get_versions, get_version)."""

    class _Reg:
        def __init__(self, sid, text):
            self.schema_id = sid
            self.schema = type("S", (), {"schema_str": text})()

    def __init__(self):
        self.texts: dict[int, str] = {}
        self.versions: dict[str, list[int]] = {}
        self.down = False
        self.asked = 0

    def register(self, subject: str, schema) -> int:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        for sid in self.versions.get(subject, []):
            if self.texts[sid] == text:
                return sid
        sid = len(self.texts) + 1
        self.texts[sid] = text
        self.versions.setdefault(subject, []).append(sid)
        return sid

    def get_versions(self, subject):
        self.asked += 1
        if self.down:
            raise ConnectionError("registry down")
        if subject not in self.versions:
            raise SchemaRegistryError(404, 40401, "Subject not found")
        return list(range(1, len(self.versions[subject]) + 1))

    def get_version(self, subject, version):
        if self.down:
            raise ConnectionError("registry down")
        sid = self.versions[subject][version - 1]
        return self._Reg(sid, self.texts[sid])

    def encoder_for(self, topic, schema):
        return serde.Encoder(self.register(serde.value_subject(topic), schema), schema)


@pytest.fixture(scope="module")
def policy():
    return load_policies(POLICIES)["RUS"]


class Env:
    def __init__(self, policy, config: GuardConfig | None = None, engine: str = "reference"):
        self.policy = policy
        self.registry = FakeRegistry()
        for t in MESSAGE_TYPES:  # our own subjects come first: their ids are not the partner's
            self.registry.register(serde.value_subject(topic_for(t)), schema_str(t))
            self.registry.register(serde.value_subject(inbound_topic("USA", t)), json.dumps({"usa": t}))
        self.ids = {t: self.registry.register(serde.value_subject(inbound_topic("RUS", t)),
                                              inbound_schema(policy, t)) for t in EXCHANGED}
        self.schemas = InboundSchemas(self.registry)
        self.plans = type_plans(policy, self.registry.encoder_for)
        self.schemas.load(p.subject for p in self.plans.values())
        audit_id = self.registry.register("liaison.audit.ingress-value", AUDIT_SCHEMA)
        self.audit = serde.Encoder(audit_id, AUDIT_SCHEMA)
        # the checks' defaults (Inbound()), whatever deploy/policies says: guard_config is tested on its own
        self.config = config or GuardConfig("RUS", Inbound())
        self.core = GuardCore(self.config, self.plans, self.schemas) if engine == "compiled" else None
        self.pipeline = Pipeline(self.config, self.plans, self.schemas, self.audit, GUARD, compiled=self.core)
        self.offsets: dict[tuple[str, int], int] = {}

    def record(self, type_name: str, **label) -> dict:
        """A valid record of ``type_name`` as RUS sends it: the example projected on the inbound schema, times
        near NOW, a RUS originator, REL TO FRA, a fresh message id."""
        schema = inbound_schema(self.policy, type_name)
        rec = project(to_avro(example(type_name)), schema)
        shift = NOW_DT - rec["label"]["created_at"]
        rec = shift_times(rec, shift)
        rec["label"].update({"originator": "rus.air", "releasable_to": ["FRA", "RUS"],
                             "message_id": str(uuid.uuid4()), "caveats": [], "classification": "RESTRICTED"})
        rec["label"].update(label)
        return rec

    def value(self, type_name: str, record: dict, schema_id: int | None = None) -> bytes:
        return serde.frame(schema_id or self.ids[type_name], write(inbound_schema(self.policy, type_name), record))

    def rec(self, type_name: str, value: bytes | None, partition: int = 0, key: bytes | None = b"k",
            headers=None) -> InRecord:
        topic = inbound_topic("RUS", type_name)
        off = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = off + 1
        return InRecord(topic, partition, off, key, value, headers if headers is not None else [("h", b"v")])

    def valid(self, type_name: str = "AirTrack", **label) -> InRecord:
        return self.rec(type_name, self.value(type_name, self.record(type_name, **label)))

    def run(self, *records, seen=frozenset(), poison=None, now=NOW):
        return self.pipeline.process(list(records), now, seen, poison)


def project(record: dict, schema: dict) -> dict:
    out = {}
    for f in schema["fields"]:
        v = record.get(f["name"])
        sub = _record_of(f["type"])
        if sub is not None and isinstance(v, dict):
            v = project(v, sub)
        elif sub is not None and isinstance(v, list):
            v = [project(x, sub) for x in v]
        out[f["name"]] = v
    return out


def shift_times(v, delta):
    if isinstance(v, datetime):
        return v + delta
    if isinstance(v, dict):
        return {k: shift_times(x, delta) for k, x in v.items()}
    if isinstance(v, list):
        return [shift_times(x, delta) for x in v]
    return v


def write(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(plain_uuids(schema)), record)
    return buf.getvalue()


def read_audit(value: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), fastavro.parse_schema(AUDIT_SCHEMA))


def only_check(result) -> str:
    [q] = result.quarantined
    return dict(q.headers)["liaison.quarantine.check"].decode()


@pytest.fixture(params=["reference", "compiled"])
def env(policy, request):
    """Every test on both engines: the reference checks every record; on the compiled one the core accepts what
    passes outright and the reference names every quarantine (consumers/ingress/compiled.py)."""
    return Env(policy, engine=request.param)


# ---------------------------------------------------------------------------------------------- accepted


def test_a_partner_sends_no_deconfliction_alert(policy):
    assert "DeconflictionAlert" in policy.types and "DeconflictionAlert" not in EXCHANGED
    plans = type_plans(policy, lambda *a: None)
    assert set(plans) == {inbound_topic("RUS", t) for t in EXCHANGED}


@pytest.mark.parametrize("type_name", EXCHANGED)
def test_valid_record_of_every_type_is_relabelled_partner_origin(env, policy, type_name):
    sent = env.record(type_name, caveats=["RUS EYES"], classification="CONFIDENTIAL")
    rec = env.rec(type_name, env.value(type_name, sent))
    result = env.run(rec)
    assert result.stats.accepted == 1 and not result.quarantined
    [out] = result.origin
    assert out.topic == origin_topic("RUS", type_name)
    mid = sent["label"]["message_id"]
    assert out.key == mid.encode() and out.headers is None
    sid = serde.HEADER.unpack_from(out.value)[1]
    assert sid == env.registry.register(serde.value_subject(out.topic), origin_schema(policy, type_name))
    got = fastavro.schemaless_reader(io.BytesIO(out.value[5:]), fastavro.parse_schema(origin_schema(policy, type_name)))
    assert got["label"]["originator"] == "partner.rus"
    assert got["label"]["caveats"] == ["RUS EYES", "ORIGIN RUS"]
    assert got["label"]["classification"] == "CONFIDENTIAL" and got["label"]["releasable_to"] == ["FRA", "RUS"]
    assert str(got["label"]["message_id"]) == mid
    assert {k: v for k, v in got.items() if k != "label"} == {k: v for k, v in sent.items() if k != "label"}
    [seen] = result.seen
    assert seen.key == seen_key("RUS", mid).encode() == f"RUS/{mid}".encode()
    assert json.loads(seen.value) == {"topic": rec.topic, "partition": 0, "offset": 0, "accepted_at": NOW}
    [audit] = result.audits
    a = read_audit(audit.value)
    assert set(a) == {f["name"] for f in AUDIT_SCHEMA["fields"]}
    assert a["decision"] == "ACCEPT" and a["check"] == "accepted" and a["message_id"] == mid
    assert (a["input_topic"], a["input_partition"], a["input_offset"]) == (rec.topic, 0, 0)
    assert a["partner"] == "RUS" and a["message_type"] == type_name and a["output_topic"] == out.topic
    assert a["bytes"] == len(rec.value) and a["guard"] == GUARD
    assert int(a["decided_at"].timestamp() * 1000) == NOW
    assert result.accepted_ids == [mid] and result.offsets == {(rec.topic, 0): 1}


def test_originator_own_code_or_unit_accepted(env):
    result = env.run(env.valid(originator="rus"), env.valid(originator="rus.vks.hmeimim"))
    assert result.stats.accepted == 2


def test_a_new_version_of_the_inbound_subject_is_taken(env, policy):
    schema = inbound_schema(policy, "AirTrack")
    v2 = json.loads(json.dumps(schema))
    v2["fields"].append({"name": "extra", "type": "string", "default": ""})
    sid = env.registry.register(serde.value_subject(inbound_topic("RUS", "AirTrack")), v2)
    rec = env.record("AirTrack")
    value = serde.frame(sid, write(v2, {**rec, "extra": "x"}))
    result = env.run(env.rec("AirTrack", value))
    assert result.stats.accepted == 1  # resolved to the current inbound schema: the extra field is dropped


# ---------------------------------------------------------------------------------------------- each check


def test_size(env):
    big = env.valid()
    big.value = big.value + b"\0" * (MAX_VALUE_BYTES - len(big.value) + 1)
    assert only_check(env.run(big)) == "size"
    at_limit = env.rec("AirTrack", b"\0" * MAX_VALUE_BYTES)
    assert only_check(env.run(at_limit)) == "schema"  # past the size check: framed zeros, schema id 0


@pytest.mark.parametrize("value", [None, b"", b"\0\0\0", b"\x01\0\0\0\x01rest", b"{\"json\": true}"])
def test_framing(env, value):
    assert only_check(env.run(env.rec("AirTrack", value))) == "framing"


def test_schema_ids_of_other_subjects_are_refused(env):
    rec = env.record("AirTrack")
    body = write(inbound_schema(env.policy, "AirTrack"), rec)
    internal = env.registry.versions[serde.value_subject(topic_for("AirTrack"))][0]
    usa = env.registry.versions[serde.value_subject(inbound_topic("USA", "AirTrack"))][0]
    other_type = env.ids["MaritimeTrack"]
    for sid in (internal, usa, other_type, 9999):
        result = env.run(env.rec("AirTrack", serde.frame(sid, body)))
        assert only_check(result) == "schema", sid
        assert f"not a version of {serde.value_subject(inbound_topic('RUS', 'AirTrack'))}" in \
            dict(result.quarantined[0].headers)["liaison.quarantine.reason"].decode()


def test_unknown_id_asks_the_registry_at_most_once_a_minute(env):
    clock = [0.0]
    env.schemas._clock = lambda: clock[0]
    asked = env.registry.asked
    for _ in range(5):
        env.run(env.rec("AirTrack", serde.frame(9999, b"\0")))
    assert env.registry.asked == asked + 1
    clock[0] = 61.0
    env.run(env.rec("AirTrack", serde.frame(9999, b"\0")))
    assert env.registry.asked == asked + 2


def test_avro(env):
    good = env.valid()
    truncated = env.rec("AirTrack", good.value[:-3])
    trailing = env.rec("AirTrack", good.value + b"\0")
    garbage = env.rec("AirTrack", serde.frame(env.ids["AirTrack"], b"\xff" * 40))
    for rec in (truncated, trailing, garbage):
        assert only_check(env.run(rec)) == "avro"
    assert "trailing" in dict(env.run(trailing).quarantined[0].headers)["liaison.quarantine.reason"].decode()


@pytest.mark.parametrize("label, why", [
    (None, "no security label"),
    ({"classification": "TOP_SECRET"}, "above the inbound ceiling SECRET"),
    ({"releasable_to": ["RUS", "USA"]}, "does not name FRA"),
    ({"message_id": ""}, "message_id is empty"),
    ({"message_id": "not-a-uuid"}, "not a UUID"),
    ({"caveats": ["ORIGIN USA"]}, "claims an origin"),
    ({"caveats": [f"C{i}" for i in range(16)]}, "room for the origin caveat"),
])
def test_label(env, label, why):
    rec = env.record("AirTrack")
    if label is None:
        rec["label"] = None
    else:
        rec["label"].update(label)
    result = env.run(env.rec("AirTrack", env.value("AirTrack", rec)))
    assert only_check(result) == "label"
    assert why in dict(result.quarantined[0].headers)["liaison.quarantine.reason"].decode()


def test_label_ceiling_comes_from_the_policy_inbound(policy):
    env = Env(policy, GuardConfig("RUS", Inbound(classification_ceiling="RESTRICTED")))
    assert only_check(env.run(env.valid(classification="CONFIDENTIAL"))) == "label"
    assert env.run(env.valid(classification="RESTRICTED")).stats.accepted == 1


@pytest.mark.parametrize("originator", ["usa.air", "fra", "air.jordan", "russia", "rus-air", "partner.rus", ""])
def test_originator(env, originator):
    result = env.run(env.valid(originator=originator))
    assert only_check(result) == "originator"
    reason = dict(result.quarantined[0].headers)["liaison.quarantine.reason"].decode()
    assert originator == "" or originator not in reason.replace("rus.<unit>", "")  # never the record's value


@pytest.mark.parametrize("type_name, change", [
    ("AirTrack", lambda r: r.update(altitude_ft=200_000)),
    ("AirTrack", lambda r: r.update(callsign=" ")),
    ("AirTrack", lambda r: r["position"].update(lat=91.0)),
    ("AirTrack", lambda r: r.update(speed_kt=float("nan"))),
    ("AirTrack", lambda r: r["label"].update(releasable_to=["FRA", "fr"])),
    ("LogisticsObservation", lambda r: r.update(time_bucket_end=r["time_bucket_start"])),
    ("ForeignFighterReport", lambda r: r["subject"].update(nationality=["france"])),
    ("AirMissionPlan", lambda r: r["time_windows"][0].update(end=r["time_windows"][0]["start"])),
    ("AirMissionPlan", lambda r: r["route"][0]["altitude_band"].update(floor_ft=40_000, ceiling_ft=100)),
])
def test_validation(env, type_name, change):
    rec = env.record(type_name)
    change(rec)
    result = env.run(env.rec(type_name, env.value(type_name, rec)))
    assert only_check(result) == "validation"
    assert dict(result.quarantined[0].headers)["liaison.quarantine.reason"].decode().startswith("invalid record")


@pytest.mark.parametrize("field, delta, why", [
    ("created_at", -timedelta(days=7, seconds=1), "older than max_age_s"),
    ("created_at", timedelta(seconds=301), "further ahead than max_future_s"),
    ("time", -timedelta(days=8), "older than max_age_s"),
    ("time", timedelta(hours=1), "further ahead than max_future_s"),
])
def test_time(env, field, delta, why):
    rec = env.record("AirTrack")
    if field == "created_at":
        rec["label"]["created_at"] = NOW_DT + delta
    else:
        rec["time"] = NOW_DT + delta
    result = env.run(env.rec("AirTrack", env.value("AirTrack", rec)))
    assert only_check(result) == "time"
    reason = dict(result.quarantined[0].headers)["liaison.quarantine.reason"].decode()
    assert why in reason and (field if field == "time" else "label.created_at") in reason


def test_time_window_edges_accepted(env):
    edge = [env.valid(created_at=NOW_DT - timedelta(days=7)), env.valid(created_at=NOW_DT + timedelta(seconds=300))]
    assert env.run(*edge).stats.accepted == 2


def test_time_uses_the_clock_passed_in(env):
    rec = env.valid()
    assert only_check(env.run(rec, now=NOW + 8 * 86_400_000)) == "time"


def test_replay_of_a_seen_id_and_within_a_batch(env):
    first = env.record("AirTrack")
    mid = first["label"]["message_id"]
    again = env.record("AirTrack", message_id=mid.upper())  # the same UUID written otherwise
    result = env.run(env.rec("AirTrack", env.value("AirTrack", first)),
                     env.rec("AirTrack", env.value("AirTrack", again), partition=1))
    assert result.stats.accepted == 1 and only_check(result) == "replay"
    assert "in this batch" in dict(result.quarantined[0].headers)["liaison.quarantine.reason"].decode()
    later = env.run(env.rec("AirTrack", env.value("AirTrack", first)), seen={mid})
    assert only_check(later) == "replay" and not later.origin and not later.seen


def test_replay_of_a_quarantined_id_is_judged_again(env):
    rec = env.record("AirTrack", classification="TOP_SECRET")
    assert only_check(env.run(env.rec("AirTrack", env.value("AirTrack", rec)))) == "label"
    rec["label"]["classification"] = "SECRET"
    assert env.run(env.rec("AirTrack", env.value("AirTrack", rec))).stats.accepted == 1  # only accepted ids are seen


def test_checks_run_in_order_first_failure_named(env):
    rec = env.record("AirTrack", originator="usa.air", created_at=NOW_DT - timedelta(days=30),
                     classification="TOP_SECRET")
    assert only_check(env.run(env.rec("AirTrack", env.value("AirTrack", rec)))) == "label"
    rec["label"]["classification"] = "SECRET"
    assert only_check(env.run(env.rec("AirTrack", env.value("AirTrack", rec)))) == "originator"
    rec["label"]["originator"] = "rus"
    rec["altitude_ft"] = -5000
    assert only_check(env.run(env.rec("AirTrack", env.value("AirTrack", rec)))) == "validation"
    rec["altitude_ft"] = 1000
    assert only_check(env.run(env.rec("AirTrack", env.value("AirTrack", rec)))) == "time"


# ---------------------------------------------------------------------------------------------- quarantine


def test_quarantine_keeps_the_original_key_value_headers(env):
    rec = env.rec("AirTrack", b"\x07garbage", partition=2, key=b"\x00raw-key", headers=[("a", b"1"), ("b", None)])
    result = env.run(rec)
    [q] = result.quarantined
    assert q.topic == quarantine_topic("RUS") and q.key == rec.key and q.value == rec.value
    assert q.headers[:2] == [("a", b"1"), ("b", None)]
    tail = dict(q.headers[2:])
    assert tuple(k for k, _ in q.headers[2:]) == QUARANTINE_HEADERS
    assert tail["liaison.quarantine.check"] == b"framing"
    assert tail["liaison.quarantine.source.topic"] == rec.topic.encode()
    assert tail["liaison.quarantine.source.partition"] == b"2"
    assert tail["liaison.quarantine.source.offset"] == str(rec.offset).encode()
    assert tail["liaison.quarantine.guard"] == GUARD.encode()
    [a] = [read_audit(o.value) for o in result.audits]
    assert a["decision"] == "QUARANTINE" and a["check"] == "framing" and a["message_id"] is None
    assert a["output_topic"] == q.topic and a["bytes"] == len(rec.value) and a["reason"].startswith("framing: ")
    assert not result.origin and not result.seen and not result.accepted_ids


def test_a_record_on_no_inbound_topic_of_the_partner_is_quarantined(env):
    rec = InRecord(inbound_topic("USA", "AirTrack"), 0, 5, None, env.valid().value)
    assert only_check(env.run(rec)) == "topic"


def test_poison_is_quarantined_with_its_stage(env):
    rec = env.valid()
    result = env.run(rec, poison={(rec.topic, 0, rec.offset): Poison("produce", "origin topic refused it")})
    assert only_check(result) == "produce" and not result.origin


def test_inbound_equals_accepted_plus_quarantined(env):
    recs = []
    for i, t in enumerate(EXCHANGED * 3):
        r = env.valid(t)
        if i % 3 == 1:
            r.value = r.value[:5] + b"\xff"
        recs.append(r)
    result = env.run(*recs)
    s = result.stats
    assert s.records == len(recs) == s.accepted + s.quarantined and s.quarantined == len(EXCHANGED)
    assert len(result.audits) == len(recs)
    assert len(result.origin) == len(result.seen) == s.accepted and len(result.quarantined) == s.quarantined
    for i in range(len(result.outputs)):  # every output names its input
        assert result.source_of(i)[0].startswith("liaison.inbound.rus.")


# ---------------------------------------------------------------------------------------------- registry away


def test_registry_away_pauses_the_partition_never_quarantines(env, policy):
    v2 = inbound_schema(policy, "AirTrack")
    v2 = {**v2, "fields": v2["fields"] + [{"name": "x", "type": "int", "default": 0}]}
    sid = env.registry.register(serde.value_subject(inbound_topic("RUS", "AirTrack")), v2)
    env.registry.down = True
    new_version = env.rec("AirTrack", serde.frame(sid, write(v2, {**env.record("AirTrack"), "x": 1})))
    after = env.valid()
    other = env.rec("AirTrack", env.value("AirTrack", env.record("AirTrack")), partition=1)
    result = env.run(new_version, after, other)
    tp = (new_version.topic, 0)
    assert tp in result.pauses and result.pauses[tp][0] == new_version.offset
    assert result.offsets[tp] == new_version.offset  # never committed past it
    assert result.stats.accepted == 1 and not result.quarantined  # partition 1 went on
    assert not env.schemas.available and "registry" in result.registry_error
    env.registry.down = False
    env.schemas._retry_at = 0
    assert env.run(new_version).stats.accepted == 1


# ---------------------------------------------------------------------------------------------- configuration


def test_checks_built_from_config_fail_at_start(env, policy):
    with pytest.raises(ValueError, match="unknown ingress check"):
        build_checks(GuardConfig("RUS", checks=CHECKS + ("sizes",)), env.schemas)
    with pytest.raises(ValueError, match="needs what"):
        build_checks(GuardConfig("RUS", checks=("framing", "avro", "schema", "label")), env.schemas)
    with pytest.raises(ValueError, match="must include"):
        build_checks(GuardConfig("RUS", checks=("size", "framing")), env.schemas)
    with pytest.raises(ValueError, match="twice"):
        build_checks(GuardConfig("RUS", checks=CHECKS + ("size",)), env.schemas)
    assert [c.name for c in build_checks(GuardConfig("RUS"), env.schemas)] == list(CHECKS)


def test_config_from_the_policy_inbound_or_its_defaults(policy):
    cfg = guard_config(policy)
    assert cfg.partner == "RUS" and cfg.checks == CHECKS and cfg.max_bytes == MAX_VALUE_BYTES
    assert cfg.inbound == (policy.spec.inbound or Inbound())

    class NoInbound:
        is_partner, partner, spec = True, "RUS", type("Spec", (), {"inbound": None})()

    assert guard_config(NoInbound()).inbound == Inbound()
    assert (Inbound().classification_ceiling, Inbound().max_future_s, Inbound().max_age_s) == \
        ("SECRET", 300, 7 * 86_400)


def test_missing_inbound_subject_fails_at_load():
    from consumers.ingress.registry import MissingSubject

    with pytest.raises(MissingSubject, match="liaison schemas register"):
        InboundSchemas(FakeRegistry()).load(["liaison.inbound.rus.air.track-value"])
    reg = FakeRegistry()
    reg.down = True
    with pytest.raises(RegistryUnavailable):
        InboundSchemas(reg).load(["liaison.inbound.rus.air.track-value"])

"""The forwarder while the schema registry is away, without servers: a registry double that can fail every way
(connection refused, timeout, 5xx, 401/403 from the gateway, 404 while not ready), the decoder's caches (in
memory and on disk), the pipeline's registry pauses, and the plans built at start and at reload (keys for new
partners, derived schemas checked against their subject's history, the cache while the registry is away)."""

from __future__ import annotations

import shutil
import stat

import httpx
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from consumers.shell.codec import DecodeError, InputDecoder, RegistryUnavailable
from consumers.forwarder.pipeline import InRecord, Pipeline
from consumers.forwarder.plans import IncompatibleSchema, PlanSource
from consumers.shell.schema_cache import SchemaCache
from core import serde
from core.topics import partner_topic, topic_for
from forwarder_support import FORWARDER, NOW, POLICIES, FakeRegistry, make_env, records_of, simulated
from schemas.examples import example

pytestmark = pytest.mark.unit

URL = "https://registry.test/apis/ccompat/v7"


class FlakyRegistry(FakeRegistry):
    """FakeRegistry whose answers can be replaced by a failure: ``down = exc`` raises it on every call,
    ``missing = {ids}`` answers 404 for those ids (a registry replaying its journal). Counts the calls."""

    def __init__(self, base: FakeRegistry | None = None):
        super().__init__()
        if base is not None:
            self.texts, self.subjects = base.texts, base.subjects
        self.down: Exception | None = None
        self.missing: set[int] = set()
        self.calls = 0
        self.compat_level: dict[str, str] = {}

    def _gate(self):
        self.calls += 1
        if self.down is not None:
            raise self.down

    def get_schema(self, schema_id: int):
        self._gate()
        if schema_id in self.missing:
            raise SchemaRegistryError(404, 40403, f"Schema {schema_id} not found")
        return super().get_schema(schema_id)

    # what PlanSource asks
    def set_compatibility(self, subject, level):
        self._gate()
        self.compat_level[subject] = level

    def register_schema(self, subject, schema, normalize_schemas=False):
        self._gate()
        return self.register(subject, schema.schema_str)

    def get_versions(self, subject):
        self._gate()
        versions = [sid for (s, _t), sid in self.subjects.items() if s == subject]
        if not versions:
            raise SchemaRegistryError(404, 40401, f"Subject '{subject}' not found")
        return list(range(1, len(versions) + 1))

    def get_version(self, subject, version):
        self._gate()
        texts = [t for (s, t), _sid in sorted(self.subjects.items(), key=lambda kv: kv[1]) if s == subject]

        class _R:
            class schema:
                schema_str = texts[version - 1]
        return _R

    def test_compatibility(self, subject, schema, version=None):
        return False


def refused():
    return httpx.ConnectError("[Errno 111] Connection refused")


TRANSIENT = {
    "connection refused": refused,
    "timeout": lambda: httpx.ReadTimeout("timed out"),
    "500": lambda: SchemaRegistryError(500, 50001, "internal error"),
    "502 from the gateway": lambda: SchemaRegistryError(502, 50201, "the schema registry behind the gateway is "
                                                                    "unreachable"),
    "401 from the gateway": lambda: SchemaRegistryError(401, 40101, "authentication required"),
    "403 from the gateway": lambda: SchemaRegistryError(403, 40301, "forbidden"),
}


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path / "secrets")


def air_record(env, offset=5, partition=0) -> InRecord:
    [rec] = records_of(env, [example("AirTrack")])
    return InRecord(rec.topic, partition, offset, rec.key, rec.value, rec.headers, rec.timestamp)


# ---------------------------------------------------------------------------------------------- decoder


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_a_lookup_the_registry_cannot_answer_is_unavailable_never_unknown(env, fault):
    reg = FlakyRegistry(env.registry)
    clock = [100.0]
    decoder = InputDecoder(reg, clock=lambda: clock[0])
    rec = air_record(env)
    reg.down = TRANSIENT[fault]()
    with pytest.raises(RegistryUnavailable) as info:
        decoder.decode(rec.topic, rec.value)
    assert not isinstance(info.value, DecodeError) and info.value.retry_ms == 500
    assert not decoder.available and decoder.last_error
    # within the backoff: refused at once, without asking; the next failure doubles the wait
    calls = reg.calls
    with pytest.raises(RegistryUnavailable):
        decoder.decode(rec.topic, rec.value)
    assert reg.calls == calls
    clock[0] += 0.6
    with pytest.raises(RegistryUnavailable) as again:
        decoder.decode(rec.topic, rec.value)
    assert again.value.retry_ms == 1000
    # the registry is back: the same record decodes (no cached "unknown")
    reg.down = None
    clock[0] += 1.1
    assert decoder.decode(rec.topic, rec.value) == ("AirTrack", env.decoded(rec))
    assert decoder.available and decoder.last_error is None


def test_the_backoff_is_capped_at_30_seconds(env):
    reg = FlakyRegistry(env.registry)
    clock = [0.0]
    decoder = InputDecoder(reg, clock=lambda: clock[0])
    rec = air_record(env)
    reg.down = refused()
    waits = []
    for _ in range(10):
        with pytest.raises(RegistryUnavailable) as info:
            decoder.decode(rec.topic, rec.value)
        waits.append(info.value.retry_ms)
        clock[0] += info.value.retry_ms / 1000
    assert waits[:7] == [500, 1000, 2000, 4000, 8000, 16000, 30000] and set(waits[6:]) == {30000}


def test_a_404_is_unknown_only_when_the_registry_answers_for_an_id_it_holds(env):
    reg = FlakyRegistry(env.registry)
    decoder = InputDecoder(reg)
    decoder.known_ids = {env.audit.schema_id}
    pill = serde.frame(987654, b"\x02")
    # ready registry: the known id answers, so 987654 is definitely unknown
    with pytest.raises(DecodeError) as info:
        decoder.decode(topic_for("AirTrack"), pill)
    assert info.value.stage == "schema" and "987654" in str(info.value)
    # a registry replaying its journal answers 404 for every id, the known one too: not ready
    decoder = InputDecoder(reg)
    decoder.known_ids = {env.audit.schema_id}
    rec = air_record(env)
    reg.missing = {serde.unframe(rec.value)[0], env.audit.schema_id}
    with pytest.raises(RegistryUnavailable) as info:
        decoder.decode(rec.topic, rec.value)
    assert "not ready" in str(info.value)
    reg.missing = set()
    decoder._retry_at = 0
    assert decoder.decode(rec.topic, rec.value)[0] == "AirTrack"


def test_writer_schemas_kept_on_disk_decode_while_the_registry_is_away(env, tmp_path):
    path = tmp_path / "cache" / "unit.json"
    rec = air_record(env)
    first = InputDecoder(FlakyRegistry(env.registry), cache=SchemaCache(path, URL))
    assert first.decode(rec.topic, rec.value)[0] == "AirTrack"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    down = FlakyRegistry(env.registry)
    down.down = refused()
    second = InputDecoder(down, cache=SchemaCache(path, URL))
    assert second.decode(rec.topic, rec.value)[0] == "AirTrack" and down.calls == 0
    # a cache of another registry is not used (its ids mean other schemas)
    other = InputDecoder(down, cache=SchemaCache(path, "https://elsewhere/apis/ccompat/v7"))
    with pytest.raises(RegistryUnavailable):
        other.decode(rec.topic, rec.value)


def test_ids_cached_on_disk_are_checked_once_the_registry_answers(env, tmp_path):
    path = tmp_path / "unit.json"
    cache = SchemaCache(path, URL)
    rec = air_record(env)
    sid = serde.unframe(rec.value)[0]
    cache.schema_learnt(sid, env.registry.texts[sid])
    cache.schema_learnt(4242, schemas.schema_str("MaritimeTrack"))  # an id the (wiped) registry no longer holds
    reg = FlakyRegistry(env.registry)
    decoder = InputDecoder(reg, cache=SchemaCache(path, URL))
    decoder.known_ids = {sid}
    decoder.verify()
    assert 4242 not in SchemaCache(path, URL).schemas and sid in SchemaCache(path, URL).schemas
    assert decoder.decode(rec.topic, rec.value)[0] == "AirTrack"


# ---------------------------------------------------------------------------------------------- pipeline


def test_registry_unavailable_pauses_the_partition_and_is_never_a_dead_letter(env):
    reg = FlakyRegistry(env.registry)
    clock = [0.0]
    decoder = InputDecoder(reg, clock=lambda: clock[0])
    pipeline = Pipeline(decoder, env.audit, env.plans, FORWARDER)
    recs = records_of(env, simulated(2.0, seed=9), partitions=3)
    tracks = [r for r in recs if r.topic == topic_for("AirTrack")]
    # AirTrack's writer schema is cached; every other type is not and the registry is down
    decoder.decode(tracks[0].topic, tracks[0].value)
    reg.down = refused()
    result = pipeline.process(recs, NOW)
    assert result.dead_letters == [] and result.stats.dead_lettered == 0
    stopped = {(r.topic, r.partition) for r in recs if r.topic != topic_for("AirTrack")}
    assert set(result.pauses) == stopped == set(result.registry_paused) and not result.hold_paused
    for tp, (offset, at) in result.pauses.items():
        first = min(r.offset for r in recs if (r.topic, r.partition) == tp)
        assert offset == first and result.offsets[tp] == first  # never committed past it
        assert at == NOW + 500
    assert result.registry_error and "Connection refused" in result.registry_error
    assert result.stats.records == len(tracks)
    assert {o.topic for o in result.views} <= {partner_topic(c, topic_for("AirTrack")) for c in env.plans}
    # the registry is back: the paused records decode and are decided as usual, none dead-lettered
    reg.down = None
    clock[0] += 1
    again = Pipeline(decoder, env.audit, env.plans, FORWARDER).process(
        [r for r in recs if (r.topic, r.partition) in stopped], NOW)
    assert again.pauses == {} and again.dead_letters == []
    assert again.stats.records == len(recs) - len(tracks)


def test_an_id_the_registry_does_not_hold_is_dead_lettered(env):
    pipeline = Pipeline(InputDecoder(FlakyRegistry(env.registry)), env.audit, env.plans, FORWARDER)
    pill = InRecord(topic_for("AirTrack"), 1, 10, b"k", serde.frame(987654, b"\x02"), [("origin", b"test")])
    result = pipeline.process([pill], NOW)
    [dead] = result.dead_letters
    assert dict(dead.headers)["liaison.dlq.stage"] == b"schema" and result.pauses == {}
    assert result.offsets == {(pill.topic, 1): 11} and result.stats.stages == {"schema": 1}


# ---------------------------------------------------------------------------------------------- plans


def source(env, tmp_path, policies=POLICIES, reg=None, cache=None) -> PlanSource:
    reg = reg or FlakyRegistry(env.registry)
    return PlanSource(reg, policies, env.secrets, cache or SchemaCache(tmp_path / "c.json", URL))


GBR = """partner: GBR
classification_ceiling: SECRET
require_releasable_to: false
label: {classification: keep, created_at: keep, message_id: keep}
rules:
  AirTrack:
    - id: gbr-air-track
      acknowledge: {linkable: "air deconfliction safety data, released exactly to every partner by agreement"}
      fields: {track_id: keep, callsign: keep, time: keep, position: keep, altitude_ft: keep}
"""


def test_a_reload_builds_plans_as_the_start_does_a_new_partner_gets_its_key_and_schemas(env, tmp_path):
    pol = tmp_path / "policies"
    shutil.copytree(POLICIES, pol)
    src = source(env, tmp_path, pol)
    assert set(src.build()) == {"RUS", "USA", "air", "intel", "naval"}
    assert env.secrets.get("GBR") is None
    (pol / "GBR.yaml").write_text(GBR)
    plans = src.build()  # the reload
    assert set(plans) == {"GBR", "RUS", "USA", "air", "intel", "naval"} and env.secrets.get("GBR") is not None
    subject = serde.value_subject(partner_topic("GBR", topic_for("AirTrack")))
    assert plans["GBR"].encoders["AirTrack"].schema_id == src.cache.registered_id(
        subject, plans["GBR"].policy.derived_schema("AirTrack"))
    assert src.client.compat_level[subject] == "BACKWARD_TRANSITIVE"


def test_an_incompatible_derived_schema_is_refused_naming_subject_version_and_field(env, tmp_path):
    pol = tmp_path / "policies"
    shutil.copytree(POLICIES, pol)
    text = (pol / "USA.yaml").read_text()
    assert "nullable: [affiliation, last_known_area, travel_indicators]" in text
    (pol / "USA.yaml").write_text(text.replace("nullable: [affiliation, last_known_area, travel_indicators]",
                                               "nullable: [last_known_area, travel_indicators]"))
    with pytest.raises(IncompatibleSchema) as info:
        source(env, tmp_path, pol).build()
    msg = str(info.value)
    assert msg.startswith("derived schema for liaison.partner.usa.intel.foreign-fighter-value is incompatible with "
                          "registered version 1: field 'affiliation'"), msg


def test_with_the_registry_away_plans_come_from_the_cache_or_the_start_says_what_is_missing(env, tmp_path):
    cache = SchemaCache(tmp_path / "c.json", URL)
    first = source(env, tmp_path, cache=cache)
    ids = {c: {t: e.schema_id for t, e in p.encoders.items()} for c, p in first.build().items()}
    audit_id = first.audit_encoder().schema_id
    down = FlakyRegistry(env.registry)
    down.down = refused()
    again = source(env, tmp_path, reg=down, cache=SchemaCache(tmp_path / "c.json", URL))
    assert {c: {t: e.schema_id for t, e in p.encoders.items()} for c, p in again.build().items()} == ids
    assert again.audit_encoder().schema_id == audit_id
    # a partner never registered by this instance cannot be served from the cache
    pol = tmp_path / "policies"
    shutil.copytree(POLICIES, pol)
    (pol / "GBR.yaml").write_text(GBR)
    with pytest.raises(RegistryUnavailable) as info:
        source(env, tmp_path, pol, reg=down, cache=SchemaCache(tmp_path / "c.json", URL)).build()
    assert "liaison.partner.gbr.air.track-value" in str(info.value) and "never registered" in str(info.value)

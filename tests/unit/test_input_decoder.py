"""InputDecoder without a registry server: an in-memory registry (id -> schema text) behind the client's
``get_schema``; every error class with its stage, a good decode of every type, and the caches."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from consumers.shell import codec
from consumers.shell.codec import DecodeError, InputDecoder, audit_schema
from core import serde
from core.topics import topic_for
from release import PARTNER_NAMESPACE_PREFIX
from schemas.examples import example
from schemas.models import from_avro, to_avro

pytestmark = pytest.mark.unit


class FakeRegistry:
    """What InputDecoder asks of a registry client: ``get_schema(id).schema_str``, SchemaRegistryError if
    the id is unknown. Counts the lookups."""

    class _Schema:
        def __init__(self, text: str):
            self.schema_str = text

    def __init__(self):
        self.texts: dict[int, str] = {}
        self.lookups: list[int] = []

    def add(self, text: str | dict) -> int:
        schema_id = 100 + len(self.texts)
        self.texts[schema_id] = text if isinstance(text, str) else json.dumps(text)
        return schema_id

    def get_schema(self, schema_id: int):
        self.lookups.append(schema_id)
        if schema_id not in self.texts:
            raise SchemaRegistryError(404, 40403, f"Schema {schema_id} not found")
        return self._Schema(self.texts[schema_id])


@pytest.fixture
def registry():
    reg = FakeRegistry()
    reg.ids = {t: reg.add(schemas.schema_str(t)) for t in schemas.MESSAGE_TYPES}
    return reg


def framed(registry, type_name: str, record: dict | None = None) -> bytes:
    record = record if record is not None else to_avro(example(type_name))
    return serde.Encoder(registry.ids[type_name], schemas.load_schema(type_name)).encode(record)


def body(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def failure(decoder, topic: str, value) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decoder.decode(topic, value)
    return info.value


# ---------------------------------------------------------------------------------------------- good


@pytest.mark.parametrize("type_name", schemas.MESSAGE_TYPES)
def test_a_good_record_of_every_type_decodes_to_its_model(registry, type_name):
    type_got, record = InputDecoder(registry).decode(topic_for(type_name), framed(registry, type_name))
    assert type_got == type_name
    assert from_avro(type_name, record) == example(type_name)


def test_a_compacted_copy_of_our_schema_decodes_with_the_writer_alone(registry):
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "doc"}
        return [strip(v) for v in x] if isinstance(x, list) else x

    compact = registry.add(json.dumps(strip(schemas.load_schema("AirTrack")), separators=(",", ":")))
    record = to_avro(example("AirTrack"))
    value = serde.frame(compact, body(schemas.load_schema("AirTrack"), record))
    decoder = InputDecoder(registry)
    type_name, got = decoder.decode(topic_for("AirTrack"), value)
    assert type_name == "AirTrack" and from_avro(type_name, got) == example("AirTrack")
    assert decoder._by_id[compact][2] is None  # same shape: no writer -> reader resolution


def test_another_writer_schema_is_resolved_to_our_reader_schema(registry):
    writer = schemas.load_schema("AirTrack")
    writer["fields"].append({"name": "extra", "type": ["null", "string"], "default": None})
    wid = registry.add(writer)
    record = to_avro(example("AirTrack"))
    value = serde.frame(wid, body(writer, {**record, "extra": "not ours"}))
    type_name, got = InputDecoder(registry).decode(topic_for("AirTrack"), value)
    assert type_name == "AirTrack" and "extra" not in got
    assert from_avro(type_name, got) == example("AirTrack")


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("value, words", [
    (None, "null (tombstone)"),
    (b"", "0 bytes"),
    (b"\x00\x00\x00\x01", "4 bytes, fewer than the 5-byte"),
    (b"\x07" + bytes(20), "magic byte is 0x07"),
])
def test_framing_errors(registry, value, words):
    e = failure(InputDecoder(registry), topic_for("AirTrack"), value)
    assert e.stage == "framing" and words in str(e)
    assert registry.lookups == []


def test_an_unknown_schema_id(registry):
    e = failure(InputDecoder(registry), topic_for("AirTrack"), serde.frame(987654, b"\x02\x04abc"))
    assert e.stage == "schema"
    assert str(e) == "schema id 987654 unknown to the registry (404)"


@pytest.mark.parametrize("what", ["audit", "partner view", "not a record"])
def test_a_schema_id_that_is_not_a_liaison_message_type(registry, what):
    if what == "audit":
        sid, name = registry.add(audit_schema()), "DecisionAudit"
    elif what == "partner view":  # our type name under a partner's namespace
        view = schemas.load_schema("AirTrack")
        view["namespace"] = f"{PARTNER_NAMESPACE_PREFIX}.rus"
        sid, name = registry.add(view), "AirTrack"
    else:
        sid, name = registry.add('"string"'), "not a record"
    e = failure(InputDecoder(registry), topic_for("AirTrack"), serde.frame(sid, b"\x00"))
    assert e.stage == "schema"
    assert str(e) == f"schema id {sid} is {name}, not a liaison message type"


def test_a_type_on_the_wrong_topic(registry):
    e = failure(InputDecoder(registry), topic_for("MaritimeTrack"), framed(registry, "AirTrack"))
    assert e.stage == "schema"
    assert str(e) == f"AirTrack record on {topic_for('MaritimeTrack')}, which carries MaritimeTrack"


def test_a_corrupt_avro_body(registry):
    sid = registry.ids["AirTrack"]
    for value in (serde.frame(sid, b"\x02"), framed(registry, "AirTrack")[:-7]):
        e = failure(InputDecoder(registry), topic_for("AirTrack"), value)
        assert e.stage == "avro"
        assert str(e).startswith(f"Avro body does not decode with schema id {sid} (")


def test_trailing_bytes_after_the_record(registry):
    e = failure(InputDecoder(registry), topic_for("AirTrack"), framed(registry, "AirTrack") + b"\x00\x01")
    assert e.stage == "avro"
    assert str(e) == f"2 trailing byte(s) after the Avro record (schema id {registry.ids['AirTrack']})"


def test_a_record_that_fails_validation_unless_validation_is_off(registry):
    value = framed(registry, "AirTrack", {**to_avro(example("AirTrack")), "altitude_ft": 200_000})
    e = failure(InputDecoder(registry), topic_for("AirTrack"), value)
    assert e.stage == "validation"
    assert str(e).startswith("invalid record: altitude_ft: ")
    assert InputDecoder(registry, validate=False).decode(topic_for("AirTrack"), value)[1]["altitude_ft"] == 200_000


# ---------------------------------------------------------------------------------------------- caches


def test_a_known_id_is_fetched_once(registry):
    decoder = InputDecoder(registry)
    for _ in range(3):
        decoder.decode(topic_for("AirTrack"), framed(registry, "AirTrack"))
    assert registry.lookups == [registry.ids["AirTrack"]]


def test_unknown_and_foreign_ids_are_remembered_for_a_while(registry, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(codec.time, "monotonic", lambda: clock[0])
    foreign = registry.add(audit_schema())
    decoder = InputDecoder(registry)
    for sid in (424242, foreign):
        first = failure(decoder, topic_for("AirTrack"), serde.frame(sid, b"\x00"))
        clock[0] += InputDecoder.NEGATIVE_TTL - 1
        again = failure(decoder, topic_for("AirTrack"), serde.frame(sid, b"\x00"))
        assert (again.stage, str(again)) == (first.stage, str(first))
        assert registry.lookups.count(sid) == 1  # the second poison pill did not reach the registry
        clock[0] += 2  # past the TTL: asked again
        failure(decoder, topic_for("AirTrack"), serde.frame(sid, b"\x00"))
        assert registry.lookups.count(sid) == 2


def test_an_id_unknown_at_first_is_used_once_registered_after_the_ttl(registry, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(codec.time, "monotonic", lambda: clock[0])
    decoder = InputDecoder(registry)
    late = 100 + len(registry.texts)
    value = serde.frame(late, body(schemas.load_schema("AirTrack"), to_avro(example("AirTrack"))))
    assert failure(decoder, topic_for("AirTrack"), value).stage == "schema"
    assert registry.add(schemas.schema_str("AirTrack")) == late
    assert failure(decoder, topic_for("AirTrack"), value).stage == "schema"  # still remembered as unknown
    clock[0] += InputDecoder.NEGATIVE_TTL + 1
    assert decoder.decode(topic_for("AirTrack"), value)[0] == "AirTrack"

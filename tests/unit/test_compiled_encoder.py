"""The typed producer's compiled encoder (compiled/src/objects.rs, ``core.serde.Encoder.encode_model``) against the
reference, fastavro's ``schemaless_writer`` on ``schemas.models.to_avro``: the same framed bytes for every model of
the simulator and every example, and, with edge values planted by hypothesis at every leaf (unicode and huge
strings, ints and longs at their bounds, times at the ends of what Python holds, in other time zones, before 1970
with microseconds, dates, NaN and infinities, each enum symbol, nulls, empty and long lists), the same bytes from the
model's attributes and from its dict, or a refusal by both."""

from __future__ import annotations

import datetime
import io
import json
import math
import uuid

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel

import liaison_compiled as lc
import schemas
from core import serde
from producers.simulate import sample
from schemas.examples import examples
from schemas.models import MODELS, model_name, to_avro
from tests.unit.compiled_support import named_types

pytestmark = pytest.mark.unit

TYPES = schemas.MESSAGE_TYPES
SID = 4242
ENCODERS = {t: serde.Encoder(SID, schemas.load_schema(t)) for t in TYPES}
COMPILED = {t: lc.ModelEncoder(schemas.schema_str(t), SID) for t in TYPES}
UTC = datetime.timezone.utc


def reference(name: str, record: dict) -> bytes:
    return ENCODERS[name].encode(record)


def test_every_simulated_model_and_example_encodes_to_fastavros_bytes():
    models = sample(20_000, seed=5, rate=2000.0) + list(examples().values())
    seen = set()
    for m in models:
        name = model_name(m)
        seen.add(name)
        want = reference(name, to_avro(m))
        assert ENCODERS[name].encode_model(m) == want, name
        assert COMPILED[name].encode(to_avro(m)) == want, name
    assert seen == set(TYPES)


# ------------------------------------------------------------------------------------------ edge values

EDGE_STR = ["", " ", "é", "\u3000", "\U0001F6E9" * 3, "a" * 100_000, "\x00", "naïve—ünïcode", "\ud7ff"]
EDGE_INT = [-2**31, -1, 0, 1, 2**31 - 1]
EDGE_LONG = [-2**63, -1, 0, 2**63 - 1, 1_800_000_000_000]
EDGE_DOUBLE = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -90.0, 180.0, 0.1]
EDGE_TIME = [datetime.datetime(1, 1, 1, tzinfo=UTC), datetime.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
             datetime.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
             datetime.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC), datetime.datetime(1970, 1, 1, tzinfo=UTC),
             datetime.datetime(2026, 12, 2, 4, 5, 6, 789_999, tzinfo=datetime.timezone(datetime.timedelta(hours=14))),
             datetime.datetime(2026, 12, 2, 4, 5, 6, 1_000, tzinfo=datetime.timezone(-datetime.timedelta(hours=9,
                                                                                                          minutes=30))),
             0, -1, 1_800_000_000_123]
EDGE_DATE = [datetime.date(1, 1, 1), datetime.date(9999, 12, 31), datetime.date(1969, 12, 31),
             datetime.date(1970, 1, 1), datetime.datetime(2000, 2, 29, 23, 0, tzinfo=UTC), 0, -719_162]


def _plant(value, t, draw, named, logical=None):
    """``value`` (as to_avro has it) of Avro type ``t`` with edge values planted; ``draw(options)`` picks one."""
    if isinstance(t, list):
        other = next(b for b in t if b != "null")
        if value is None:
            return None if draw([True, True, False]) else _fresh(other, draw, named)
        return None if draw(range(6)) == 0 else _plant(value, other, draw, named)
    if isinstance(t, str):
        if t in named:
            return _plant(value, named[t], draw, named)
        if draw(range(3)):
            return value
        if t == "string":
            return str(uuid.UUID(int=draw([0, 2**128 - 1, 12345]))) if logical == "uuid" else draw(EDGE_STR)
        if t in ("double", "float"):
            return draw(EDGE_DOUBLE)
        if t == "int":
            return draw(EDGE_DATE) if logical == "date" else draw(EDGE_INT)
        if t == "long":
            return draw(EDGE_TIME) if logical == "timestamp-millis" else draw(EDGE_LONG)
        if t == "boolean":
            return draw([True, False])
        return value
    kind = t["type"]
    if isinstance(kind, (dict, list)):
        return _plant(value, kind, draw, named)
    if kind == "record":
        return {f["name"]: _plant(value[f["name"]], f["type"], draw, named) for f in t["fields"]}
    if kind == "enum":
        return draw(t["symbols"])
    if kind == "array":
        items = [_plant(v, t["items"], draw, named) for v in value]
        return draw([items, [], items * 50]) if items else items
    if kind == "map":
        return {k: _plant(v, t["values"], draw, named) for k, v in value.items()}
    return _plant(value, kind, draw, named, t.get("logicalType"))


def _fresh(t, draw, named):
    """A value for a union branch the base record left null."""
    if isinstance(t, str):
        t = named.get(t, t)
    if isinstance(t, str):
        return {"string": "x", "int": 1, "long": 2, "double": 0.5, "boolean": True}.get(t)
    kind = t["type"]
    if kind == "enum":
        return draw(t["symbols"])
    if kind == "record":
        return {f["name"]: _fresh(f["type"], draw, named) if not isinstance(f["type"], list) else None
                for f in t["fields"]}
    if kind == "array":
        return []
    if t.get("logicalType") == "timestamp-millis":
        return draw(EDGE_TIME)
    if t.get("logicalType") == "date":
        return draw(EDGE_DATE)
    return _fresh(kind, draw, named)


BASES = {}
for _m in sample(3_000, seed=9, rate=2000.0) + list(examples().values()):
    BASES.setdefault(model_name(_m), []).append(to_avro(_m))
SCHEMAS = {t: schemas.load_schema(t) for t in TYPES}
NAMED = {t: named_types(SCHEMAS[t]) for t in TYPES}


@settings(max_examples=3_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(TYPES), st.data())
def test_edge_values_give_the_same_bytes_or_a_refusal_from_both(name, data):
    base = data.draw(st.sampled_from(BASES[name]))
    record = _plant(base, SCHEMAS[name], lambda opts: data.draw(st.sampled_from(list(opts))), NAMED[name])
    try:
        want = reference(name, record)
    except Exception:  # noqa: BLE001 - fastavro refuses it (a value out of its type's range)
        want = None
    as_model = MODELS[name].model_construct(**record)  # attributes as planted, nested records as dicts
    for obj in (record, as_model):
        if want is None:
            with pytest.raises(Exception):  # noqa: B017 - the compiled encoder refuses it too
                COMPILED[name].encode(obj)
        else:
            assert COMPILED[name].encode(obj) == want, (name, record)


# ------------------------------------------------------------------------------------------ what it refuses


def test_a_naive_time_and_a_wrong_symbol_are_refused():
    record = to_avro(examples()["AirTrack"])
    with pytest.raises(ValueError, match="naive"):
        COMPILED["AirTrack"].encode({**record, "time": datetime.datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match="not a symbol"):
        COMPILED["AirTrack"].encode({**record, "label": {**record["label"], "classification": "NO_SUCH_LEVEL"}})


def test_a_schema_the_core_does_not_take_is_written_by_fastavro():
    schema = {"type": "record", "name": "Odd", "fields": [{"name": "v", "type": ["string", "long"]}]}
    with pytest.raises(ValueError, match="unions"):
        lc.ModelEncoder(json.dumps(schema), 1)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), {"v": 7})

    class Odd(BaseModel):
        v: int | str

    assert serde.Encoder(1, schema).encode_model(Odd(v=7)) == serde.frame(1, buf.getvalue())


class _LoudUUID(uuid.UUID):
    """A subclass that redefines its text: the core must ask it (str()), as fastavro does, not format its int."""

    def __str__(self) -> str:
        return "loud-" + super().__str__()


@pytest.mark.parametrize("value", [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=0xA1B2),
                                   uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"), uuid.uuid4(),
                                   _LoudUUID(int=12345)])
def test_a_uuid_object_is_written_as_its_text(value):
    for name, model in examples().items():
        m = model.model_copy(deep=True)
        m.label.message_id = value
        record = to_avro(m)
        assert record["label"]["message_id"] == str(value)
        assert ENCODERS[name].encode_model(m) == reference(name, record), (name, str(value))

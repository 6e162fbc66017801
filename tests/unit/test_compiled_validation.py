"""The compiled validation (compiled/src/validate.rs, rules from schemas/models/rules.py) against the reference:
a record passes the compiled check exactly when fastavro reads it and ``schemas.models.from_avro`` accepts it.
Records: the simulator's (valid), and the same with edge values planted by hypothesis at every kind of leaf:
blank strings (every character Python's strip removes), lengths at and past each bound, codes that break their
patterns, uuids in every form, numbers at and past their bounds, NaN and infinities, times and dates at the ends of
what Python holds, lists at and past their lengths, and the model validators' cases (start after end, floor above
ceiling, a birth date tomorrow, alert lifecycles)."""

from __future__ import annotations

import datetime
import io
import json
import math

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import liaison_compiled as lc
import schemas
from consumers.ingress.registry import plain_uuids
from schemas.models import from_avro, to_avro
from schemas.models.rules import UnknownRule, python_whitespace, validation_rules
from tests.unit.compiled_support import raw_schema
from tests.unit.forwarder_support import simulated

pytestmark = pytest.mark.unit

TYPES = schemas.MESSAGE_TYPES
VALIDATORS = {t: lc.Validator(schemas.schema_str(t), json.dumps(validation_rules(t))) for t in TYPES}
READERS = {t: fastavro.parse_schema(plain_uuids(schemas.load_schema(t))) for t in TYPES}
TODAY = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.date(1970, 1, 1)).days
U = "12345678-1234-5678-1234-567812345678"


WRITERS = {t: fastavro.parse_schema(raw_schema(schemas.load_schema(t))) for t in TYPES}


def reference_valid(name: str, data: bytes) -> bool:
    try:
        record = fastavro.schemaless_reader(io.BytesIO(data), READERS[name], None)
    except Exception:  # noqa: BLE001 - a time or a date Python cannot hold
        return False
    try:
        from_avro(name, record)
    except ValueError:
        return False
    return True


def same(name: str, record: dict) -> bool:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, WRITERS[name], record)
    data = buf.getvalue()
    want = reference_valid(name, data)
    assert VALIDATORS[name].valid(data) == want, (name, record)
    return want


def test_every_model_exports_its_rules_and_an_unknown_validator_is_refused(monkeypatch):
    for t in TYPES:
        assert validation_rules(t)["record"]["fields"]
    from schemas.models import rules

    monkeypatch.setattr(rules, "_MODEL_CHECKS", {})
    with pytest.raises(UnknownRule, match="model validator"):
        validation_rules("AirMissionPlan")


def test_whitespace_is_pythons():
    ws = python_whitespace()
    assert "\x1c" in ws and "\u3000" in ws and " " in ws and "\u200b" not in ws


def _raw_record(model) -> dict:
    """A simulator record as raw Avro values (millis, days, uuid text)."""
    name = type(model).__name__
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.parsed_schema(name), to_avro(model))
    return fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), WRITERS[name], None)


BASES: dict[str, list] = {}
for _m in simulated(20.0, seed=77):
    BASES.setdefault(type(_m).__name__, []).append(_raw_record(_m))


def test_the_simulators_records_pass_both():
    n = 0
    for name, recs in BASES.items():
        for rec in recs:
            assert same(name, rec), name
            n += 1
    assert n > 3000 and set(BASES) >= set(TYPES) - {"DeconflictionAlert"}


EDGE_STR = ["", " ", "\x1c", "\u3000", "\u200b", " \t\n", "x", "a" * 64, "a" * 65, "a" * 128,
                            "a" * 129, "a" * 256, "a" * 257, "a" * 4096, "a" * 4097, "é" * 129, "FRA", "fra", "FR",
                            "FRAN", "RUS", "ru", "RU", "r", "daesh", "Daesh", "a--b", "a-b", "-a", "naval.cvn-group",
                            "Naval", "naval..x", U, U.upper(), U.replace("-", ""), "{" + U + "}", "urn:uuid:" + U,
                            U[:-1], " " + U, "\U0001F6E9"]
EDGE_INT = [-2**31, -1501, -1500, -1, 0, 1, 99_999, 100_000, 100_001, 2**31 - 1]
EDGE_LONG = [-62_135_596_800_001, -62_135_596_800_000, 253_402_300_799_999, 253_402_300_800_000, 0,
             1_800_000_000_000, -1]
EDGE_DATE = [-719_163, -719_162, 2_932_896, 2_932_897, 0, TODAY, TODAY + 1, TODAY - 1]
EDGE_DOUBLE = [math.nan, math.inf, -math.inf, -90.0, 90.0, 90.0000001, -90.0000001, 180.0, -180.0, 180.00001,
               359.999, 360.0, -0.0, 0.0, 1.0, 1.0000001, -1e-9, 1e300]


def _mutate(value, t, pick, named, logical=None):
    """``value`` of type ``t`` with edge values planted; ``pick(options)`` chooses one of a list."""
    if isinstance(t, list):
        if value is None:
            return None
        if pick(range(10)) == 0 and "null" in t:
            return None
        return _mutate(value, next(b for b in t if b != "null"), pick, named)
    if isinstance(t, str):
        if t in named:
            return _mutate(value, named[t], pick, named)
        if pick(range(4)):
            return value
        if t == "string":
            return pick(EDGE_STR)
        if t == "double" or t == "float":
            return pick(EDGE_DOUBLE)
        if t == "int":
            return pick(EDGE_DATE) if logical == "date" else pick(EDGE_INT)
        if t == "long":
            return pick(EDGE_LONG) if logical in ("timestamp-millis",) else pick(EDGE_INT)
        return value
    kind = t["type"]
    if isinstance(kind, (dict, list)):
        return _mutate(value, kind, pick, named)
    if kind == "record":
        named[t["name"]] = t
        if "namespace" in t:
            named[f"{t['namespace']}.{t['name']}"] = t
        return {f["name"]: _mutate(value[f["name"]], f["type"], pick, named) for f in t["fields"]}
    if kind == "enum":
        named[t["name"]] = t
        if "namespace" in t:
            named[f"{t['namespace']}.{t['name']}"] = t
        return pick(t["symbols"]) if not pick(range(3)) else value
    if kind == "array":
        items = [_mutate(v, t["items"], pick, named) for v in value]
        how = pick(range(8))
        if how == 0:
            return []
        if how == 1 and items:
            return (items * 70)[:pick([8, 9, 16, 17, 32, 33, 64, 65])]
        return items
    return _mutate(value, kind, pick, named, t.get("logicalType"))


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_edge_records_pass_the_compiled_check_exactly_when_they_pass_the_models(data):
    name = data.draw(st.sampled_from(sorted(BASES)))
    base = data.draw(st.sampled_from(BASES[name]))
    pick = lambda options: data.draw(st.sampled_from(options))  # noqa: E731
    same(name, _mutate(base, raw_schema(schemas.load_schema(name)), pick, {}))


def test_both_verdicts_are_reached_for_every_type():
    """The generated records are not all valid nor all invalid (else the comparison would say little)."""
    import random

    rnd = random.Random(4)
    verdicts: dict[str, set] = {}
    for name, recs in sorted(BASES.items()):
        for rec in recs[:60]:
            rate = rnd.choice([0.9, 0.98, 0.995])   # how often a leaf is left as it is

            def pick(options, rate=rate):
                return 1 if isinstance(options, range) and rnd.random() < rate else rnd.choice(list(options))

            mutated = _mutate(rec, raw_schema(schemas.load_schema(name)), pick, {})
            verdicts.setdefault(name, set()).add(same(name, mutated))
    assert all(v == {True, False} for v in verdicts.values()), verdicts


def test_alert_lifecycle_and_dates_of_birth():
    """The model validators the compiled core runs by name, each way."""
    from schemas.examples import example

    alert = _raw_record(example("DeconflictionAlert"))
    for status, revision, cleared, nation, ok in (("NEW", 0, None, alert["partner"], True),
                                                  ("NEW", 1, None, alert["partner"], False),
                                                  ("UPDATED", 0, None, alert["partner"], False),
                                                  ("CLEARED", 2, "PASSED", alert["partner"], True),
                                                  ("UPDATED", 2, "PASSED", alert["partner"], False),
                                                  ("NEW", 0, None, "ZZZ", False)):
        rec = {**alert, "status": status, "revision": revision, "cleared_reason": cleared,
               "theirs": {**alert["theirs"], "nation": nation}}
        assert same("DeconflictionAlert", rec) == ok, (status, revision, cleared, nation)
    fighter = _raw_record(example("ForeignFighterReport"))
    subject = fighter["subject"]
    for dob, ok in ((TODAY, True), (TODAY + 1, False), (None, True), (-719_162, True)):
        assert same("ForeignFighterReport", {**fighter, "subject": {**subject, "date_of_birth": dob}}) == ok, dob

"""Avro schemas (schemas/*.avsc) and the typed models (schemas.models) agree and behave."""

from __future__ import annotations

import copy
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional

import fastavro
import pytest
from pydantic import ValidationError

import schemas

from core.topics import topic_for, type_for_topic
from schemas import models
from schemas.examples import example, examples

pytestmark = pytest.mark.unit

AVSC_FILES = sorted(schemas.SCHEMA_DIR.glob("*.avsc"))


def _named_definitions(avro_type: Any, namespace: str = "liaison.bus") -> Iterator[tuple[str, dict]]:
    """Every named type (record/enum) defined inline in a schema, with its full name."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            yield from _named_definitions(branch, namespace)
    elif isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind in ("record", "enum"):
            namespace = avro_type.get("namespace", namespace)
            yield f"{namespace}.{avro_type['name']}", avro_type
            for field in avro_type.get("fields", []):
                yield from _named_definitions(field["type"], namespace)
        elif kind == "array":
            yield from _named_definitions(avro_type["items"], namespace)


def _fields(avro_type: Any, path: str) -> Iterator[tuple[str, dict]]:
    for full_name, definition in _named_definitions(avro_type):
        for field in definition.get("fields", []):
            yield f"{path}:{full_name}.{field['name']}", field


def _roundtrip(name: str, record: dict, writer_schema=None) -> dict:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer_schema or schemas.parsed_schema(name), record)
    buffer.seek(0)
    if writer_schema is None:
        return fastavro.schemaless_reader(buffer, schemas.parsed_schema(name))
    return fastavro.schemaless_reader(buffer, writer_schema, schemas.parsed_schema(name))


# --------------------------------------------------------------------------- schema files


def test_one_file_per_message_type():
    assert [p.stem for p in AVSC_FILES] == sorted(schemas.MESSAGE_TYPES)
    assert len(set(schemas.MESSAGE_TYPES)) == 8
    assert schemas.MESSAGE_TYPES[-1] == "DeconflictionAlert"


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_schema_file_parses_alone_and_is_named_like_the_file(name):
    schema = schemas.load_schema(name)
    assert schema["type"] == "record"
    assert schema["name"] == name
    assert schema["namespace"] == "liaison.bus"
    fastavro.parse_schema(json.loads((schemas.SCHEMA_DIR / f"{name}.avsc").read_text()))
    assert schemas.parsed_schema(name)["name"] == f"liaison.bus.{name}"
    assert json.loads(schemas.schema_str(name)) == schema


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_every_record_field_and_enum_has_a_doc(name):
    schema = schemas.load_schema(name)
    for full_name, definition in _named_definitions(schema):
        assert definition.get("namespace") == "liaison.bus", full_name
        assert isinstance(definition.get("doc"), str) and definition["doc"].strip(), f"{full_name} has no doc"
    for where, field in _fields(schema, name):
        assert isinstance(field.get("doc"), str) and field["doc"].strip(), f"{where} has no doc"


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_every_enum_has_a_default_symbol(name):
    for full_name, definition in _named_definitions(schemas.load_schema(name)):
        if definition["type"] == "enum":
            assert definition.get("default") in definition["symbols"], f"{full_name} has no valid default"


def test_classification_fails_closed():
    for name in schemas.MESSAGE_TYPES:
        enums = {d["name"]: d for _, d in _named_definitions(schemas.load_schema(name))}
        classification = enums["Classification"]
        assert classification["symbols"] == ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP_SECRET"]
        assert classification["default"] == "TOP_SECRET"


def test_unknown_classification_symbol_is_read_as_top_secret():
    """A writer with a newer Classification symbol: our readers must see TOP_SECRET."""
    writer = schemas.load_schema("AirTrack")
    label = writer["fields"][0]["type"]
    label["fields"][0]["type"]["symbols"].append("COSMIC_TOP_SECRET")
    record = models.to_avro(example("AirTrack"))
    record["label"]["classification"] = "COSMIC_TOP_SECRET"
    read = _roundtrip("AirTrack", record, writer_schema=fastavro.parse_schema(writer))
    assert read["label"]["classification"] == "TOP_SECRET"
    assert models.from_avro("AirTrack", read).label.classification is models.Classification.TOP_SECRET


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_optional_fields_are_null_first_with_null_default(name):
    for where, field in _fields(schemas.load_schema(name), name):
        if isinstance(field["type"], list):
            assert field["type"][0] == "null" and len(field["type"]) == 2, where
            assert "default" in field and field["default"] is None, where


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_label_first_then_key(name):
    schema = schemas.load_schema(name)
    assert schema["fields"][0]["name"] == "label"
    assert schema["fields"][0]["type"]["name"] == "SecurityLabel"
    assert schemas.key_field(name).split(".")[0] in [f["name"] for f in schema["fields"][1:3]]


def test_timestamps_are_timestamp_millis_and_message_id_is_uuid():
    for name in schemas.MESSAGE_TYPES:
        schema = schemas.load_schema(name)
        label = {f["name"]: f["type"] for f in schema["fields"][0]["type"]["fields"]}
        assert label["created_at"] == {"type": "long", "logicalType": "timestamp-millis"}
        assert label["message_id"] == {"type": "string", "logicalType": "uuid"}
        for where, field in _fields(schema, name):
            if field["name"] in ("time", "created_at", "eta", "start", "end") or field["name"].startswith(
                "time_bucket_"
            ):
                assert field["type"] == {"type": "long", "logicalType": "timestamp-millis"}, where


def test_shared_named_types_are_identical_across_files():
    definitions: dict[str, dict[str, dict]] = {}
    for name in schemas.MESSAGE_TYPES:
        for full_name, definition in _named_definitions(schemas.load_schema(name)):
            by_file = definitions.setdefault(full_name, {})
            assert name not in by_file, f"{full_name} defined twice in {name}.avsc"
            by_file[name] = definition
    assert set(definitions["liaison.bus.SecurityLabel"]) == set(schemas.MESSAGE_TYPES)
    assert len(definitions["liaison.bus.Position"]) == len(schemas.MESSAGE_TYPES)
    for full_name, by_file in definitions.items():
        first_file, first = next(iter(by_file.items()))
        for other_file, other in by_file.items():
            assert other == first, f"{full_name} differs between {first_file}.avsc and {other_file}.avsc"


# --------------------------------------------------------------------------- topics and keys


def test_topics():
    assert topic_for("AirMissionPlan") == "liaison.internal.air.mission-plan"
    assert topic_for("AirTrack") == "liaison.internal.air.track"
    assert topic_for("MaritimeTrack") == "liaison.internal.naval.track"
    assert topic_for("StrikeReport") == "liaison.internal.air.strike-report"
    assert topic_for("GroupLocationReport") == "liaison.internal.intel.group-location"
    assert topic_for("ForeignFighterReport") == "liaison.internal.intel.foreign-fighter"
    assert topic_for("LogisticsObservation") == "liaison.internal.intel.logistics"
    assert topic_for("DeconflictionAlert") == "liaison.internal.deconfliction.alert"
    for name in schemas.MESSAGE_TYPES:
        assert type_for_topic(topic_for(name)) == name
    with pytest.raises(schemas.UnknownMessageType):
        topic_for("Nope")
    with pytest.raises(schemas.UnknownMessageType):
        type_for_topic("liaison.internal.nope")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("AirMissionPlan", "H5-20151123-014"),
        ("AirTrack", "TN-40217"),
        ("MaritimeTrack", "R91"),
        ("StrikeReport", "STK-20151123-007"),
        ("GroupLocationReport", "daesh"),
        ("ForeignFighterReport", "ffs-000417"),
        ("LogisticsObservation", "Deir ez-Zor / al-Omar fields"),
        ("DeconflictionAlert", "790b61ac-24ea-5c40-9edd-d0cb3fd36aa7"),
    ],
)
def test_key_of_dict_and_model(name, expected):
    model = example(name)
    assert schemas.key_of(name, models.to_avro(model)) == expected
    assert schemas.key_of(name, model) == expected


def test_key_of_rejects_missing_or_empty_key():
    record = models.to_avro(example("ForeignFighterReport"))
    with pytest.raises(ValueError, match="subject.subject_ref"):
        schemas.key_of("ForeignFighterReport", {"label": record["label"]})
    record["subject"]["subject_ref"] = ""
    with pytest.raises(ValueError, match="empty"):
        schemas.key_of("ForeignFighterReport", record)


# --------------------------------------------------------------------------- drift check


def test_models_match_schemas():
    assert models.check_models_against_schemas() == []
    assert list(models.MODELS) == list(schemas.MESSAGE_TYPES)


def test_drift_extra_model_field_is_detected():
    class AirTrack(models.AirTrack):  # same name, one field more than the schema
        squawk: Optional[str] = None

    problems = models.compare_model_to_schema(AirTrack, schemas.load_schema("AirTrack"))
    assert any("squawk" in p and "not in the schema" in p for p in problems), problems


def test_drift_in_schema_is_detected():
    def drifted(change) -> list[str]:
        schema = schemas.load_schema("AirMissionPlan")
        change(schema)
        return models.compare_model_to_schema(models.AirMissionPlan, schema)

    fields = lambda s: {f["name"]: f for f in s["fields"]}  # noqa: E731
    label_fields = lambda s: {f["name"]: f for f in s["fields"][0]["type"]["fields"]}  # noqa: E731

    # a new enum symbol deep inside the label
    problems = drifted(lambda s: label_fields(s)["classification"]["type"]["symbols"].append("COSMIC"))
    assert any("AirMissionPlan.label.classification" in p and "symbols differ" in p for p in problems), problems
    # a primitive type change
    problems = drifted(lambda s: fields(s).__getitem__("aircraft_count").__setitem__("type", "double"))
    assert any("AirMissionPlan.aircraft_count" in p for p in problems), problems
    # a required field made optional
    problems = drifted(
        lambda s: fields(s)["callsign"].update(type=["null", "string"], default=None)
    )
    assert any("AirMissionPlan.callsign" in p and "Optional" in p for p in problems), problems
    # a nested field renamed inside an array of records
    def rename_eta(s):
        waypoint = fields(s)["route"]["type"]["items"]
        waypoint["fields"][3]["name"] = "eta_utc"

    problems = drifted(rename_eta)
    assert any("route[]" in p and "eta_utc" in p for p in problems), problems
    # field order
    problems = drifted(lambda s: s["fields"].insert(2, s["fields"].pop(3)))
    assert any("order" in p for p in problems), problems
    # logical type dropped
    problems = drifted(lambda s: label_fields(s)["created_at"].__setitem__("type", "long"))
    assert any("label.created_at" in p for p in problems), problems


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_roundtrip_through_avro(name):
    original = example(name)
    assert isinstance(original, models.MODELS[name])
    read = _roundtrip(name, models.to_avro(original))
    back = models.from_avro(name, read)
    assert back == original
    assert models.model_name(back) == name


def test_from_avro_accepts_uuid_as_string_or_uuid():
    record = models.to_avro(example("AirTrack"))
    assert isinstance(record["label"]["message_id"], str)
    as_str = models.from_avro("AirTrack", copy.deepcopy(record))
    record["label"]["message_id"] = uuid.UUID(record["label"]["message_id"])
    assert models.from_avro("AirTrack", record) == as_str


def test_to_avro_uses_symbols_and_plain_values():
    record = models.to_avro(example("StrikeReport"))
    assert type(record["label"]["classification"]) is str
    assert record["target_category"] == "OIL_TRANSPORT_LOGISTICS"
    assert record["sortie_id"] == "H5-20151123-014"


def test_times_are_truncated_to_millis_and_normalised_to_utc():
    plus3 = timezone(timedelta(hours=3))
    track = example("AirTrack")
    track = models.AirTrack.model_validate(
        {**track.model_dump(), "time": datetime(2015, 11, 23, 9, 30, 0, 123456, tzinfo=plus3)}
    )
    assert track.time == datetime(2015, 11, 23, 6, 30, 0, 123000, tzinfo=timezone.utc)
    assert track.time.tzinfo == timezone.utc
    assert models.from_avro("AirTrack", _roundtrip("AirTrack", models.to_avro(track))) == track


def test_optional_none_roundtrips():
    track = example("AirTrack")
    track.sortie_id = None
    assert models.from_avro("AirTrack", _roundtrip("AirTrack", models.to_avro(track))) == track


def test_classification_levels():
    C = models.Classification
    assert [c.level for c in C] == [0, 1, 2, 3, 4]
    assert C.CONFIDENTIAL.level < C.SECRET.level


def test_examples_cover_every_type_and_are_fresh():
    assert list(examples()) == list(schemas.MESSAGE_TYPES)
    a, b = example("AirTrack"), example("AirTrack")
    assert a == b and a is not b
    with pytest.raises(schemas.UnknownMessageType):
        example("Nope")
    with pytest.raises(schemas.UnknownMessageType):
        models.from_avro("Nope", {})


# --------------------------------------------------------------------------- validators


def _invalid(name: str, mutate) -> str:
    """Mutate the example's Avro dict, validate it, return the error text (must fail)."""
    record = models.to_avro(example(name))
    mutate(record)
    with pytest.raises(ValidationError) as info:
        models.from_avro(name, record)
    return str(info.value)


def test_validation_errors_do_not_echo_values():
    def mutate(r):
        r["subject"]["nationality"] = ["xx"]

    text = _invalid("ForeignFighterReport", mutate)
    assert "subject.nationality.0" in text
    assert "EXAMPLE Subject-One" not in text and "'xx'" not in text


def test_rejects_latitude_out_of_range():
    text = _invalid("AirTrack", lambda r: r["position"].__setitem__("lat", 91.0))
    assert "position.lat" in text


def test_rejects_longitude_out_of_range():
    text = _invalid("MaritimeTrack", lambda r: r["position"].__setitem__("lon", -180.5))
    assert "position.lon" in text


def test_rejects_floor_at_or_above_ceiling():
    def mutate(r):
        r["route"][1]["altitude_band"] = {"floor_ft": 26_000, "ceiling_ft": 26_000}

    text = _invalid("AirMissionPlan", mutate)
    assert "route.1.altitude_band" in text and "floor_ft" in text


def test_rejects_negative_floor():
    text = _invalid("AirMissionPlan", lambda r: r["route"][0]["altitude_band"].__setitem__("floor_ft", -100))
    assert "route.0.altitude_band.floor_ft" in text


def test_rejects_window_start_at_or_after_end():
    def mutate(r):
        window = r["time_windows"][0]
        window["start"], window["end"] = window["end"], window["start"]

    text = _invalid("AirMissionPlan", mutate)
    assert "time_windows.0" in text and "before end" in text


def test_rejects_logistics_bucket_start_after_end():
    def mutate(r):
        r["time_bucket_start"], r["time_bucket_end"] = r["time_bucket_end"], r["time_bucket_start"]

    assert "time_bucket_start" in _invalid("LogisticsObservation", mutate)


def test_rejects_empty_releasable_to():
    text = _invalid("StrikeReport", lambda r: r["label"].__setitem__("releasable_to", []))
    assert "label.releasable_to" in text


def test_rejects_alpha2_or_lowercase_country_code():
    text = _invalid("StrikeReport", lambda r: r["label"].__setitem__("releasable_to", ["FRA", "ru"]))
    assert "label.releasable_to.1" in text
    text = _invalid("ForeignFighterReport", lambda r: r["subject"].__setitem__("nationality", ["RU"]))
    assert "subject.nationality.0" in text


def test_rejects_bad_language_code():
    text = _invalid("ForeignFighterReport", lambda r: r["subject"].__setitem__("languages", ["rus"]))
    assert "subject.languages.0" in text


def test_rejects_naive_datetime():
    naive = datetime(2015, 11, 23, 6, 0)
    text = _invalid("AirTrack", lambda r: r["label"].__setitem__("created_at", naive))
    assert "label.created_at" in text and "timezone-aware" in text
    text = _invalid("AirMissionPlan", lambda r: r["route"][2].__setitem__("eta", naive))
    assert "route.2.eta" in text


@pytest.mark.parametrize(
    "name, mutate, path",
    [
        ("AirMissionPlan", lambda r: r.__setitem__("aircraft_count", 0), "aircraft_count"),
        ("AirMissionPlan", lambda r: r.__setitem__("time_windows", []), "time_windows"),
        ("AirTrack", lambda r: r.__setitem__("heading_deg", 360.0), "heading_deg"),
        ("AirTrack", lambda r: r.__setitem__("speed_kt", -1.0), "speed_kt"),
        ("MaritimeTrack", lambda r: r.__setitem__("course_deg", -0.5), "course_deg"),
        ("GroupLocationReport", lambda r: r.__setitem__("confidence", 1.2), "confidence"),
        ("GroupLocationReport", lambda r: r.__setitem__("group_id", "Daesh"), "group_id"),
        ("LogisticsObservation", lambda r: r["counts"][0].__setitem__("count", -3), "counts.0.count"),
        ("AirTrack", lambda r: r["label"].__setitem__("classification", "COSMIC"), "label.classification"),
        ("AirTrack", lambda r: r["label"].__setitem__("message_id", "not-a-uuid"), "label.message_id"),
        ("AirTrack", lambda r: r.__setitem__("track_id", " "), "track_id"),
        ("AirTrack", lambda r: r.__setitem__("extra", 1), "extra"),
    ],
)
def test_other_constraints(name, mutate, path):
    assert path in _invalid(name, mutate)


# --------------------------------------------------------------------------- non-finite numbers


def _double_paths(name: str) -> list[tuple[str | int, ...]]:
    """Path of every float/double value in the Avro record of the example of ``name`` (every list item)."""
    from schemas.named import NamedTypes

    schema = schemas.load_schema(name)
    named = NamedTypes(schema, schemas.NAMESPACE)
    out: list[tuple[str | int, ...]] = []

    def walk(avro_type: Any, datum: Any, path: tuple) -> None:
        avro_type = named.resolve(avro_type)
        if datum is None:
            return
        if isinstance(avro_type, list):
            for branch in avro_type:
                if branch != "null":
                    walk(branch, datum, path)
            return
        kind = avro_type if isinstance(avro_type, str) else avro_type["type"]
        if isinstance(kind, (dict, list)):
            walk(kind, datum, path)
        elif kind in ("float", "double"):
            assert isinstance(datum, float), path
            out.append(path)
        elif kind == "record":
            for field in avro_type["fields"]:
                walk(field["type"], datum[field["name"]], (*path, field["name"]))
        elif kind == "array":
            for index, item in enumerate(datum):
                walk(avro_type["items"], item, (*path, index))

    walk(schema, models.to_avro(example(name)), ())
    return out


def _set(record: dict, path: tuple, value: Any) -> None:
    target: Any = record
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_every_float_field_of_every_model_refuses_non_finite_values(name, bad):
    paths = _double_paths(name)
    assert paths, f"{name} has float/double fields (positions at least)"
    for path in paths:
        record = models.to_avro(example(name))
        _set(record, path, bad)
        with pytest.raises(ValidationError) as info:
            models.from_avro(name, record)
        (error,) = info.value.errors(include_url=False)
        assert error["loc"] == path
        assert error["type"] == "finite_number", (path, error)


def test_float_fields_are_declared_finite_and_the_base_config_refuses_them_too():
    # The backstop: a float field added without one of the finite types is still refused.
    from pydantic import create_model

    from schemas.models.fields import _Model

    assert _Model.model_config["allow_inf_nan"] is False
    loose = create_model("Loose", __base__=_Model, x=(float, ...))
    with pytest.raises(ValidationError):
        loose(x=float("nan"))
    with pytest.raises(ValidationError):
        loose(x=float("inf"))


def test_from_avro_of_a_decoded_record_with_a_nan_double_raises():
    # What the forwarder does with a consumed message: fastavro decodes it (NaN is a valid IEEE double
    # on the wire), schemas.models.from_avro validates it - and must refuse it, with the field path.
    record = models.to_avro(example("GroupLocationReport"))
    record["confidence"] = float("nan")
    record["position"]["lat"] = float("nan")
    decoded = _roundtrip("GroupLocationReport", record)
    assert decoded["confidence"] != decoded["confidence"]  # NaN survived the wire
    with pytest.raises(ValidationError) as info:
        models.from_avro("GroupLocationReport", decoded)
    assert {e["loc"] for e in info.value.errors()} == {("confidence",), ("position", "lat")}
    assert all(e["type"] == "finite_number" for e in info.value.errors())
    strike = models.to_avro(example("ForeignFighterReport"))
    strike["last_known_area"]["radius_km"] = float("inf")
    with pytest.raises(ValidationError) as info:
        models.from_avro("ForeignFighterReport", _roundtrip("ForeignFighterReport", strike))
    assert [e["loc"] for e in info.value.errors()] == [("last_known_area", "radius_km")]


def test_models_refuse_non_finite_json_too():
    # pydantic's JSON parser reads the NaN / Infinity tokens as floats; the models still refuse them.
    import re

    text = example("AirTrack").model_dump_json()
    for token, field, path in [("Infinity", "speed_kt", ("speed_kt",)), ("NaN", "lat", ("position", "lat")),
                               ("-Infinity", "lon", ("position", "lon"))]:
        bad = re.sub(rf'"{field}":[^,}}]+', f'"{field}":{token}', text)
        assert bad != text
        with pytest.raises(ValidationError) as info:
            models.AirTrack.model_validate_json(bad)
        assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(path, "finite_number")]
        assert "input_value" not in str(info.value)  # hide_input_in_errors: the value is not echoed


# --------------------------------------------------------------------------- size bounds


def _unbounded(schema: dict, defs: dict, path: str, out: list[str]) -> None:
    """Paths of the strings and arrays of a model's JSON schema that have no length bound."""
    import re

    if "$ref" in schema:
        _unbounded(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, path, out)
        return
    for branch in schema.get("anyOf", []):
        _unbounded(branch, defs, path, out)
    kind = schema.get("type")
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            _unbounded(sub, defs, f"{path}.{name}".lstrip("."), out)
    elif kind == "array":
        if "maxItems" not in schema:
            out.append(path)
        _unbounded(schema["items"], defs, f"{path}[]", out)
    elif kind == "string":
        fixed = "pattern" in schema and not re.search(r"[+*]|\{\d+,\}", schema["pattern"])
        if not ("maxLength" in schema or "format" in schema or "enum" in schema or fixed):
            out.append(path)


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_every_string_and_list_of_every_model_is_bounded(name):
    schema = models.MODELS[name].model_json_schema()
    out: list[str] = []
    _unbounded(schema, schema.get("$defs", {}), "", out)
    assert out == []


@pytest.mark.parametrize(
    "name, path, bound",
    [
        ("AirTrack", ("callsign",), models.MAX_ID_CHARS),
        ("AirTrack", ("track_id",), models.MAX_ID_CHARS),
        ("AirMissionPlan", ("sortie_id",), models.MAX_ID_CHARS),
        ("ForeignFighterReport", ("subject", "subject_ref"), models.MAX_ID_CHARS),
        ("MaritimeTrack", ("ship_name",), models.MAX_NAME_CHARS),
        ("AirMissionPlan", ("route", 0, "name"), models.MAX_NAME_CHARS),
        ("AirMissionPlan", ("label", "caveats", 0), models.MAX_NAME_CHARS),
        ("StrikeReport", ("weapon",), models.MAX_NAME_CHARS),
        ("AirMissionPlan", ("target_area",), models.MAX_NAME_CHARS),
        ("AirMissionPlan", ("mission_purpose",), models.MAX_TEXT_CHARS),
        ("GroupLocationReport", ("observed_activity",), models.MAX_TEXT_CHARS),
        ("ForeignFighterReport", ("travel_indicators", 0), models.MAX_TEXT_CHARS),
        ("GroupLocationReport", ("group_id",), models.MAX_SLUG_CHARS),
        ("AirTrack", ("label", "originator"), models.MAX_SLUG_CHARS),
    ],
)
def test_strings_are_bounded_by_kind_at_the_bound_accepted_one_over_refused(name, path, bound):
    record = models.to_avro(example(name))
    if path == ("label", "caveats", 0) and not record["label"]["caveats"]:
        record["label"]["caveats"] = ["x"]
    at = "a" * bound  # also a valid slug (group_id, originator)
    _set(record, path, at)
    models.from_avro(name, record)  # at the bound: valid
    _set(record, path, at + "a")
    with pytest.raises(ValidationError) as info:
        models.from_avro(name, record)
    (error,) = info.value.errors(include_url=False)
    assert error["loc"] == path and error["type"] == "string_too_long"
    assert f"at most {bound} characters" in error["msg"] and "aaaa" not in str(info.value)


@pytest.mark.parametrize("field, path", [("releasable_to", ("label", "releasable_to")),
                                         ("caveats", ("label", "caveats")),
                                         ("route", ("route",)), ("time_windows", ("time_windows",)),
                                         ("weapons_loadout", ("weapons_loadout",))])
def test_lists_are_bounded(field, path):
    record = models.to_avro(example("AirMissionPlan"))
    target: Any = record
    for part in path:
        target = target[part]
    item = target[0] if target else "NOFORN"
    bound = models.MAX_ITEMS[field]
    _set(record, path, [copy.deepcopy(item) for _ in range(bound)])
    models.from_avro("AirMissionPlan", record)
    _set(record, path, [copy.deepcopy(item) for _ in range(bound + 1)])
    with pytest.raises(ValidationError) as info:
        models.from_avro("AirMissionPlan", record)
    assert [e["loc"] for e in info.value.errors()] == [path]
    assert info.value.errors()[0]["type"] == "too_long"


def test_the_record_bound_is_far_below_the_broker_message_limit():
    # broker default message.max.bytes 1048588; deploy/topics.yaml sets none below 1,000,000 (internal topics)
    from deploy.topics import load_topics

    declared = load_topics(schemas.SCHEMA_DIR.parent / "deploy" / "topics.yaml")
    limits = {t.max_message_bytes for t in declared if not t.name.startswith("liaison.inbound.")}
    assert min(limit or 1048588 for limit in limits) >= 1_000_000
    # a partner's inbound topics are bounded lower, still above the record bound (plus headers)
    inbound = {t.max_message_bytes for t in declared if t.name.startswith("liaison.inbound.")}
    assert inbound and min(inbound) >= 2 * models.MAX_RECORD_BYTES
    assert models.MAX_RECORD_BYTES == 64 * 1024 < 1_000_000 // 10
    # and every simulated record (sentinels included) is far below the record bound
    from producers.simulate import Simulator
    from producers.validate import encoded_size

    sizes = [encoded_size(models.model_name(m), m) for _, m in Simulator("all", seed=3, sentinels=True).events(200, 30)]
    assert max(sizes) < models.MAX_RECORD_BYTES // 8


def test_deconfliction_alert_lifecycle_and_volume_are_checked():
    def bad(change) -> str:
        record = models.to_avro(example("DeconflictionAlert"))
        change(record)
        with pytest.raises(ValidationError) as e:
            models.from_avro("DeconflictionAlert", record)
        return str(e.value)

    assert "CLEARED" in bad(lambda r: r.update(cleared_reason="PASSED"))        # an UPDATED alert with a reason
    assert "revision" in bad(lambda r: r.update(status="NEW"))                  # NEW at revision 1
    assert "revision" in bad(lambda r: r.update(revision=0))                    # UPDATED at revision 0
    assert "partner" in bad(lambda r: r["theirs"].update(nation="USA"))         # theirs is not the partner's
    assert "floor_ft" in bad(lambda r: r["volume"].update(floor_ft=30_000))     # floor above the ceiling
    assert "start" in bad(lambda r: r["window"].update(end=r["window"]["start"]))  # an empty window
    cleared = models.to_avro(example("DeconflictionAlert"))
    cleared.update(status="CLEARED", revision=2, cleared_reason="PASSED")
    assert models.from_avro("DeconflictionAlert", cleared).cleared_reason is models.ClearedReason.PASSED

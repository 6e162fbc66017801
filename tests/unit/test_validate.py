"""producers.validate: NDJSON files of typed messages, checked line by line."""

from __future__ import annotations

import json

import pytest

import schemas
from producers.simulate import Simulator
from producers.validate import LineError, ValidationReport, validate_file, validate_lines
from schemas import UnknownMessageType
from schemas.examples import example
from schemas.models import model_name

pytestmark = pytest.mark.unit


def line_of(name: str, **changes) -> str:
    """The JSON line of the example of ``name``, with top-level or dotted-path changes applied."""
    record = example(name).model_dump(mode="json")
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = record
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is _DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return json.dumps(record)


_DELETE = object()

#: The types our component simulators publish: all but DeconflictionAlert, which no component produces (the
#: deconfliction service computes alerts from the plans and tracks, as `liaison deconflict`).
SIMULATED = tuple(t for t in schemas.MESSAGE_TYPES if t != "DeconflictionAlert")


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_valid_lines_of_every_type_are_all_valid(name):
    model = example(name)
    lines = [model.model_dump_json() + "\n" for _ in range(3)]
    report = validate_lines(name, lines)
    assert report.ok and report.errors == []
    assert [number for number, _ in report.valid] == [1, 2, 3]
    assert all(m == model for m in report.models)
    assert report.summary() == f"{name}: 3 records, 3 valid, 0 invalid (0 errors)"


def test_a_simulated_file_validates_completely():
    events = [m for _, m in Simulator("all", seed=5).events(100, 20)]
    by_type: dict[str, list[str]] = {}
    for model in events:
        by_type.setdefault(model_name(model), []).append(model.model_dump_json())
    assert set(by_type) == set(SIMULATED)
    for name, lines in by_type.items():
        report = validate_lines(name, lines)
        assert report.ok, report.errors[:3]
        assert len(report.valid) == len(lines)


def test_blank_lines_are_skipped_but_counted_in_line_numbers():
    good = example("AirTrack").model_dump_json()
    report = validate_lines("AirTrack", ["", good, "   \t", "\n", good, ""])
    assert report.ok
    assert [number for number, _ in report.valid] == [2, 5]
    assert report.blank == 4
    assert report.records == 2


def test_bad_json_is_one_error_for_the_line():
    good = example("AirTrack").model_dump_json()
    report = validate_lines("AirTrack", [good, '{"label": {', good])
    assert [number for number, _ in report.valid] == [1, 3]
    assert len(report.errors) == 1
    error = report.errors[0]
    assert (error.line, error.field) == (2, "")
    assert error.message.startswith("invalid JSON:")
    assert str(error).startswith("line 2: invalid JSON:")
    assert not report.ok
    assert report.invalid_lines == [2]
    assert report.summary() == "AirTrack: 3 records, 2 valid, 1 invalid (1 errors)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "expected a JSON object, got an array"),
        ('"AirTrack"', "expected a JSON object, got a string"),
        ("42", "expected a JSON object, got a number"),
        ("null", "expected a JSON object, got null"),
        ('{"a": 1, "a": 2}', "invalid JSON: duplicate key 'a' in an object"),
    ],
)
def test_json_that_is_not_a_record(text, message):
    (error,) = validate_lines("AirTrack", [text]).errors
    assert (error.line, error.field, error.message) == (1, "", message)


def test_missing_field():
    (error,) = validate_lines("AirMissionPlan", [line_of("AirMissionPlan", callsign=_DELETE)]).errors
    assert (error.line, error.field, error.message) == (1, "callsign", "Field required")
    assert str(error) == "line 1: callsign: Field required"


def test_missing_nested_field_has_a_dotted_path():
    lines = ["", line_of("AirMissionPlan", label__message_id=_DELETE)]
    (error,) = validate_lines("AirMissionPlan", lines).errors
    assert (error.line, error.field) == (2, "label.message_id")


def test_bad_nested_field_reports_line_and_dotted_path():
    good = example("AirMissionPlan").model_dump_json()
    bad = line_of("AirMissionPlan", route__1__altitude_band__floor_ft=40_000)
    report = validate_lines("AirMissionPlan", [good, "", good, "", "", "", bad])
    (error,) = report.errors
    assert error == LineError(7, "route.1.altitude_band", "floor_ft must be below ceiling_ft")
    assert str(error) == "line 7: route.1.altitude_band: floor_ft must be below ceiling_ft"
    assert [number for number, _ in report.valid] == [1, 3]


def test_every_error_of_a_line_is_reported():
    bad = line_of(
        "AirMissionPlan",
        label__releasable_to=["FRA", "ru"],
        label__classification="COSMIC",
        aircraft_count=0,
        extra_field=1,
    )
    errors = validate_lines("AirMissionPlan", [bad]).errors
    fields = {error.field for error in errors}
    assert fields == {"label.releasable_to.1", "label.classification", "aircraft_count", "extra_field"}
    assert all(error.line == 1 for error in errors)


def test_list_items_and_optional_values_have_paths():
    bad = line_of("ForeignFighterReport", subject__languages=["ru", "RUS"], subject__date_of_birth="1991-13-40")
    fields = sorted(error.field for error in validate_lines("ForeignFighterReport", [bad]).errors)
    assert fields == ["subject.date_of_birth", "subject.languages.1"]


def test_whole_record_rule_has_an_empty_field():
    record = example("LogisticsObservation").model_dump(mode="json")
    record["time_bucket_end"] = record["time_bucket_start"]
    (error,) = validate_lines("LogisticsObservation", [json.dumps(record)]).errors
    assert (error.field, error.message) == ("", "time_bucket_start must be before time_bucket_end")
    assert str(error) == "line 1: time_bucket_start must be before time_bucket_end"


def test_naive_timestamps_are_rejected():
    bad = line_of("AirTrack", time="2015-11-23T07:35:00")
    (error,) = validate_lines("AirTrack", [bad]).errors
    assert error.field == "time"
    assert "timezone-aware" in error.message


def test_errors_never_echo_the_values():
    secret = "Zz-SECRET-VALUE-zZ"
    bad = line_of(
        "ForeignFighterReport",
        subject__nationality=[secret],
        subject__name=" ",
        affiliation=secret,
        report_id=[secret],
    )
    errors = validate_lines("ForeignFighterReport", [bad]).errors
    assert len(errors) == 4
    assert all(secret not in str(error) for error in errors)
    bad_json = '{"label": "' + secret + '" ' + secret + "}"
    assert all(secret not in str(error) for error in validate_lines("AirTrack", [bad_json]).errors)


def test_integers_beyond_the_avro_range_are_reported_with_their_path():
    plan = line_of("AirMissionPlan", aircraft_count=2**31, route__2__altitude_band__ceiling_ft=2**40)
    errors = validate_lines("AirMissionPlan", [plan]).errors
    assert {(e.field, e.message.split(" (")[0]) for e in errors} == {
        ("aircraft_count", "out of range of an Avro int"),
        ("route.2.altitude_band.ceiling_ft", "out of range of an Avro int"),
    }
    counts = line_of("LogisticsObservation", counts__1__count=2**31 - 1)
    assert validate_lines("LogisticsObservation", [counts]).ok
    counts = line_of("LogisticsObservation", counts__1__count=2**31)
    (error,) = validate_lines("LogisticsObservation", [counts]).errors
    assert error.field == "counts.1.count"


def _with_tokens(name: str, **tokens: str) -> str:
    """The example line of ``name`` with the number at each path (dotted with __) replaced by a raw JSON token."""
    markers = {path: 123456.5 + index for index, path in enumerate(tokens)}
    text = line_of(name, **markers)
    for path, token in tokens.items():
        assert text.count(str(markers[path])) == 1
        text = text.replace(str(markers[path]), token)
    return text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_tokens_are_refused_with_line_and_field_path(token):
    good = example("AirMissionPlan").model_dump_json()
    bad = _with_tokens("AirMissionPlan", route__1__position__lat=token)
    report = validate_lines("AirMissionPlan", [good, bad, good])
    assert [number for number, _ in report.valid] == [1, 3]
    (error,) = report.errors
    assert (error.line, error.field) == (2, "route.1.position.lat")
    assert error.message == f"{token} is not valid JSON (numbers must be finite)"
    assert str(error) == f"line 2: route.1.position.lat: {token} is not valid JSON (numbers must be finite)"


def test_every_non_finite_number_of_a_line_is_reported():
    bad = _with_tokens("GroupLocationReport", confidence="NaN", position__lon="Infinity", radius_m="1e999")
    errors = validate_lines("GroupLocationReport", [bad]).errors
    assert [(e.line, e.field) for e in errors] == [(1, "position.lon"), (1, "radius_m"), (1, "confidence")]
    assert errors[1].message == "number out of range of a double (not finite)" and "999" not in str(errors[1])


def test_deep_nesting_and_huge_integers_are_one_error_not_a_crash():
    deep = '{"label": ' + "[" * 1000 + "]" * 1000 + "}"
    huge = line_of("AirTrack", altitude_ft=0).replace('"altitude_ft": 0', '"altitude_ft": ' + "9" * 5000)
    good = example("AirTrack").model_dump_json()
    report = validate_lines("AirTrack", [deep, good, huge])
    assert [number for number, _ in report.valid] == [2]
    assert [(e.line, e.field) for e in report.errors] == [(1, ""), (3, "altitude_ft")]
    assert report.errors[0].message == "invalid JSON: nested deeper than 64 levels of arrays/objects"
    assert report.errors[1].message == "integer with more than 64 digits"


def test_unknown_type_raises_before_reading():
    def lines():
        raise AssertionError("must not be read")
        yield ""  # pragma: no cover

    with pytest.raises(UnknownMessageType, match="Airtrack"):
        validate_lines("Airtrack", lines())
    with pytest.raises(UnknownMessageType):
        validate_file("Nope", "/nonexistent/file.ndjson")


def test_bytes_lines_bom_and_bad_utf8():
    good = example("AirTrack").model_dump_json()
    report = validate_lines("AirTrack", ["\ufeff" + good, good.encode(), b"\xff\xfe{}"])
    assert [number for number, _ in report.valid] == [1, 2]
    (error,) = report.errors
    assert (error.line, error.field) == (3, "")
    assert error.message.startswith("not valid UTF-8")


def test_validate_file(tmp_path):
    good = example("MaritimeTrack").model_dump_json()
    bad = line_of("MaritimeTrack", position__lat=91.0)
    path = tmp_path / "tracks.ndjson"
    path.write_bytes(("\ufeff" + good + "\r\n" + bad + "\n\n" + good).encode() + b"\n\xc3\x28\n")
    report = validate_file("MaritimeTrack", path)
    assert isinstance(report, ValidationReport)
    assert [number for number, _ in report.valid] == [1, 4]
    assert [(e.line, e.field) for e in report.errors] == [(2, "position.lat"), (5, "")]
    assert report.blank == 1
    assert str(report.errors[0]) == "line 2: position.lat: Input should be less than or equal to 90"


def test_empty_input_is_ok_and_empty():
    report = validate_lines("AirTrack", [])
    assert report.ok and report.valid == [] and report.records == 0


# --------------------------------------------------------------------------- size bounds


def test_a_one_mebibyte_string_is_one_error_naming_line_and_field_never_the_value():
    good = example("MaritimeTrack").model_dump_json()
    secret = "SECRET-" + "x" * (1 << 20)
    bad = line_of("MaritimeTrack", mission=secret)
    report = validate_lines("MaritimeTrack", [good] * 499 + [bad] + [good] * 500)
    assert len(report.valid) == 999
    (error,) = report.errors
    assert (error.line, error.field) == (500, "mission")
    assert str(error) == "line 500: mission: String should have at most 4096 characters"
    assert "SECRET" not in str(error)


@pytest.mark.parametrize("name, path, length, field", [
    ("AirTrack", "callsign", 129, "callsign"),
    ("AirTrack", "sortie_id", 129, "sortie_id"),
    ("ForeignFighterReport", "subject__subject_ref", 129, "subject.subject_ref"),
    ("ForeignFighterReport", "travel_indicators__0", 4097, "travel_indicators.0"),
    ("MaritimeTrack", "ship_name", 257, "ship_name"),
    ("StrikeReport", "launch_platform", 257, "launch_platform"),
    ("StrikeReport", "collateral_assessment", 4097, "collateral_assessment"),
])
def test_over_long_strings_are_reported_with_their_path(name, path, length, field):
    (error,) = validate_lines(name, [line_of(name, **{path: "y" * length})]).errors
    assert error.field == field and f"at most {length - 1} characters" in error.message
    assert validate_lines(name, [line_of(name, **{path: "y" * (length - 1)})]).ok


def test_over_long_lists_are_reported_with_their_path():
    too_many = line_of("AirTrack", label__releasable_to=["USA"] * 65)
    (error,) = validate_lines("AirTrack", [too_many]).errors
    assert error.field == "label.releasable_to" and "at most 64 items" in error.message
    assert validate_lines("AirTrack", [line_of("AirTrack", label__releasable_to=["USA"] * 64)]).ok


def test_a_record_above_the_encoded_size_bound_names_its_largest_field():
    from producers.validate import encoded_size
    from schemas.models import MAX_RECORD_BYTES

    record = json.loads(example("AirMissionPlan").model_dump_json())
    waypoint = record["route"][0]
    # 64 waypoints (the most a route may have), each name 256 characters of 4 bytes each: every field within
    # its bound, the record not
    record["route"] = [dict(waypoint, name="\U0001f6e9" * 256) for _ in range(64)]
    (error,) = validate_lines("AirMissionPlan", [json.dumps(record)]).errors
    assert (error.line, error.field) == (1, "route")
    assert f"above the {MAX_RECORD_BYTES}-byte bound" in error.message and "\U0001f6e9" not in error.message
    record["route"] = record["route"][:32]
    (number, model), = validate_lines("AirMissionPlan", [json.dumps(record)]).valid
    assert encoded_size("AirMissionPlan", model) <= MAX_RECORD_BYTES


def test_the_encoded_size_is_what_the_publisher_sends():
    from core import serde
    from schemas.models import to_avro
    from producers.validate import encoded_size

    for name in schemas.MESSAGE_TYPES:
        model = example(name)
        encoder = serde.Encoder(12345, schemas.load_schema(name))
        assert encoded_size(name, model) == len(encoder.encode(to_avro(model)))


def test_a_simulated_file_with_sentinels_validates_completely():
    by_type: dict[str, list[str]] = {}
    for _, model in Simulator("all", seed=9, sentinels=True).events(100, 20):
        by_type.setdefault(model_name(model), []).append(model.model_dump_json())
    for name, lines in by_type.items():
        report = validate_lines(name, lines)
        assert report.ok, report.errors[:3]

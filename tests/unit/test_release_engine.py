"""The decision engine on purpose-built policies: conditions, projection semantics, allow-list,
derived schemas of several rules, secrets, malformed records."""

from __future__ import annotations

import copy
import dataclasses
import hmac
import io
import json
import os
import stat
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest

import schemas
from release import (
    Decision,
    MissingSecret,
    SecretStore,
    decide,
    load_policy,
    released_key,
)
from release.transforms import snap_down
from schemas.examples import example
from schemas.models import Classification, to_avro

pytestmark = pytest.mark.unit

UTC = timezone.utc
KEY = b"k" * 32

HEADER = """\
partner: RUS
classification_ceiling: SECRET
label:
  classification: keep
  message_id: keep
"""


def make_policy(tmp_path: Path, body: str, *, header: str = HEADER, keys=None, name: str = "RUS.yaml"):
    path = tmp_path / name
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    store = SecretStore.in_memory(keys if keys is not None else {"RUS": KEY})
    return load_policy(path, store)


def rec(type_name: str, **changes) -> dict:
    record = to_avro(example(type_name))
    record.update(changes)
    return record


def roundtrip(policy, type_name: str, released: dict) -> dict:
    parsed = fastavro.parse_schema(policy.derived_schema(type_name))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, released, strict=True)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, parsed)


# --------------------------------------------------------------------------- allow-list


def test_fields_no_action_names_are_dropped(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields:
                callsign: keep
        """)
    released = decide("AirTrack", rec("AirTrack"), policy).released
    assert released == {"label": {"classification": "RESTRICTED", "message_id": rec("AirTrack")["label"]["message_id"]},
                        "callsign": "RAFALE 21"}
    assert [f["name"] for f in policy.derived_schema("AirTrack")["fields"]] == ["label", "callsign"]
    entry = policy.describe()[0]
    assert entry["kept"] == ["label.classification", "label.message_id", "callsign"]
    assert entry["unnamed"] == ["label.releasable_to", "label.caveats", "label.originator", "label.created_at",
                                "track_id", "time", "position", "altitude_ft", "heading_deg", "speed_kt", "sortie_id"]


def test_a_field_unknown_to_the_schema_never_leaks(tmp_path):
    """A newer writer adds fields (top level, nested, in arrays, in the label): nothing passes."""
    policy = make_policy(tmp_path, """\
        rules:
          AirMissionPlan:
            - id: p
              fields:
                callsign: keep
                route: keep
                time_windows: keep
        """)
    record = rec("AirMissionPlan")
    record["secret_new_field"] = "TOP SECRET PAYLOAD"
    record["label"]["handling_note"] = "TOP SECRET PAYLOAD"
    record["route"][0]["position"]["secret_alt"] = "TOP SECRET PAYLOAD"
    record["route"][1]["secret_wp"] = "TOP SECRET PAYLOAD"
    record["time_windows"][0]["secret_tw"] = "TOP SECRET PAYLOAD"
    decision = decide("AirMissionPlan", record, policy)
    assert decision.decision == "RELEASE"
    assert "TOP SECRET PAYLOAD" not in json.dumps(decision.released, default=str)
    assert "secret" not in json.dumps(decision.released, default=str)
    roundtrip(policy, "AirMissionPlan", decision.released)


def test_keep_on_a_record_with_overrides(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirMissionPlan:
            - id: p
              fields:
                route: keep
                route.eta: drop
                route.position: {coarsen: {grid_deg: 0.5}}
                time_windows.start: {bucket: {seconds: 900}}
        """)
    record = rec("AirMissionPlan")
    released = decide("AirMissionPlan", record, policy).released
    assert [set(w) for w in released["route"]] == [{"name", "position", "altitude_band"}] * 3
    assert [w["position"] for w in released["route"]] == [
        {"lat": snap_down(w["position"]["lat"], 0.5), "lon": snap_down(w["position"]["lon"], 0.5)} for w in record["route"]]
    assert released["route"][0]["position"] == {"lat": 32.0, "lon": 37.0}
    assert released["route"][2]["altitude_band"] == record["route"][2]["altitude_band"]
    assert released["time_windows"] == [{"start": datetime(2015, 11, 23, 6, 30, tzinfo=UTC)}]
    roundtrip(policy, "AirMissionPlan", released)
    entry = policy.describe()[0]
    assert entry["coarsened"] == {"route.position": 0.5}
    assert entry["bucketed"] == {"time_windows.start": 900}
    assert entry["dropped"] == ["route.eta"]
    assert "route.name" in entry["kept"] and "route.altitude_band" in entry["kept"]


def test_released_view_does_not_alias_nor_mutate_the_input(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          LogisticsObservation:
            - id: l
              fields: {area: keep, counts: keep, trend: keep}
          ForeignFighterReport:
            - id: f
              fields: {subject.nationality: keep, travel_indicators: keep}
        """)
    for type_name in ("LogisticsObservation", "ForeignFighterReport"):
        record = rec(type_name)
        before = copy.deepcopy(record)
        released = decide(type_name, record, policy).released
        assert record == before
        for value in released.values():
            if isinstance(value, dict):
                value.clear()
            elif isinstance(value, list):
                value.clear()
        assert record == before


# --------------------------------------------------------------------------- conditions


def test_conditions_equals_inside_any_all_and_sets(tmp_path):
    policy = make_policy(tmp_path, """\
        sets:
          langs: [ru, uk]
          effects: [DESTROYED, DAMAGED]
        rules:
          AirMissionPlan:
            - id: syria-planned
              when:
                - {field: status, equals: PLANNED}
                - {field: route.position, inside: {lat_min: 34.5, lat_max: 37.5, lon_min: 35.5, lon_max: 42.5}}
                - {field: aircraft_count, equals: 2}
                - {field: carrier_based, equals: false}
              fields: {callsign: keep}
          StrikeReport:
            - id: effective
              when:
                - all:
                    - {field: assessed_effect, in_set: effects}
                    - {field: position, inside: {lat_min: 34, lat_max: 35, lon_min: 40, lon_max: 41}}
              fields: {strike_id: keep}
          ForeignFighterReport:
            - id: speakers
              when:
                - any:
                    - {field: subject.languages, contains_any_set: langs}
                    - {field: subject.nationality, contains_any: [UKR]}
              fields: {time: keep}
        """)
    plan = rec("AirMissionPlan")
    assert decide("AirMissionPlan", plan, policy).rule == "syria-planned"  # KILO waypoint is inside
    outside = copy.deepcopy(plan)
    outside["route"] = outside["route"][:2]  # H5 and TANGO are south of 34.5
    decision = decide("AirMissionPlan", outside, policy)
    assert (decision.decision, decision.rule) == ("WITHHOLD", "default-deny")
    assert decision.reason == ("AirMissionPlan: no rule matched (syria-planned: route.position not inside "
                               "lat 34.5..37.5, lon 35.5..42.5)")
    assert decide("AirMissionPlan", rec("AirMissionPlan", status="CANCELLED"), policy).reason.endswith(
        "(syria-planned: status does not equal PLANNED)")
    assert decide("AirMissionPlan", rec("AirMissionPlan", carrier_based=True), policy).decision == "WITHHOLD"
    assert decide("AirMissionPlan", rec("AirMissionPlan", aircraft_count=4), policy).decision == "WITHHOLD"

    assert decide("StrikeReport", rec("StrikeReport"), policy).decision == "RELEASE"
    assert decide("StrikeReport", rec("StrikeReport", assessed_effect="NO_EFFECT"), policy).reason.endswith(
        "(effective: assessed_effect not in set effects)")
    far = rec("StrikeReport", position={"lat": 36.0, "lon": 40.5})
    assert "position not inside lat 34..35, lon 40..41" in decide("StrikeReport", far, policy).reason

    ffr = rec("ForeignFighterReport")  # languages ru, ar
    assert decide("ForeignFighterReport", ffr, policy).decision == "RELEASE"
    ffr["subject"]["languages"] = ["ar"]
    decision = decide("ForeignFighterReport", ffr, policy)
    assert decision.reason == ("ForeignFighterReport: no rule matched (speakers: none of (subject.languages contains "
                               "none of set langs; subject.nationality contains none of [UKR]))")
    ffr["subject"]["nationality"] = ["UKR"]
    assert decide("ForeignFighterReport", ffr, policy).decision == "RELEASE"
    ffr["subject"]["nationality"] = []
    ffr["subject"]["languages"] = []
    assert decide("ForeignFighterReport", ffr, policy).decision == "WITHHOLD"


def test_first_matching_rule_wins_and_reasons_name_every_rule(tmp_path):
    policy = make_policy(tmp_path, """\
        sets:
          a: [daesh]
          b: [al-nusra]
        rules:
          StrikeReport:
            - id: first
              when: [{field: group_id, in_set: a}]
              fields: {strike_id: keep}
            - id: second
              when: [{field: group_id, in_set: b}]
              fields: {strike_id: keep, group_id: keep}
            - id: catch-daesh-again
              when: [{field: group_id, equals: daesh}]
              fields: {weapon: keep}
        """)
    assert decide("StrikeReport", rec("StrikeReport"), policy).rule == "first"
    assert decide("StrikeReport", rec("StrikeReport", group_id="al-nusra"), policy).rule == "second"
    decision = decide("StrikeReport", rec("StrikeReport", group_id="hts"), policy)
    assert decision.reason == ("StrikeReport: no rule matched (first: group_id not in set a; second: group_id not in "
                               "set b; catch-daesh-again: group_id does not equal daesh)")
    assert "hts" not in decision.reason


# --------------------------------------------------------------------------- derived schema of several rules


def test_rules_with_different_projections_share_one_derived_schema(tmp_path):
    policy = make_policy(tmp_path, """\
        sets:
          designated: [daesh]
        rules:
          StrikeReport:
            - id: exact
              when: [{field: group_id, in_set: designated}]
              fields:
                strike_id: keep
                position: keep
                time: keep
                collateral_assessment: keep
                sortie_id: keep
            - id: coarse
              fields:
                strike_id: keep
                position.lat: keep
                time: {bucket: {seconds: 86400}}
        """)
    derived = policy.derived_schema("StrikeReport")
    fields = {f["name"]: f for f in derived["fields"]}
    assert list(fields) == ["label", "strike_id", "sortie_id", "time", "position", "collateral_assessment"]
    assert fields["strike_id"]["type"] == "string" and "default" not in fields["strike_id"]
    assert fields["collateral_assessment"]["type"] == ["null", "string"] and fields["collateral_assessment"]["default"] is None
    assert fields["sortie_id"]["type"] == ["null", "string"]
    position_fields = {f["name"]: f["type"] for f in fields["position"]["type"]["fields"]}
    assert position_fields == {"lat": "double", "lon": ["null", "double"]}

    exact = decide("StrikeReport", rec("StrikeReport"), policy)
    coarse = decide("StrikeReport", rec("StrikeReport", group_id="ypg"), policy)
    assert (exact.rule, coarse.rule) == ("exact", "coarse")
    assert coarse.released["collateral_assessment"] is None and coarse.released["sortie_id"] is None
    assert coarse.released["position"] == {"lat": 34.9871, "lon": None}
    assert coarse.released["time"] == datetime(2015, 11, 23, tzinfo=UTC)
    assert exact.released["position"] == {"lat": 34.9871, "lon": 40.5612}
    for decision in (exact, coarse):
        assert set(decision.released) == set(fields)
        roundtrip(policy, "StrikeReport", decision.released)


def test_derived_schema_renames_namespaces_and_strips_docs(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          GroupLocationReport:
            - id: g
              fields: {source_type: keep, position: keep}
        """)
    derived = policy.derived_schema("GroupLocationReport")
    text = json.dumps(derived)
    assert '"doc"' not in text and "liaison.bus\"" not in text
    named = [t for t in _named_types(derived)]
    assert {t["name"] for t in named} == {"GroupLocationReport", "SecurityLabel", "Classification", "Position", "SourceType"}
    assert all(t["namespace"] == "liaison.bus.partner.rus" for t in named)
    assert '"report_id"' not in text and '"source_reliability"' not in text and '"releasable_to"' not in text
    with pytest.raises(KeyError, match="releases no AirTrack"):
        policy.derived_schema("AirTrack")


def _named_types(avro_type):
    if isinstance(avro_type, list):
        for b in avro_type:
            yield from _named_types(b)
    elif isinstance(avro_type, dict):
        if avro_type.get("type") in ("record", "enum"):
            yield avro_type
        for f in avro_type.get("fields", []):
            yield from _named_types(f["type"])
        if avro_type.get("type") == "array":
            yield from _named_types(avro_type["items"])


# --------------------------------------------------------------------------- labels and odd records


def test_label_values_as_python_objects(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields: {track_id: keep}
        """)
    record = rec("AirTrack")
    record["label"]["classification"] = Classification.SECRET
    record["label"]["message_id"] = uuid.UUID(record["label"]["message_id"])
    decision = decide("AirTrack", record, policy)
    assert decision.decision == "RELEASE"
    assert released_key("AirTrack", decision.released) == "TN-40217"
    roundtrip(policy, "AirTrack", decision.released)
    record["label"]["classification"] = Classification.TOP_SECRET
    assert decide("AirTrack", record, policy).reason == "classification TOP_SECRET above ceiling SECRET"
    record["label"]["releasable_to"] = ("RUS",)
    record["label"]["classification"] = "UNCLASSIFIED"
    assert decide("AirTrack", record, policy).decision == "RELEASE"


def test_require_releasable_to_false(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields: {track_id: keep}
        """, header=HEADER.replace("classification_ceiling: SECRET", "classification_ceiling: SECRET\n"
                                                                       "require_releasable_to: false"))
    record = rec("AirTrack")
    record["label"]["releasable_to"] = ["FRA"]
    assert decide("AirTrack", record, policy).decision == "RELEASE"
    record["label"]["classification"] = "TOP_SECRET"
    assert decide("AirTrack", record, policy).rule == "label-ceiling"


@pytest.mark.parametrize("mutate", [
    lambda r: r.pop("callsign"),
    lambda r: r.__setitem__("position", None),
    lambda r: r.__setitem__("position", "34.1,33.4"),
    lambda r: r["position"].pop("lon"),
    lambda r: r.__setitem__("sortie_id", 17),
    lambda r: r.__setitem__("time", "yesterday"),
])
def test_malformed_records_are_withheld_never_raised(tmp_path, mutate):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields:
                callsign: keep
                position: {coarsen: {grid_deg: 1}}
                sortie_id: pseudonymise
                time: {bucket: {seconds: 60}}
        """)
    record = rec("AirTrack")
    mutate(record)
    decision = decide("AirTrack", record, policy)
    assert (decision.decision, decision.rule, decision.released) == ("WITHHOLD", "malformed-record", None)
    assert decision.reason.startswith("AirTrack: record does not fit the schema (")
    assert "34.1" not in decision.reason and "yesterday" not in decision.reason


def test_unknown_types_and_non_records(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields: {track_id: keep}
        """)
    for type_name in ("StrikeReport", "Nope"):
        decision = decide(type_name, rec("StrikeReport"), policy)
        assert (decision.rule, decision.reason) == ("default-deny", f"no rule for {type_name}")
    assert decide("AirTrack", None, policy).rule == "malformed-record"
    assert decide("AirTrack", {"label": {"classification": "SECRET", "releasable_to": "RUS"}}, policy).rule == \
        "label-releasability"


def test_decision_is_a_frozen_slots_dataclass(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields: {track_id: keep}
        """)
    decision = decide("AirTrack", rec("AirTrack"), policy)
    assert isinstance(decision, Decision) and decision.is_release
    assert dataclasses.is_dataclass(decision) and not hasattr(decision, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.rule = "other"  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(Decision)] == ["partner", "decision", "rule", "reason", "released"]


def test_released_key_falls_back_to_the_message_id(tmp_path):
    policy = make_policy(tmp_path, """\
        rules:
          AirTrack:
            - id: t
              fields: {callsign: keep}
          LogisticsObservation:
            - id: l
              fields: {trend: keep}
        """)
    record = rec("AirTrack")
    released = decide("AirTrack", record, policy).released
    assert released_key("AirTrack", released) == record["label"]["message_id"]
    assert released_key("LogisticsObservation", decide("LogisticsObservation", rec("LogisticsObservation"),
                                                       policy).released) == rec("LogisticsObservation")["label"]["message_id"]
    assert released_key("AirTrack", {"callsign": "x"}) is None


def test_released_key_of_an_alert_is_its_alert_id_for_every_revision():
    """alert_id is a UUID (decoded as uuid.UUID): the key is its text, the internal record's key, never the
    label's message_id (one per revision), so NEW, UPDATED and CLEARED of one alert share a partition."""
    import uuid as _uuid

    alert = _uuid.UUID("5f0b6a3e-8a4e-4c1e-9d7e-2b1c3a4d5e6f")
    keys = {released_key("DeconflictionAlert", {"alert_id": alert, "revision": n,
                                               "label": {"message_id": _uuid.uuid4()}}) for n in range(3)}
    assert keys == {str(alert)}


# --------------------------------------------------------------------------- secrets and pseudonyms


def test_secret_store_files(tmp_path):
    store = SecretStore(tmp_path / "secrets")
    assert store.get("RUS") is None
    with pytest.raises(MissingSecret):
        store.key("RUS")
    key = store.ensure("RUS")
    path = tmp_path / "secrets" / "RUS.key"
    assert len(key) == 32 and path.read_text().strip() == key.hex()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.ensure("RUS") == key == SecretStore(tmp_path / "secrets").key("RUS")
    assert store.ensure("USA") != key
    assert sorted(p.name for p in path.parent.iterdir()) == ["RUS.key", "USA.key"]  # no temporary files left
    with pytest.raises(ValueError):
        store.ensure("../etc")
    path.write_text("abcd\n")
    with pytest.raises(ValueError, match="expected 32"):
        store.key("RUS")


def test_default_secret_directory_is_under_the_state_dir():
    from core.settings import get_settings

    assert SecretStore().directory == get_settings().state_dir / "secrets"


def test_pseudonyms_depend_on_the_partner_key(tmp_path):
    body = """\
        rules:
          ForeignFighterReport:
            - id: f
              fields: {subject.subject_ref: pseudonymise}
        """
    rus = make_policy(tmp_path, body, keys={"RUS": b"a" * 32})
    same = make_policy(tmp_path, body, keys={"RUS": b"a" * 32})
    other = make_policy(tmp_path, body, keys={"RUS": b"b" * 32})
    record = rec("ForeignFighterReport")
    first = decide("ForeignFighterReport", record, rus).released["subject"]["subject_ref"]
    assert first == decide("ForeignFighterReport", record, same).released["subject"]["subject_ref"]
    assert first != decide("ForeignFighterReport", record, other).released["subject"]["subject_ref"]
    # "p-" + the first 32 hex digits of HMAC-SHA256(partner key, value), computed here independently
    expected = "p-" + hmac.new(b"a" * 32, record["subject"]["subject_ref"].encode("utf-8"), "sha256").hexdigest()[:32]
    assert first == expected


def test_without_a_key_a_pseudonymising_rule_withholds(tmp_path):
    path = tmp_path / "RUS.yaml"
    path.write_text(HEADER + textwrap.dedent("""\
        rules:
          ForeignFighterReport:
            - id: f
              fields: {subject.subject_ref: pseudonymise}
          AirTrack:
            - id: t
              fields: {track_id: keep}
        """))
    policy = load_policy(path)  # no secret store: compiles (for `policy check`) but cannot pseudonymise
    decision = decide("ForeignFighterReport", rec("ForeignFighterReport"), policy)
    assert (decision.decision, decision.rule) == ("WITHHOLD", "pseudonymisation-key-missing")
    assert decide("AirTrack", rec("AirTrack"), policy).decision == "RELEASE"


def test_version_changes_with_the_file(tmp_path):
    body = """\
        rules:
          AirTrack:
            - id: t
              fields: {track_id: keep}
        """
    first = make_policy(tmp_path, body).version
    assert first == make_policy(tmp_path, body).version
    assert first != make_policy(tmp_path, body + "# a comment\n").version


def test_every_example_type_can_be_released_whole(tmp_path):
    """keep on every top-level field gives back the record (modulo label projection) for every type."""
    lines = ["rules:"]
    for type_name in schemas.MESSAGE_TYPES:
        lines.append(f"  {type_name}:\n    - id: all-{type_name.lower()}\n      fields:")
        for field in schemas.load_schema(type_name)["fields"]:
            if field["name"] != "label":
                lines.append(f"        {field['name']}: keep")
    policy = make_policy(tmp_path, "\n".join(lines) + "\n")
    for type_name in schemas.MESSAGE_TYPES:
        record = rec(type_name)
        released = decide(type_name, record, policy).released
        assert {k: v for k, v in released.items() if k != "label"} == {k: v for k, v in record.items() if k != "label"}
        roundtrip(policy, type_name, released)

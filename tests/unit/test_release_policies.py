"""The demo policies (deploy/policies/RUS.yaml, USA.yaml) encode the brief's table, row by row."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
from datetime import datetime, timezone

import fastavro
import pytest

import schemas
from release import SecretStore, decide, load_policies, released_key
from core import REPO_ROOT
from schemas.examples import deconfliction_alert, example
from schemas.models import to_avro

pytestmark = pytest.mark.unit

POLICY_DIR = REPO_ROOT / "deploy" / "policies"
KEYS = {"RUS": bytes(range(32)), "USA": bytes(range(100, 132))}
UTC = timezone.utc
LABEL_KEYS = {"classification", "created_at", "message_id"}


@pytest.fixture(scope="module")
def policies():
    return load_policies(POLICY_DIR, SecretStore.in_memory(KEYS))


def rec(type_name: str, **changes) -> dict:
    """The example record of ``type_name`` as fastavro would read it, with top-level changes."""
    record = to_avro(example(type_name))
    record.update(changes)
    return record


def rec_for(type_name: str, partner: str) -> dict:
    """The example of ``type_name`` that ``partner``'s policy releases: an alert is about one partner (the example
    alert is RUS's; USA's is its copy about a USA flight), the other types' examples go to both."""
    return to_avro(deconfliction_alert(partner)) if type_name == "DeconflictionAlert" else rec(type_name)


def with_label(record: dict, **changes) -> dict:
    record = copy.deepcopy(record)
    record["label"].update(changes)
    return record


def release(policies, partner: str, type_name: str, record: dict) -> dict:
    decision = decide(type_name, record, policies[partner])
    assert decision.decision == "RELEASE", decision
    assert decision.partner == partner
    roundtrip(policies[partner], type_name, decision.released)
    return decision.released


def withhold(policies, partner: str, type_name: str, record: dict):
    decision = decide(type_name, record, policies[partner])
    assert decision.decision == "WITHHOLD", decision
    assert decision.released is None
    return decision


def roundtrip(policy, type_name: str, released: dict) -> dict:
    """Write ``released`` with the partner's derived schema and read it back (strict: no defaults)."""
    parsed = fastavro.parse_schema(policy.derived_schema(type_name))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, released, strict=True)
    buffer.seek(0)
    back = fastavro.schemaless_reader(buffer, parsed)
    assert _normalise(back) == _normalise(released)
    return back


def _normalise(value):
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return str(value) if type(value).__name__ == "UUID" else value


def hmac_pseudonym(key: bytes, value: str) -> str:
    return "p-" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def without_label(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "label"}


# --------------------------------------------------------------------------- partners and labels


def test_demo_partners_and_their_settings(policies):
    assert set(policies) == {"RUS", "USA", "air", "intel", "naval"}
    assert {code for code, p in policies.items() if p.is_partner} == {"RUS", "USA"}
    rus, usa = policies["RUS"], policies["USA"]
    assert (rus.ceiling, usa.ceiling) == ("CONFIDENTIAL", "SECRET")
    assert rus.sets == {"designated": frozenset({"daesh"})}
    assert usa.sets == {"designated": frozenset({"daesh", "al-nusra"})}
    assert rus.require_releasable_to and usa.require_releasable_to
    assert rus.types == usa.types == schemas.MESSAGE_TYPES
    assert rus.pseudonymises and rus.has_key
    assert len(rus.version) == 16 and rus.version == hashlib.sha256((POLICY_DIR / "RUS.yaml").read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("classification, rus_released, usa_released", [
    ("UNCLASSIFIED", True, True),
    ("RESTRICTED", True, True),
    ("CONFIDENTIAL", True, True),
    ("SECRET", False, True),
    ("TOP_SECRET", False, False),
])
@pytest.mark.parametrize("type_name", schemas.MESSAGE_TYPES)
def test_classification_ceiling(policies, type_name, classification, rus_released, usa_released):
    for partner, expected in (("RUS", rus_released), ("USA", usa_released)):
        record = with_label(rec_for(type_name, partner), classification=classification,
                            releasable_to=["FRA", "USA", "RUS"])
        if type_name == "ForeignFighterReport":  # a subject both partners get
            record["subject"]["nationality"] = ["RUS", "USA"]
        decision = decide(type_name, record, policies[partner])
        if expected:
            assert decision.decision == "RELEASE", (partner, decision)
        else:
            assert decision.decision == "WITHHOLD"
            assert decision.rule == "label-ceiling"
            ceiling = policies[partner].ceiling
            assert decision.reason == f"classification {classification} above ceiling {ceiling}"


@pytest.mark.parametrize("type_name", schemas.MESSAGE_TYPES)
def test_releasable_to_must_name_the_partner(policies, type_name):
    record = rec_for(type_name, "USA")
    if type_name == "ForeignFighterReport":
        record["subject"]["nationality"] = ["RUS", "USA"]
    only_usa = with_label(record, releasable_to=["FRA", "USA"])
    decision = withhold(policies, "RUS", type_name, only_usa)
    assert decision.rule == "label-releasability"
    assert decision.reason == "releasable_to does not name RUS"
    release(policies, "USA", type_name, only_usa)
    nobody = with_label(record, releasable_to=["FRA"])
    for partner in ("RUS", "USA"):
        assert withhold(policies, partner, type_name, nobody).rule == "label-releasability"


def test_missing_label_or_unknown_classification_is_withheld(policies):
    record = rec("AirTrack")
    del record["label"]
    assert withhold(policies, "RUS", "AirTrack", record).rule == "label-ceiling"
    record = rec("AirTrack")
    record["label"] = None
    assert withhold(policies, "RUS", "AirTrack", record).rule == "label-ceiling"
    for bad in ("COSMIC", None, "confidential", ""):
        decision = withhold(policies, "USA", "AirTrack", with_label(rec("AirTrack"), classification=bad))
        assert decision.rule == "label-ceiling"
    record = rec("AirTrack")
    del record["label"]["releasable_to"]
    assert withhold(policies, "RUS", "AirTrack", record).rule == "label-releasability"


@pytest.mark.parametrize("type_name", [t for t in schemas.MESSAGE_TYPES if t != "ForeignFighterReport"])
@pytest.mark.parametrize("partner", ["RUS", "USA"])
def test_released_label_keeps_classification_time_and_id_only(policies, partner, type_name):
    record = rec_for(type_name, partner)
    released = release(policies, partner, type_name, record)
    assert set(released["label"]) == LABEL_KEYS
    assert released["label"]["classification"] == record["label"]["classification"]
    assert released["label"]["created_at"] == record["label"]["created_at"]
    assert released["label"]["message_id"] == record["label"]["message_id"]


# --------------------------------------------------------------------------- 1. air deconfliction


def test_air_mission_plan_rus(policies):
    record = rec("AirMissionPlan")
    released = release(policies, "RUS", "AirMissionPlan", record)
    assert set(released) == {"label", "sortie_id", "callsign", "aircraft_type", "aircraft_count", "status",
                             "time_windows", "route"}
    for name in ("callsign", "aircraft_type", "aircraft_count", "status", "time_windows", "route"):
        assert released[name] == record[name], name  # exact, never blurred
    assert released["sortie_id"] == hmac_pseudonym(KEYS["RUS"], record["sortie_id"])
    text = json.dumps(released, default=str)
    for withheld in (record["mission_purpose"], record["target_area"], record["base"], *record["weapons_loadout"]):
        assert withheld not in text


def test_air_mission_plan_usa_adds_mission_purpose_only(policies):
    record = rec("AirMissionPlan")
    released = release(policies, "USA", "AirMissionPlan", record)
    rus = release(policies, "RUS", "AirMissionPlan", record)
    assert set(released) == set(rus) | {"mission_purpose"}
    assert released["mission_purpose"] == record["mission_purpose"]
    assert released["route"] == record["route"]
    for name in ("target_area", "weapons_loadout", "base", "carrier_based"):
        assert name not in released


@pytest.mark.parametrize("partner", ["RUS", "USA"])
def test_air_tracks_are_exact(policies, partner):
    record = rec("AirTrack")
    released = release(policies, partner, "AirTrack", record)
    expected = without_label(record)
    expected["sortie_id"] = hmac_pseudonym(KEYS[partner], record["sortie_id"])
    assert without_label(released) == expected
    # the track's sortie pseudonym matches the plan's: deconfliction can correlate them
    plan = release(policies, partner, "AirMissionPlan", rec("AirMissionPlan"))
    assert released["sortie_id"] == plan["sortie_id"]
    # a track without a sortie stays valid
    assert release(policies, partner, "AirTrack", rec("AirTrack", sortie_id=None))["sortie_id"] is None


# --------------------------------------------------------------------------- 2. maritime


def test_maritime_tracks(policies):
    record = rec("MaritimeTrack")
    rus = release(policies, "RUS", "MaritimeTrack", record)
    usa = release(policies, "USA", "MaritimeTrack", record)
    exact = {"ship_id", "time", "position", "course_deg", "speed_kt"}
    assert set(rus) == {"label"} | exact
    assert set(usa) == {"label", "mission"} | exact
    for name in exact:
        assert rus[name] == usa[name] == record[name]
    assert usa["mission"] == record["mission"]
    assert "readiness" not in rus and "readiness" not in usa


# --------------------------------------------------------------------------- 3. strike results


def test_strike_on_designated_group_rus_is_coarsened(policies):
    record = rec("StrikeReport")  # daesh, 34.9871 / 40.5612 at 07:52:30
    assert record["time"] == datetime(2015, 11, 23, 7, 52, 30, tzinfo=UTC)
    released = release(policies, "RUS", "StrikeReport", record)
    assert released["position"] == {"lat": 34.9, "lon": 40.5}
    assert released["time"] == datetime(2015, 11, 23, 7, 0, tzinfo=UTC)
    assert set(released) == {"label", "strike_id", "time", "position", "target_category", "group_id",
                             "assessed_effect"}
    for name in ("target_category", "group_id", "assessed_effect", "strike_id"):
        assert released[name] == record[name]
    decision = decide("StrikeReport", record, policies["RUS"])
    assert decision.rule == "rus-strike-designated"


def test_strike_on_designated_group_usa_is_exact(policies):
    record = rec("StrikeReport")
    released = release(policies, "USA", "StrikeReport", record)
    assert released["position"] == record["position"]
    assert released["time"] == record["time"]
    assert released["collateral_assessment"] == record["collateral_assessment"]
    for name in ("weapon", "launch_platform", "sortie_id"):
        assert name not in released


@pytest.mark.parametrize("lat, lon, expected", [
    (34.9871, 40.5612, (34.9, 40.5)),
    (34.9999, 40.0001, (34.9, 40.0)),
    (35.0, 36.3, (35.0, 36.3)),        # already on the grid: unchanged
    (-0.05, -0.05, (-0.1, -0.1)),      # south-west corner, also below zero
    (-33.95, 151.25, (-34.0, 151.2)),
    (90.0, 180.0, (90.0, 180.0)),
])
def test_strike_position_grid_rus(policies, lat, lon, expected):
    released = release(policies, "RUS", "StrikeReport", rec("StrikeReport", position={"lat": lat, "lon": lon}))
    assert (released["position"]["lat"], released["position"]["lon"]) == expected


@pytest.mark.parametrize("time, expected", [
    (datetime(2015, 11, 23, 7, 59, 59, 999000, tzinfo=UTC), datetime(2015, 11, 23, 7, 0, tzinfo=UTC)),
    (datetime(2015, 11, 23, 8, 0, tzinfo=UTC), datetime(2015, 11, 23, 8, 0, tzinfo=UTC)),
    (datetime(2015, 11, 23, 0, 0, 0, 1000, tzinfo=UTC), datetime(2015, 11, 23, 0, 0, tzinfo=UTC)),
])
def test_strike_time_to_the_hour_rus(policies, time, expected):
    released = release(policies, "RUS", "StrikeReport", rec("StrikeReport", time=time))
    assert released["time"] == expected
    assert released["time"].tzinfo is not None and released["time"].utcoffset().total_seconds() == 0


def test_strike_on_al_nusra_goes_to_usa_only(policies):
    record = rec("StrikeReport", group_id="al-nusra")
    decision = withhold(policies, "RUS", "StrikeReport", record)
    assert decision.rule == "default-deny"
    assert decision.reason == "StrikeReport: no rule matched (rus-strike-designated: group_id not in set designated)"
    assert "al-nusra" not in decision.reason
    assert release(policies, "USA", "StrikeReport", record)["group_id"] == "al-nusra"


@pytest.mark.parametrize("group", ["hts", "ypg", "ahrar-al-sham", "fsa"])
@pytest.mark.parametrize("type_name", ["StrikeReport", "GroupLocationReport"])
def test_non_designated_groups_reach_no_partner(policies, type_name, group):
    record = rec(type_name, group_id=group)
    for partner in ("RUS", "USA"):
        decision = withhold(policies, partner, type_name, record)
        assert decision.rule == "default-deny"
        assert group not in decision.reason
        assert "group_id not in set designated" in decision.reason


# --------------------------------------------------------------------------- 4. group locations


def test_group_location_rus_coarsened_without_sources(policies):
    record = rec("GroupLocationReport")  # daesh at 35.9523 / 39.0087
    released = release(policies, "RUS", "GroupLocationReport", record)
    assert released["position"] == {"lat": 35.95, "lon": 39.0}
    assert set(released) == {"label", "report_id", "group_id", "time", "position", "confidence",
                             "observed_activity"}
    assert released["time"] == record["time"]
    assert release(policies, "RUS", "GroupLocationReport",
                   rec("GroupLocationReport", position={"lat": 33.3999, "lon": 36.2751}))["position"] == \
        {"lat": 33.35, "lon": 36.25}


def test_group_location_usa_exact_without_sources(policies):
    record = rec("GroupLocationReport", group_id="al-nusra")
    released = release(policies, "USA", "GroupLocationReport", record)
    assert released["position"] == record["position"]
    assert released["radius_m"] == record["radius_m"]
    assert "source_type" not in released and "source_reliability" not in released
    assert withhold(policies, "RUS", "GroupLocationReport", record).rule == "default-deny"


# --------------------------------------------------------------------------- 5. foreign fighters


def ffr(nationality, languages, affiliation="daesh") -> dict:
    record = rec("ForeignFighterReport", affiliation=affiliation)
    record["subject"]["nationality"] = list(nationality)
    record["subject"]["languages"] = list(languages)
    return record


@pytest.mark.parametrize("nationality, languages, rus, usa", [
    (["RUS"], ["ru", "ar"], True, False),
    (["KAZ"], ["ru"], True, False),        # Russian-speaking, not a Russian national
    (["RUS"], ["ce"], True, False),        # Russian national, not listed as Russian-speaking
    (["USA"], ["en"], False, True),
    (["USA", "RUS"], ["en"], True, True),
    (["FRA"], ["fr", "ar"], False, False),
    (["GBR"], ["en"], False, False),
])
def test_foreign_fighters_go_to_the_partner_they_concern(policies, nationality, languages, rus, usa):
    record = ffr(nationality, languages)
    for partner, expected in (("RUS", rus), ("USA", usa)):
        if expected:
            release(policies, partner, "ForeignFighterReport", record)
        else:
            decision = withhold(policies, partner, "ForeignFighterReport", record)
            assert decision.rule == "default-deny"
            assert record["subject"]["name"] not in decision.reason
            assert record["subject"]["subject_ref"] not in decision.reason


def test_foreign_fighter_personal_data(policies):
    record = ffr(["RUS", "USA"], ["ru", "en"])
    rus = release(policies, "RUS", "ForeignFighterReport", record)
    usa = release(policies, "USA", "ForeignFighterReport", record)
    subject = record["subject"]
    for partner, released in (("RUS", rus), ("USA", usa)):
        assert set(released["subject"]) == {"subject_ref", "nationality", "languages"}
        text = json.dumps(released, default=str)
        assert subject["name"] not in text and "date_of_birth" not in text and "1991" not in text
        assert subject["subject_ref"] not in text and record["report_id"] not in text
        assert released["subject"]["subject_ref"] == hmac_pseudonym(KEYS[partner], subject["subject_ref"])
        assert released["report_id"] == hmac_pseudonym(KEYS[partner], record["report_id"])
        # no identifier shared between partners: no message id either
        assert set(released["label"]) == {"classification", "created_at"}
        assert released["affiliation"] == "daesh"
    # USA exact; RUS: times to the day, area centre on a 0.5 deg grid, no free text (nothing record-unique shared)
    assert usa["last_known_area"] == record["last_known_area"] and usa["time"] == record["time"]
    assert rus["last_known_area"] == {"center": {"lat": 35.5, "lon": 39.0}}
    assert rus["time"] == datetime(2015, 11, 22, tzinfo=UTC)
    assert rus["label"]["created_at"] == datetime(2015, 11, 23, tzinfo=UTC)
    assert "travel_indicators" not in rus and usa["travel_indicators"] == record["travel_indicators"]
    assert rus["subject"]["subject_ref"] != usa["subject"]["subject_ref"]
    assert rus["report_id"] != usa["report_id"]
    # stable for one partner
    again = release(policies, "RUS", "ForeignFighterReport", copy.deepcopy(record))
    assert again["subject"]["subject_ref"] == rus["subject"]["subject_ref"]
    # keyed by the pseudonym, never by the internal reference
    assert released_key("ForeignFighterReport", rus) == rus["subject"]["subject_ref"]


@pytest.mark.parametrize("partner, nationality", [("RUS", ["RUS"]), ("USA", ["USA"])])
def test_foreign_fighter_of_a_non_designated_group_hides_the_group(policies, partner, nationality):
    # Withheld whole: a release with affiliation, area and travel indicators null (by a second rule)
    # told the partner that the group is not designated.
    record = ffr(nationality, ["en"], affiliation="hts")
    record["travel_indicators"] = ["Joined hts near Idlib"]
    decision = withhold(policies, partner, "ForeignFighterReport", record)
    assert decision.rule == "default-deny"
    assert "affiliation not in set designated" in decision.reason
    assert "hts" not in decision.reason.lower()
    assert [r.id for r in policies[partner].plans["ForeignFighterReport"].rules] == \
        [f"{partner.lower()}-foreign-fighter-designated"]


# --------------------------------------------------------------------------- 6. logistics


@pytest.mark.parametrize("partner", ["RUS", "USA"])
def test_logistics_observations_released_whole(policies, partner):
    record = rec("LogisticsObservation")
    released = release(policies, partner, "LogisticsObservation", record)
    assert without_label(released) == without_label(record)


# --------------------------------------------------------------------------- derived schemas and keys

DROPPED = {
    "RUS": {
        "AirMissionPlan": ["mission_purpose", "target_area", "weapons_loadout", "base", "carrier_based"],
        "AirTrack": [],
        "MaritimeTrack": ["mission", "readiness", "ship_name", "ship_class"],
        "StrikeReport": ["weapon", "launch_platform", "collateral_assessment", "sortie_id"],
        "GroupLocationReport": ["source_type", "source_reliability", "radius_m"],
        "ForeignFighterReport": ["date_of_birth", "message_id"],
        "LogisticsObservation": [],
        "DeconflictionAlert": [],
    },
    "USA": {
        "AirMissionPlan": ["target_area", "weapons_loadout", "base", "carrier_based"],
        "AirTrack": [],
        "MaritimeTrack": ["readiness", "ship_name", "ship_class"],
        "StrikeReport": ["weapon", "launch_platform", "sortie_id"],
        "GroupLocationReport": ["source_type", "source_reliability"],
        "ForeignFighterReport": ["date_of_birth", "message_id"],
        "LogisticsObservation": [],
        "DeconflictionAlert": [],
    },
}


@pytest.mark.parametrize("partner", ["RUS", "USA"])
@pytest.mark.parametrize("type_name", schemas.MESSAGE_TYPES)
def test_derived_schema(policies, partner, type_name):
    policy = policies[partner]
    derived = policy.derived_schema(type_name)
    text = json.dumps(derived)
    assert derived["name"] == type_name
    assert derived["namespace"] == f"liaison.bus.partner.{partner.lower()}"
    assert '"doc"' not in text
    assert "liaison.bus\"" not in text and '"namespace": "liaison.bus"' not in text
    for name in ("releasable_to", "caveats", "originator", *DROPPED[partner][type_name]):
        assert f'"{name}"' not in text, name
    fastavro.parse_schema(derived)
    record = rec_for(type_name, partner)
    if type_name == "ForeignFighterReport":
        record["subject"]["nationality"] = [partner]
    roundtrip(policy, type_name, release(policies, partner, type_name, record))
    # the internal schema is untouched and the copy is fresh
    derived["fields"].clear()
    assert policy.derived_schema(type_name)["fields"]


@pytest.mark.parametrize("partner", ["RUS", "USA"])
def test_released_keys_come_from_the_released_view(policies, partner):
    expected_plain = {"AirTrack": "TN-40217", "MaritimeTrack": "R91", "StrikeReport": "STK-20151123-007",
                      "GroupLocationReport": "daesh", "LogisticsObservation": "Deir ez-Zor / al-Omar fields"}
    for type_name, key in expected_plain.items():
        assert released_key(type_name, release(policies, partner, type_name, rec(type_name))) == key
    plan = rec("AirMissionPlan")
    key = released_key("AirMissionPlan", release(policies, partner, "AirMissionPlan", plan))
    assert key == hmac_pseudonym(KEYS[partner], plan["sortie_id"]) != plan["sortie_id"]


# --------------------------------------------------------------------------- 7. deconfliction alerts

ALERT_VIEW = {"label", "alert_id", "revision", "status", "cleared_reason", "kind", "partner", "ours", "theirs", "volume",
              "window", "closest_approach", "lateral_nm", "vertical_ft", "minima"}


@pytest.mark.parametrize("partner,other", [("RUS", "USA"), ("USA", "RUS")])
def test_a_partner_gets_its_own_alerts_only_with_our_sortie_pseudonymised(policies, partner, other):
    record = rec_for("DeconflictionAlert", partner)
    released = release(policies, partner, "DeconflictionAlert", record)
    assert set(released) == ALERT_VIEW and set(released["label"]) == LABEL_KEYS
    for name in ALERT_VIEW - {"label", "ours"}:
        assert released[name] == record[name], name        # exact: safety data is never blurred
    ours = record["ours"]
    assert released["ours"] == {**ours, "sortie_id": hmac_pseudonym(KEYS[partner], ours["sortie_id"])}
    # the same pseudonym as the plan and the track of that sortie: the partner correlates the alert with them
    plan = release(policies, partner, "AirMissionPlan", rec("AirMissionPlan"))
    assert released["ours"]["sortie_id"] == plan["sortie_id"]
    assert ours["sortie_id"] not in json.dumps(released, default=str)
    assert released_key("DeconflictionAlert", released) == str(record["alert_id"])
    # another partner's alert, even REL TO both: withheld (no rule matches it: default deny)
    both = with_label(rec_for("DeconflictionAlert", other), releasable_to=["FRA", "RUS", "USA"])
    assert withhold(policies, partner, "DeconflictionAlert", both).rule == "default-deny"


def test_our_air_component_gets_every_alert_whole_naval_and_intel_none(policies):
    for partner in ("RUS", "USA"):
        record = rec_for("DeconflictionAlert", partner)
        decision = decide("DeconflictionAlert", record, policies["air"])
        assert decision.decision == "RELEASE" and _normalise(decision.released) == _normalise(record)
        for component in ("naval", "intel"):
            assert decide("DeconflictionAlert", record, policies[component]).decision == "WITHHOLD"

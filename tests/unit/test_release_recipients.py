"""Recipients beyond partners: component policies, partner-origin sources (from_partners), the third-party rule,
reciprocity pauses; the exchange schemas a partner sends in."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import fastavro
import pytest

from core.topics import recipient_topic
from release import PolicyError, SecretStore, decide, load_policies
from release.exchange import inbound_schema, origin_schema
from schemas.examples import example
from schemas.models import to_avro

pytestmark = pytest.mark.unit

POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "policies"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    store = SecretStore(tmp_path_factory.mktemp("secrets"))
    for code in ("RUS", "USA"):
        store.ensure(code)
    return store


@pytest.fixture(scope="module")
def policies(secrets):
    return load_policies(POLICIES, secrets)


def origin_record(policies, partner: str, type_name: str, **label) -> dict:
    """What the ingress guard writes for a record ``partner`` sent: its view of our example, relabelled."""
    d = decide(type_name, to_avro(example(type_name)), policies[partner])
    assert d.is_release, d.reason
    record = dict(d.released)
    record["label"] = {"classification": "CONFIDENTIAL", "releasable_to": ["FRA"], "caveats": [f"ORIGIN {partner}"],
                       "originator": f"partner.{partner.lower()}", "created_at": d.released["label"]["created_at"],
                       "message_id": "7d7b6c9e-1111-4222-8333-444455556666", **label}
    schema = fastavro.parse_schema(origin_schema(policies[partner], type_name))
    fastavro.schemaless_writer(io.BytesIO(), schema, record)  # it fits the origin schema
    return record


def test_every_recipient_has_one_policy_and_its_sources(policies):
    assert {code: p.kind for code, p in policies.items()} == {
        "RUS": "partner", "USA": "partner", "naval": "component", "air": "component", "intel": "component"}
    assert policies["naval"].sources == ("AirTrack", "RUS/AirTrack", "USA/AirTrack")
    assert "ForeignFighterReport" not in policies["naval"].sources and "ForeignFighterReport" not in \
        policies["air"].sources
    # of our components, only the intelligence cell gets fighter reports, partner strike results and partner group
    # locations; and no partner gets another partner's records
    for source in ("ForeignFighterReport", "RUS/ForeignFighterReport", "RUS/StrikeReport", "RUS/GroupLocationReport"):
        assert [code for code, p in policies.items() if source in p.sources and not p.is_partner] == ["intel"]
    assert not [s for p in policies.values() if p.is_partner for s in p.sources if "/" in s]
    assert recipient_topic("naval", "RUS/AirTrack") == "liaison.component.naval.origin.rus.air.track"
    assert policies["naval"].derived_schema("RUS/AirTrack")["namespace"] == "liaison.bus.component.naval.origin.rus"


def test_the_naval_feed_is_the_air_picture_in_its_area(policies):
    track = to_avro(example("AirTrack"))
    inside = dict(track, position={"lat": 34.0, "lon": 33.5})
    outside = dict(track, position={"lat": 30.0, "lon": 38.0})
    assert decide("AirTrack", inside, policies["naval"]).is_release
    out = decide("AirTrack", outside, policies["naval"])
    assert (out.decision, out.rule) == ("WITHHOLD", "default-deny")
    theirs = origin_record(policies, "RUS", "AirTrack")
    theirs["position"] = {"lat": 35.4, "lon": 35.95}  # over Hmeimim
    d = decide("RUS/AirTrack", theirs, policies["naval"])
    assert d.is_release and d.released["label"]["originator"] == "partner.rus"
    fighter = decide("ForeignFighterReport", to_avro(example("ForeignFighterReport")), policies["naval"])
    assert (fighter.decision, fighter.rule) == ("WITHHOLD", "default-deny")


def test_a_partners_record_never_reaches_another_partner_by_default(policies):
    for type_name in policies["RUS"].types:
        record = origin_record(policies, "RUS", type_name, releasable_to=["FRA", "USA"])
        d = decide(f"RUS/{type_name}", record, policies["USA"])
        assert (d.decision, d.rule) == ("WITHHOLD", "default-deny"), type_name


THIRD_PARTY = """
from_partners:
  RUS:
    StrikeReport:
      - id: usa-rus-strike
        fields: {strike_id: keep, time: keep, position: keep, target_category: keep, group_id: keep,
                 assessed_effect: keep}
"""


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    shutil.copytree(POLICIES, d)
    return d


def test_the_third_party_rule_needs_both_policies(tmp_path, secrets):
    d = _copy(tmp_path)
    (d / "USA.yaml").write_text((d / "USA.yaml").read_text() + THIRD_PARTY)
    with pytest.raises(PolicyError) as info:
        load_policies(d, secrets)
    text = str(info.value)
    assert "USA.yaml" in text and "from_partners.RUS.StrikeReport" in text and "third-party rule" in text
    assert "onward: {StrikeReport: [USA]}" in text
    # RUS's policy lets its strike results go on to USA: now USA's rule compiles, for that type only
    (d / "RUS.yaml").write_text((d / "RUS.yaml").read_text() + "\nonward:\n  StrikeReport: [USA]\n")
    policies = load_policies(d, secrets)
    assert [s for s in policies["USA"].sources if "/" in s] == ["RUS/StrikeReport"]
    strike = origin_record(policies, "RUS", "StrikeReport", releasable_to=["FRA", "USA"])
    d_usa = decide("RUS/StrikeReport", strike, policies["USA"])
    assert d_usa.is_release and d_usa.rule == "usa-rus-strike"
    # the record's own label must allow it too: REL TO without USA is withheld
    not_rel = origin_record(policies, "RUS", "StrikeReport", releasable_to=["FRA"])
    assert decide("RUS/StrikeReport", not_rel, policies["USA"]).rule == "label-releasability"
    group = origin_record(policies, "RUS", "GroupLocationReport", releasable_to=["FRA", "USA"])
    assert decide("RUS/GroupLocationReport", group, policies["USA"]).rule == "default-deny"


@pytest.mark.parametrize("category,words", [
    ("air_deconfliction", "safety data"), ("maritime_deconfliction", "safety data"), ("fighters", "unknown category")])
def test_a_pause_of_deconfliction_data_is_refused(tmp_path, secrets, category, words):
    d = _copy(tmp_path)
    text = (d / "USA.yaml").read_text() + f"\nreciprocity:\n  - {{category: {category}, min_ratio: 0.5}}\n"
    (d / "USA.yaml").write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policies(d, secrets)
    line = text.splitlines().index(f"  - {{category: {category}, min_ratio: 0.5}}") + 1
    assert f"USA.yaml:{line}: reciprocity.0.category" in str(info.value) and words in str(info.value)


def test_a_paused_category_is_withheld_with_its_reason(policies):
    record = to_avro(example("ForeignFighterReport"))
    record["subject"]["nationality"] = ["RUS"]
    assert decide("ForeignFighterReport", record, policies["RUS"]).is_release
    why = "reciprocity: RUS gave 0.05 of what it took in foreign_fighters over the week (< 0.2)"
    d = decide("ForeignFighterReport", record, policies["RUS"], {"foreign_fighters": why})
    assert (d.decision, d.rule, d.reason, d.released) == ("WITHHOLD", "reciprocity-pause", why, None)
    # another category is not affected
    track = to_avro(example("AirTrack"))
    assert decide("AirTrack", track, policies["RUS"], {"foreign_fighters": why}).is_release


def test_a_partner_sends_in_the_shape_it_receives_with_the_whole_label(policies):
    rus = policies["RUS"]
    inbound = inbound_schema(rus, "StrikeReport")
    derived = rus.derived_schema("StrikeReport")
    assert [f["name"] for f in inbound["fields"]] == [f["name"] for f in derived["fields"]]
    label = next(f for f in inbound["fields"] if f["name"] == "label")
    assert label["type"][0] == "null" and label["default"] is None
    assert [f["name"] for f in label["type"][1]["fields"]] == [
        "classification", "releasable_to", "caveats", "originator", "created_at", "message_id"]
    assert inbound["namespace"] == "liaison.bus.inbound.rus"
    origin = origin_schema(rus, "StrikeReport")
    assert next(f for f in origin["fields"] if f["name"] == "label")["type"]["name"] == "SecurityLabel"
    fastavro.parse_schema(inbound), fastavro.parse_schema(origin)
    with pytest.raises(ValueError):
        inbound_schema(policies["naval"], "AirTrack")

"""Alert records: valid against the draft DeconflictionAlert schema (Avro round trip), the label rules, and no
sentinel of our mission purpose, target, loadout or base anywhere in them."""

from __future__ import annotations

import io
import json

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from consumers.deconfliction import State, alert_record, alert_schema, geometry as geo
from consumers.deconfliction.alerts import CAVEAT
from tests.unit.deconfliction_support import C, SENTINELS, T0, plan, straight, towards, track

pytestmark = pytest.mark.unit

SCHEMA = parse_schema(alert_schema())


def _roundtrip(record: dict) -> dict:
    buf = io.BytesIO()
    schemaless_writer(buf, SCHEMA, record)
    raw = buf.getvalue()
    for v in SENTINELS.values():
        assert (v if isinstance(v, str) else v[0]).encode() not in raw
    return schemaless_reader(io.BytesIO(raw), SCHEMA)


def _scenario(rel_ours=("FRA", "RUS", "USA"), cls_theirs="CONFIDENTIAL"):
    t = T0 + 3_600_000
    ours = plan("A1", *straight(C, 90.0, 100_000, 250.0, t), callsign="RAFALE 21", rel=rel_ours)
    theirs = plan("R1", *straight(C, 0.0, 100_000, 250.0, t), ours=False, callsign="FALCON 11")
    theirs["label"]["classification"] = cls_theirs
    pa, ha = towards(C, 270.0, 30_000)
    pb, hb = towards(C, 90.0, 30_000)
    return [("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs),
            ("AirTrack", track("T1", pa, ha, 400, 20000, T0, callsign="RAFALE 21", sortie_id="A1", rel=rel_ours)),
            ("RUS/AirTrack", track("R9", pb, hb, 400, 20000, T0, callsign="FALCON 11"))]


def test_every_emission_encodes_with_the_draft_schema_and_says_where_when_and_who():
    s = State()
    emissions = s.step(_scenario(), T0).emissions + s.step([], T0 + 10_000_000).emissions
    assert {e.status for e in emissions} == {"NEW", "CLEARED"}
    for e in emissions:
        rec = _roundtrip(alert_record(e, T0, s.params))
        assert str(rec["alert_id"]) == e.alert.alert_id and rec["status"] == e.status and rec["partner"] == "RUS"
        assert rec["ours"]["callsign"] == "RAFALE 21" and rec["theirs"]["callsign"] == "FALCON 11"
        assert rec["ours"]["nation"] == "FRA" and rec["theirs"]["nation"] == "RUS"
        assert rec["label"]["caveats"] == [CAVEAT] and rec["label"]["originator"] == "air.deconfliction"
        assert rec["label"]["releasable_to"] == ["FRA", "RUS"]
        assert rec["volume"]["floor_ft"] <= rec["volume"]["ceiling_ft"]
        assert rec["window"]["start"] <= rec["window"]["end"]
        if rec["kind"] == "TRACK_TRACK" and rec["status"] == "NEW":
            assert rec["closest_approach"]["time_to_cpa_s"] == pytest.approx(30_000 / (400 * geo.KT_MS), abs=0.5)
        elif rec["kind"] != "TRACK_TRACK":
            assert rec["closest_approach"] is None
        assert (rec["cleared_reason"] is None) == (rec["status"] != "CLEARED")
    text = json.dumps([alert_record(e, T0, s.params) for e in emissions], default=str)
    for v in SENTINELS.values():
        assert (v if isinstance(v, str) else v[0]) not in text


def test_the_label_takes_the_higher_classification_and_names_the_partner_only_if_ours_did():
    s = State()
    e = s.step(_scenario(rel_ours=("FRA", "USA"), cls_theirs="SECRET"), T0).emissions[0]
    rec = alert_record(e, T0, s.params)
    assert rec["label"]["classification"] == "SECRET"
    assert rec["label"]["releasable_to"] == ["FRA"]  # the forwarder withholds it from RUS


def test_message_ids_name_one_emission():
    s = State()
    new = s.step(_scenario(), T0).emissions
    cleared = s.step([], T0 + 10_000_000).emissions
    ids = [e.message_id for e in new + cleared]
    assert len(set(ids)) == len(ids)
    assert alert_record(new[0], T0, s.params)["label"]["message_id"] == new[0].message_id

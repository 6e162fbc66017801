"""alerts.alert_record emits exactly schemas/DeconflictionAlert.avsc (a message type of the bus): every kind and
status encodes with fastavro (strict), reads back, and validates as the DeconflictionAlert model; the window is
never empty; no mission, target, loadout or base."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import fastavro
import pytest

import schemas
from consumers.deconfliction import State, alert_record, alert_schema
from consumers.deconfliction.params import Params
from schemas.models import DeconflictionAlert, from_avro, to_avro
from tests.unit.deconfliction_support import C, SENTINELS, T0, plan, straight, towards, track

pytestmark = pytest.mark.unit

V = 250.0
T_CROSS = T0 + 3_600_000


def _emissions():
    """(now_ms, emission): a plan/plan conflict and its CLEARED, head-on tracks, a track into a corridor."""
    out = []
    s = State()
    ours = plan("A1", *straight(C, 90.0, 100_000, V, T_CROSS), (20000, 25000), rel=("FRA", "RUS"))
    theirs = plan("R1", *straight(C, 0.0, 100_000, V, T_CROSS), (22000, 27000), ours=False)
    out += [(T0, e) for e in s.step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0).emissions]
    end = out[-1][1].alert.conflict.end_ms
    out += [(end + 1, e) for e in s.step([], end + 1).emissions]  # PASSED
    s = State()  # head-on tracks (closest approach), ours REL TO FRA only: the alert stays with us
    a, ha = towards(C, 270.0, 30_000)
    b, hb = towards(C, 90.0, 30_000)
    out += [(T0, e) for e in s.step([("AirTrack", track("T1", a, ha, 400, 20000, T0, rel=("FRA",))),
                                     ("RUS/AirTrack", track("R9", b, hb, 400, 20000, T0))], T0).emissions]
    s = State()  # their track into our corridor
    corridor = plan("A2", *straight(C, 0.0, 100_000, V, T0 + 120_000), (18000, 24000))
    p, h = towards(C, 270.0, 24_000)
    out += [(T0, e) for e in s.step([("AirMissionPlan", corridor),
                                     ("RUS/AirTrack", track("R7", p, h, 400, 20000, T0))], T0).emissions]
    return out


EMISSIONS = _emissions()


def test_the_scenarios_cover_every_kind_and_status():
    assert {e.alert.conflict.kind for _, e in EMISSIONS} == {"PLAN_PLAN", "TRACK_TRACK", "TRACK_PLAN"}
    assert {e.status for _, e in EMISSIONS} == {"NEW", "CLEARED"}


def test_alert_schema_is_the_message_type_of_the_bus():
    assert "DeconflictionAlert" in schemas.MESSAGE_TYPES
    assert alert_schema() == schemas.load_schema("DeconflictionAlert")


@pytest.mark.parametrize("now_ms,emission", EMISSIONS,
                         ids=[f"{e.alert.conflict.kind}-{e.status}" for _, e in EMISSIONS])
def test_alert_record_encodes_with_the_avsc_and_is_a_valid_model(now_ms, emission):
    rec = alert_record(emission, now_ms, Params())
    parsed = schemas.parsed_schema("DeconflictionAlert")
    assert fastavro.validation.validate(rec, parsed, raise_errors=True, strict=True)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, rec, strict=True)
    buf.seek(0)
    back = fastavro.schemaless_reader(buf, parsed)
    model = from_avro("DeconflictionAlert", back)
    assert isinstance(model, DeconflictionAlert)
    assert to_avro(model) == to_avro(from_avro("DeconflictionAlert", rec))
    assert schemas.key_of("DeconflictionAlert", rec) == emission.alert.alert_id
    assert model.window.start < model.window.end
    assert (model.closest_approach is None) == (model.kind.value != "TRACK_TRACK")
    assert model.label.releasable_to[0] == "FRA" and model.label.caveats == ["DECONFLICTION ONLY"]
    text = json.dumps(back, default=str)
    assert not any((v if isinstance(v, str) else v[0]) in text for v in SENTINELS.values())


def test_a_conflict_of_one_instant_has_a_one_millisecond_window():
    now, e = next((n, e) for n, e in EMISSIONS if e.alert.conflict.kind == "TRACK_TRACK")
    c = replace(e.alert.conflict, end_ms=e.alert.conflict.start_ms)
    w = alert_record(replace(e, alert=replace(e.alert, conflict=c)), now, Params())["window"]
    assert (w["end"] - w["start"]).total_seconds() == 0.001

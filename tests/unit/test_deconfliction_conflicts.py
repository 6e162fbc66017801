"""Acceptance 1 of issue 12 on synthetic geometry with answers known beforehand: crossing routes, separated bands,
parallel and head-on tracks, a track heading into a corridor, a conflict that passes."""

from __future__ import annotations

import pytest

from consumers.deconfliction import State, geometry as geo
from consumers.deconfliction.conflicts import PLAN_PLAN, TRACK_PLAN, TRACK_TRACK
from consumers.deconfliction.lifecycle import CLEARED, NEW, PASSED, WITHDRAWN
from tests.unit.deconfliction_support import C, T0, by_kind, plan, straight, towards, track

pytestmark = pytest.mark.unit

NM = geo.NM_M
V = 250.0                   # m/s
T_CROSS = T0 + 3_600_000    # both at C an hour from now


def crossing(band_ours=(20000, 25000), band_theirs=(22000, 27000), t_theirs=T_CROSS, angle=90.0):
    ours = plan("A1", *straight(C, 90.0, 100_000, V, T_CROSS), band_ours)
    theirs = plan("R1", *straight(C, 90.0 + angle, 100_000, V, t_theirs), band_theirs, ours=False)
    return [("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)]


def test_crossing_routes_in_one_band_give_one_conflict_at_the_known_place_and_time():
    r = State().step(crossing(), T0)
    assert [e.status for e in r.emissions] == [NEW]
    c = r.emissions[0].alert.conflict
    assert c.kind == PLAN_PLAN and c.ours == "/plan/A1" and c.theirs == "RUS/plan/R1" and c.partner == "RUS"
    assert geo.distance_m(c.centre, C) < 50
    # the part of each route within 5 NM of the other is 5 NM either side of C (perpendicular crossing)
    assert c.radius_m == pytest.approx(5 * NM, rel=0.01)
    # each is within 5 NM of the other from 37 s before to 37 s after C, widened by the 300 s ETA buffer
    zone_s = 5 * NM / V
    assert (c.start_ms - T_CROSS) / 1000 == pytest.approx(-(zone_s + 300), abs=1)
    assert (c.end_ms - T_CROSS) / 1000 == pytest.approx(zone_s + 300, abs=1)
    assert (c.floor_ft, c.ceiling_ft) == (22000, 25000)  # the overlap of the bands
    assert c.lateral_m < 1 and c.vertical_ft == 0 and c.cpa_ms is None


def test_the_same_routes_in_separated_bands_give_none():
    assert State().step(crossing(band_theirs=(30000, 35000)), T0).emissions == []
    # exactly the vertical separation apart: separated
    assert State().step(crossing(band_theirs=(26000, 30000)), T0).emissions == []


def test_bands_closer_than_the_vertical_separation_conflict_in_the_gap():
    r = State().step(crossing(band_theirs=(25500, 30000)), T0)
    c = r.emissions[0].alert.conflict
    assert (c.floor_ft, c.ceiling_ft, c.vertical_ft) == (25000, 25500, 500)


def test_the_same_routes_at_times_far_apart_give_none():
    # 20 minutes later: beyond both ETA buffers (2 x 300 s) and the time in the zone
    assert State().step(crossing(t_theirs=T_CROSS + 1_200_000), T0).emissions == []
    # 8 minutes later: within them
    assert len(State().step(crossing(t_theirs=T_CROSS + 480_000), T0).emissions) == 1


def test_routes_that_pass_farther_than_the_lateral_separation_give_none():
    ours = plan("A1", *straight(C, 90.0, 100_000, V, T_CROSS))
    theirs = plan("R1", *straight(geo.destination(C, 0.0, 6 * NM), 90.0, 100_000, V, T_CROSS), ours=False)  # 6 NM
    assert State().step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0).emissions == []
    near = plan("R1", *straight(geo.destination(C, 0.0, 4 * NM), 90.0, 100_000, V, T_CROSS), ours=False)
    (e,) = State().step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", near)], T0).emissions
    assert e.alert.conflict.lateral_m == pytest.approx(4 * NM, rel=0.01)


def test_parallel_tracks_ten_miles_apart_give_none():
    a = track("T1", geo.destination(C, 270, 20_000), 90.0, 400, 20000, T0)
    b = track("R9", geo.destination(geo.destination(C, 270, 20_000), 0.0, 10 * NM), 90.0, 400, 20000, T0)
    assert State().step([("AirTrack", a), ("RUS/AirTrack", b)], T0).emissions == []


def test_head_on_tracks_give_a_closest_approach_at_the_known_time_and_place():
    kt = 400.0
    v = kt * geo.KT_MS
    pa, ha = towards(C, 270.0, 30_000)
    pb, hb = towards(C, 90.0, 30_000)
    r = State().step([("AirTrack", track("T1", pa, ha, kt, 20000, T0)),
                      ("RUS/AirTrack", track("R9", pb, hb, kt, 20300, T0))], T0)
    (e,) = r.emissions
    c = e.alert.conflict
    assert c.kind == TRACK_TRACK and e.status == NEW
    assert (c.cpa_ms - T0) / 1000 == pytest.approx(30_000 / v, abs=0.5)   # 145.8 s
    assert geo.distance_m(c.centre, C) < 100
    assert c.lateral_m < 100 and c.vertical_ft == 300
    # within 5 NM from (30 km - 5 NM) / 2v before the CPA to as long after it
    half = 5 * NM / (2 * v)
    assert (c.start_ms - c.cpa_ms) / 1000 == pytest.approx(-half, abs=0.5)
    assert (c.end_ms - c.cpa_ms) / 1000 == pytest.approx(half, abs=0.5)
    assert (c.floor_ft, c.ceiling_ft, c.radius_m) == (20000, 20300, 5 * NM)


def test_head_on_tracks_beyond_the_look_ahead_or_vertically_separated_give_none():
    kt = 400.0
    pa, ha = towards(C, 270.0, 70_000)   # CPA at 340 s > 300 s
    pb, hb = towards(C, 90.0, 70_000)
    assert State().step([("AirTrack", track("T1", pa, ha, kt, 20000, T0)),
                         ("RUS/AirTrack", track("R9", pb, hb, kt, 20000, T0))], T0).emissions == []
    pa, ha = towards(C, 270.0, 30_000)
    pb, hb = towards(C, 90.0, 30_000)
    assert State().step([("AirTrack", track("T1", pa, ha, kt, 20000, T0)),
                         ("RUS/AirTrack", track("R9", pb, hb, kt, 21000, T0))], T0).emissions == []


def test_a_track_heading_into_the_partners_corridor_at_the_planned_time():
    # their corridor runs north through C, flown past C at T0 + 120 s; our track reaches C from the west then
    theirs = plan("R1", *straight(C, 0.0, 100_000, V, T0 + 120_000), (18000, 24000), ours=False)
    p, h = towards(C, 270.0, 24_000)
    ours = track("T1", p, h, 400, 20000, T0)
    kinds = by_kind(State().step([("RUS/AirMissionPlan", theirs), ("AirTrack", ours)], T0).emissions)
    (e,) = kinds[TRACK_PLAN]
    c = e.alert.conflict
    assert c.ours == "/track/T1" and c.theirs == "RUS/plan/R1"
    assert geo.distance_m(c.centre, C) < 5 * NM
    assert c.start_ms <= T0 + 120_000 <= c.end_ms
    # the same track at an altitude outside their band ± 1,000 ft: none
    high = track("T1", p, h, 400, 26000, T0)
    assert State().step([("RUS/AirMissionPlan", theirs), ("AirTrack", high)], T0).emissions == []
    # the same corridor planned for two hours later: none (the track will be long gone)
    later = plan("R1", *straight(C, 0.0, 100_000, V, T0 + 7_200_000), (18000, 24000), ours=False)
    assert State().step([("RUS/AirMissionPlan", later), ("AirTrack", ours)], T0).emissions == []


def test_their_track_against_our_plan_too():
    ours = plan("A1", *straight(C, 0.0, 100_000, V, T0 + 120_000), (18000, 24000))
    p, h = towards(C, 270.0, 24_000)
    (e,) = State().step([("AirMissionPlan", ours), ("RUS/AirTrack", track("R9", p, h, 400, 20000, T0))],
                        T0).emissions
    assert e.alert.conflict.kind == TRACK_PLAN and e.alert.conflict.ours == "/plan/A1"
    assert e.alert.ours.object == "PLAN" and e.alert.theirs.object == "TRACK"


def test_a_conflict_that_passes_is_cleared_once():
    s = State()
    (e,) = s.step(crossing(), T0).emissions
    assert s.step([], e.alert.conflict.end_ms - 1).emissions == []
    (done,) = s.step([], e.alert.conflict.end_ms + 1).emissions
    assert (done.status, done.reason, done.alert.alert_id) == (CLEARED, PASSED, e.alert.alert_id)
    assert done.alert.revision == 1
    assert s.step([], e.alert.conflict.end_ms + 60_000).emissions == [] and not s.alerts


def test_a_cancelled_plan_clears_its_conflicts():
    s = State()
    (e,) = s.step(crossing(), T0).emissions
    cancel = plan("R1", *straight(C, 180.0, 100_000, V, T_CROSS), ours=False, status="CANCELLED",
                  created_ms=T0 + 1000)
    (done,) = s.step([("RUS/AirMissionPlan", cancel)], T0 + 2000).emissions
    assert (done.status, done.reason, done.alert.alert_id) == (CLEARED, WITHDRAWN, e.alert.alert_id)
    assert "RUS/plan/R1" not in s.picture.objects


def test_ours_against_ours_and_partner_against_partner_are_never_compared():
    ours = plan("A1", *straight(C, 90.0, 100_000, V, T_CROSS))
    ours2 = plan("A2", *straight(C, 180.0, 100_000, V, T_CROSS))
    rus = plan("R1", *straight(C, 45.0, 100_000, V, T_CROSS), ours=False)
    usa = plan("U1", *straight(C, 135.0, 100_000, V, T_CROSS), ours=False)
    r = State().step([("AirMissionPlan", ours), ("AirMissionPlan", ours2), ("RUS/AirMissionPlan", rus),
                      ("USA/AirMissionPlan", usa)], T0)
    pairs = sorted((e.alert.conflict.ours, e.alert.conflict.theirs) for e in r.emissions)
    assert pairs == [("/plan/A1", "RUS/plan/R1"), ("/plan/A1", "USA/plan/U1"),
                     ("/plan/A2", "RUS/plan/R1"), ("/plan/A2", "USA/plan/U1")]


def test_a_single_waypoint_plan_occupies_its_point_over_its_windows():
    orbit = plan("R1", [C], [T_CROSS], (20000, 24000), ours=False,
                 windows=[(T_CROSS - 1_800_000, T_CROSS + 1_800_000)])
    ours = plan("A1", *straight(geo.destination(C, 0, 3 * NM), 90.0, 100_000, V, T_CROSS + 1_000_000))
    (e,) = State().step([("RUS/AirMissionPlan", orbit), ("AirMissionPlan", ours)], T0).emissions
    assert e.alert.conflict.lateral_m == pytest.approx(3 * NM, rel=0.01)

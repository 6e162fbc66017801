"""Alert lifecycle: NEW once, UPDATED only on a material change, CLEARED once; never once per track report; the state
rebuilt from its changelog carries on exactly as the original; evaluate leaves its input alone."""

from __future__ import annotations

import random

import pytest

from consumers.deconfliction import State, evaluate, geometry as geo
from consumers.deconfliction.conflicts import Conflict
from consumers.deconfliction.lifecycle import CLEARED, NEW, UPDATED, WITHDRAWN, material
from consumers.deconfliction.params import Params
from tests.unit.deconfliction_support import C, T0, plan, straight, towards, track

pytestmark = pytest.mark.unit

NM = geo.NM_M
KT = 400.0
V = KT * geo.KT_MS


def head_on_reports(t_ms, noise=0.0, rnd=None, turn=0.0):
    """Both tracks of a head-on encounter through C at T0 + 145.8 s, as reported at t_ms (optionally with position
    noise in metres, and theirs turned by ``turn`` degrees at the report)."""
    out = []
    for tid, source, side_bearing in (("T1", "AirTrack", 270.0), ("R9", "RUS/AirTrack", 90.0)):
        start, heading = towards(C, side_bearing, 30_000)
        pos = geo.destination(start, heading, V * (t_ms - T0) / 1000)
        if noise:
            pos = geo.destination(pos, rnd.uniform(0, 360), rnd.uniform(0, noise))
        h = geo.bearing_deg(pos, C) if geo.distance_m(pos, C) > 2000 else heading
        if tid == "R9":
            h = (h + turn) % 360
        out.append((source, track(tid, pos, h, KT, 20000, t_ms)))
    return out


def test_track_updates_every_two_seconds_give_one_new_and_one_cleared():
    s, rnd = State(), random.Random(1)
    seen = []
    for k in range(0, 200):
        t = T0 + 2000 * k
        seen += [(t, e) for e in s.step(head_on_reports(t, noise=150.0, rnd=rnd) if t < T0 + 140_000 else [], t)
                 .emissions]
    statuses = [e.status for _, e in seen]
    assert statuses == [NEW, CLEARED], statuses
    assert len({e.alert.alert_id for _, e in seen}) == 1


def test_a_turn_that_moves_the_closest_approach_is_one_update():
    s = State()
    (new,) = s.step(head_on_reports(T0), T0).emissions
    assert s.step(head_on_reports(T0 + 2000), T0 + 2000).emissions == []
    (upd,) = s.step(head_on_reports(T0 + 4000, turn=6.0), T0 + 4000).emissions  # its CPA ~3 km off C: the centre moves ~1.5 km
    assert (upd.status, upd.alert.alert_id, upd.alert.revision) == (UPDATED, new.alert.alert_id, 1)
    assert s.step(head_on_reports(T0 + 6000, turn=6.0), T0 + 6000).emissions == []


def _crossing(t_theirs, created_ms=T0, floor=22000):
    ours = plan("A1", *straight(C, 90.0, 100_000, 250.0, T0 + 3_600_000))
    theirs = plan("R1", *straight(C, 0.0, 100_000, 250.0, t_theirs), (floor, floor + 5000), ours=False,
                  created_ms=created_ms)
    return ours, theirs


def test_plan_versions_update_only_when_the_geometry_moves():
    s = State()
    ours, theirs = _crossing(T0 + 3_600_000)
    (new,) = s.step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0).emissions
    # a new version with the same geometry: nothing; 20 s later: nothing (< 30 s)
    assert s.step([("RUS/AirMissionPlan", _crossing(T0 + 3_600_000, T0 + 10)[1])], T0 + 10).emissions == []
    assert s.step([("RUS/AirMissionPlan", _crossing(T0 + 3_620_000, T0 + 20)[1])], T0 + 20).emissions == []
    # 2 minutes later: UPDATED; then a band change: UPDATED again
    (upd,) = s.step([("RUS/AirMissionPlan", _crossing(T0 + 3_720_000, T0 + 30)[1])], T0 + 30).emissions
    assert (upd.status, upd.alert.alert_id, upd.alert.revision) == (UPDATED, new.alert.alert_id, 1)
    (band,) = s.step([("RUS/AirMissionPlan", _crossing(T0 + 3_720_000, T0 + 40, 23000)[1])], T0 + 40).emissions
    assert (band.status, band.alert.revision, band.alert.conflict.floor_ft) == (UPDATED, 2, 23000)
    # an older version arriving late changes nothing
    assert s.step([("RUS/AirMissionPlan", _crossing(T0 + 3_600_000, T0 + 5)[1])], T0 + 50).emissions == []
    # moved out of the way (an hour later): CLEARED, RESOLVED
    (gone,) = s.step([("RUS/AirMissionPlan", _crossing(T0 + 7_200_000, T0 + 60)[1])], T0 + 60).emissions
    assert (gone.status, gone.reason, gone.alert.revision) == (CLEARED, "RESOLVED", 3)
    assert not s.alerts


def test_an_expired_track_withdraws_its_alert():
    s = State(Params(track_max_age_s=10))
    (new,) = s.step(head_on_reports(T0), T0).emissions
    (gone,) = s.step([], T0 + 11_000).emissions
    assert (gone.status, gone.reason, gone.alert.alert_id) == (CLEARED, WITHDRAWN, new.alert.alert_id)
    assert not s.picture.objects


def test_material_thresholds():
    p = Params()
    base = Conflict("PLAN_PLAN", "/plan/A", "RUS/plan/B", C, 9000.0, 20000, 25000, T0 + 600_000, T0 + 900_000,
                    0.0, 0.0)

    def moved(**kw):
        return material(base, Conflict(**{**base.__dict__, **kw}), T0, p)

    assert not moved(centre=geo.destination(C, 45, 0.4 * NM))
    assert moved(centre=geo.destination(C, 45, 0.6 * NM))
    assert not moved(radius_m=9000 + 0.4 * NM) and moved(radius_m=9000 + 0.6 * NM)
    assert moved(floor_ft=20100) and moved(ceiling_ft=24900)
    assert not moved(start_ms=T0 + 625_000) and moved(start_ms=T0 + 635_000)
    assert not moved(end_ms=T0 + 925_000) and moved(end_ms=T0 + 865_000)
    # a start already past in both versions does not count, however far it moved
    past = Conflict(**{**base.__dict__, "start_ms": T0 - 100_000})
    assert not material(past, Conflict(**{**base.__dict__, "start_ms": T0}), T0, p)
    assert material(past, Conflict(**{**base.__dict__, "start_ms": T0 + 60_000}), T0, p)


def _run(state, batches):
    out = []
    for t, recs in batches:
        r = state.step(recs, t)
        out.append((r.emissions, r.changelog))
    return out


def test_state_rebuilt_from_its_changelog_carries_on_like_the_original():
    ours, theirs = _crossing(T0 + 3_600_000)
    first = [(T0, [("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)] + head_on_reports(T0)),
             (T0 + 2000, head_on_reports(T0 + 2000))]
    later = [(T0 + 4000, head_on_reports(T0 + 4000, turn=6.0)), (T0 + 400_000, []),
             (T0 + 4_000_000, [])]
    a = State()
    log = []
    for emissions, changes in _run(a, first):
        log += list(changes.items())
    b = State.from_changelog(log)
    assert b.to_changelog() == a.to_changelog()
    ra, rb = _run(a, later), _run(b, later)
    assert [[(e.status, e.alert) for e in em] for em, _ in ra] == [[(e.status, e.alert) for e in em] for em, _ in rb]
    assert sum(len(em) for em, _ in ra) >= 3


def test_the_changelog_is_json_and_holds_no_mission_data():
    import json

    from tests.unit.deconfliction_support import SENTINELS
    s = State()
    ours, theirs = _crossing(T0 + 3_600_000)
    r = s.step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0)
    text = json.dumps(r.changelog) + json.dumps(s.to_changelog())
    for v in SENTINELS.values():
        assert (v if isinstance(v, str) else v[0]) not in text


def test_evaluate_is_pure():
    s = State()
    ours, theirs = _crossing(T0 + 3_600_000)
    before = s.to_changelog()
    new, r = evaluate(s, [("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0)
    assert s.to_changelog() == before == {} and len(r.emissions) == 1 and new.alerts
    new2, r2 = evaluate(new, [], T0 + 10)
    assert r2.emissions == [] and new.to_changelog() == new2.to_changelog()


def test_unusable_records_are_counted_and_skipped():
    r = State().step([("AirTrack", {"track_id": "x"}), ("MaritimeTrack", {}), ("RUS/AirTrack", {"label": None})], T0)
    assert r.stats["skipped"] == 3 and r.emissions == []


# ------------------------------------------------------------------------------------------ dead reckoning


def _corridor_and_track(t_ms, heading=0.0, offset_m=0.0, alt=22000):
    """Their plan crossing C northwards at T0 + 60 s, and our track flying towards C from the west (at t_ms)."""
    theirs = plan("R1", *straight(C, 0.0, 100_000, 250.0, T0 + 60_000), (20000, 25000), ours=False)
    start, h = towards(C, 270.0, 60_000)
    pos = geo.destination(start, h, V * (t_ms - T0) / 1000)
    if offset_m:
        pos = geo.destination(pos, 0.0, offset_m)
    return theirs, ("AirTrack", track("T1", pos, (h + heading) % 360, KT, alt, t_ms))


def test_a_track_on_its_reckoned_path_is_not_evaluated_again_until_its_step_changes():
    s = State()
    theirs, first = _corridor_and_track(T0)
    (new,) = s.step([("RUS/AirMissionPlan", theirs), first], T0).emissions
    assert new.status == NEW and new.alert.conflict.kind == "TRACK_PLAN"
    for k in range(1, 10):   # reports along the predicted path, within the step: kept, pairs not evaluated
        t = T0 + 2000 * k
        r = s.step([_corridor_and_track(t)[1]], t)
        assert (r.emissions, r.stats["reckoned"], r.stats["pairs"]) == ([], 1, 0)
        assert s.picture.objects["/track/T1"].time_ms == t        # the picture holds the newest report
    t = T0 + 60_000            # the next step of its path: evaluated again
    r = s.step([_corridor_and_track(t)[1]], t)
    assert r.stats["reckoned"] == 0 and r.stats["pairs"] == 1


@pytest.mark.parametrize("change", [{"heading": 2.0}, {"offset_m": 400.0}, {"alt": 22200}])
def test_a_track_leaving_its_reckoned_path_is_evaluated(change):
    s = State()
    theirs, first = _corridor_and_track(T0)
    s.step([("RUS/AirMissionPlan", theirs), first], T0)
    r = s.step([_corridor_and_track(T0 + 2000, **change)[1]], T0 + 2000)
    assert r.stats["reckoned"] == 0 and r.stats["pairs"] == 1


def test_a_zero_tolerance_evaluates_every_report():
    s = State(Params(track_tolerance_m=0.0, track_tolerance_ft=0.0))
    theirs, first = _corridor_and_track(T0)
    s.step([("RUS/AirMissionPlan", theirs), first], T0)
    r = s.step([_corridor_and_track(T0 + 2000)[1]], T0 + 2000)
    assert r.stats["reckoned"] == 0 and r.stats["pairs"] == 1


def test_the_basis_survives_a_rebuild_from_the_changelog():
    a = State()
    theirs, first = _corridor_and_track(T0)
    log = list(a.step([("RUS/AirMissionPlan", theirs), first], T0).changelog.items())
    log += list(a.step([_corridor_and_track(T0 + 2000)[1]], T0 + 2000).changelog.items())
    b = State.from_changelog(log)
    assert b.to_changelog() == a.to_changelog()
    assert b.picture.entry("/track/T1")["basis"]["time_ms"] == T0     # the evaluated report, not the newest
    nxt = [_corridor_and_track(T0 + 4000, heading=3.0)[1]]
    ra, rb = a.step(nxt, T0 + 4000), b.step(nxt, T0 + 4000)
    assert ra.stats == rb.stats and [(e.status, e.alert) for e in ra.emissions] == \
        [(e.status, e.alert) for e in rb.emissions]

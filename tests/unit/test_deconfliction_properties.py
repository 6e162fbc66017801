"""Property tests (hypothesis) of acceptance 1: swapping the two sides gives the same conflicts; moving both sides by
the same translation and time shift gives the same conflicts, moved.

Translations: a shift in longitude is an exact symmetry of the ellipsoid (any size); a shift in latitude is not (the
scale of a degree of longitude changes), so it is kept small (<= 0.3 degree, < 0.4 % of scale at 40 N) and only
scenarios that are not within that much of a threshold are judged (the same conflicts with the minima, buffers
and look-ahead a little tighter and a little looser). Time shifts are whole track steps (60 s): a track's path
against plans spans whole steps of absolute time.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from consumers.deconfliction import State, geometry as geo
from consumers.deconfliction.params import Params
from tests.unit.deconfliction_support import T0, plan, straight, track

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def flights(draw, prefix):
    """One side's plans and tracks around the scenario's centre, as plain specs (rendered per run)."""
    n_plans = draw(st.integers(0, 3))
    n_tracks = draw(st.integers(0, 2))
    plans = [dict(id=f"{prefix}p{i}", bearing_from=draw(st.floats(0, 360)), off=draw(st.floats(0, 30_000)),
                  heading=draw(st.floats(0, 360)), half=draw(st.floats(15_000, 80_000)),
                  speed=draw(st.floats(180, 300)), t=draw(st.integers(-1_200, 1_800)) * 1000,
                  floor=draw(st.integers(12, 24)) * 1000, thick=draw(st.sampled_from([2000, 4000])))
             for i in range(n_plans)]
    tracks = [dict(id=f"{prefix}t{i}", bearing_from=draw(st.floats(0, 360)), off=draw(st.floats(0, 40_000)),
                   heading=draw(st.floats(0, 360)), kt=draw(st.floats(250, 500)),
                   alt=draw(st.integers(30, 50)) * 500)
              for i in range(n_tracks)]
    return plans, tracks


scenarios = st.tuples(st.floats(28, 40), st.floats(35, 44), flights("x"), flights("y"))


def render(spec, ours: bool, centre, dlat=0.0, dlon=0.0, dt=0):
    source = "AirMissionPlan" if ours else "RUS/AirMissionPlan"
    tsource = "AirTrack" if ours else "RUS/AirTrack"
    c = (centre[0] + dlat, centre[1] + dlon)
    plans, tracks = spec
    out = []
    for p in plans:
        # positions are made at the unshifted centre and then shifted, so that a run is the exact translate
        pts, etas = straight(geo.destination(centre, p["bearing_from"], p["off"]), p["heading"], p["half"],
                             p["speed"], T0 + 600_000 + p["t"])
        pts = [(a + dlat, b + dlon) for a, b in pts]
        out.append((source, plan(p["id"], pts, [e + dt for e in etas], (p["floor"], p["floor"] + p["thick"]),
                                 ours=ours, created_ms=T0 + dt)))
    for t in tracks:
        pos = geo.destination(centre, t["bearing_from"], t["off"])
        out.append((tsource, track(t["id"], (pos[0] + dlat, pos[1] + dlon), t["heading"], t["kt"], t["alt"],
                                   T0 + dt)))
    assert c  # the centre only anchors the specs
    return out


def conflicts(x, y, centre, *, x_ours=True, dlat=0.0, dlon=0.0, dt=0, params=None):
    """The conflicts found, keyed by (kind, x object id, y object id) -> sorted list of geometry tuples."""
    recs = render(x, x_ours, centre, dlat, dlon, dt) + render(y, not x_ours, centre, dlat, dlon, dt)
    r = State(params).step(recs, T0 + dt)
    out: dict[tuple, list] = {}
    for e in r.emissions:
        c = e.alert.conflict
        ids = sorted(k.rsplit("/", 1)[1] for k in (c.ours, c.theirs))
        out.setdefault((c.kind, *ids), []).append(c)
    for v in out.values():
        v.sort(key=lambda c: c.start_ms)
    return out


def same_moved(a, b, dlat, dlon, dt, tol_m, tol_ms, rel=1e-3):
    """Same conflicts, moved; positions within tol_m + rel x radius (the ends of the close parts of two nearly
    parallel legs are ill-conditioned: a metre of frame error moves them by 1/sin(angle) metres)."""
    assert a.keys() == b.keys()
    for k in a:
        assert len(a[k]) == len(b[k]), k
        for ca, cb in zip(a[k], b[k]):
            moved = (ca.centre[0] + dlat, ca.centre[1] + dlon)
            tol = tol_m + rel * ca.radius_m
            assert geo.distance_m(moved, cb.centre) <= tol, (k, ca, cb)
            assert abs(ca.radius_m - cb.radius_m) <= tol
            assert (ca.floor_ft, ca.ceiling_ft) == (cb.floor_ft, cb.ceiling_ft)
            assert abs(ca.start_ms + dt - cb.start_ms) <= tol_ms and abs(ca.end_ms + dt - cb.end_ms) <= tol_ms
            assert (ca.cpa_ms is None) == (cb.cpa_ms is None)
            if ca.cpa_ms is not None:
                assert abs(ca.cpa_ms + dt - cb.cpa_ms) <= tol_ms


@SETTINGS
@given(scenarios)
def test_swapping_the_two_sides_gives_the_same_conflicts(sc):
    lat, lon, x, y = sc
    a = conflicts(x, y, (lat, lon), x_ours=True)
    b = conflicts(x, y, (lat, lon), x_ours=False)
    same_moved(a, b, 0.0, 0.0, 0, tol_m=2.0, tol_ms=2)


@SETTINGS
@given(scenarios, st.floats(-3, 3), st.integers(-2_000, 2_000))
def test_a_shift_in_longitude_and_time_moves_the_conflicts(sc, dlon, steps):
    lat, lon, x, y = sc
    dt = steps * 60_000
    a = conflicts(x, y, (lat, lon))
    b = conflicts(x, y, (lat, lon), dlon=dlon, dt=dt)
    same_moved(a, b, 0.0, dlon, dt, tol_m=5.0, tol_ms=50)


def _robust(x, y, centre) -> bool:
    p = Params()
    base = conflicts(x, y, centre)
    for f, s in ((0.99, -3), (1.01, 3)):
        q = replace(p, lateral_m=p.lateral_m * f, eta_buffer_s=p.eta_buffer_s + s, lookahead_s=p.lookahead_s + s,
                    merge_gap_s=p.merge_gap_s + s)
        other = conflicts(x, y, centre, params=q)
        if {k: len(v) for k, v in other.items()} != {k: len(v) for k, v in base.items()}:
            return False
    return True


@SETTINGS
@given(scenarios, st.floats(-0.3, 0.3), st.floats(-3, 3), st.integers(-2_000, 2_000))
def test_a_small_translation_and_time_shift_moves_the_conflicts(sc, dlat, dlon, steps):
    lat, lon, x, y = sc
    assume(_robust(x, y, (lat, lon)))
    dt = steps * 60_000
    a = conflicts(x, y, (lat, lon))
    b = conflicts(x, y, (lat, lon), dlat=dlat, dlon=dlon, dt=dt)
    # the scale changes by < 0.4 %: volumes of tens of km move by up to a few hundred metres, windows by seconds
    same_moved(a, b, dlat, dlon, dt, tol_m=400.0, tol_ms=5_000, rel=0.02)

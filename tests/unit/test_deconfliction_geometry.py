"""consumers.deconfliction.geometry: pyproj geodesy, the local frame's error bound against brute-force geodesic
sampling, exact close intervals, closest approach."""

from __future__ import annotations

import math
import random

import pytest

from consumers.deconfliction import geometry as geo

pytestmark = pytest.mark.unit


def test_distance_and_bearing_on_the_ellipsoid():
    # one degree of latitude at the equator on WGS 84: 110,574.4 m; due north, bearing 0
    assert geo.distance_m((0.0, 10.0), (1.0, 10.0)) == pytest.approx(110_574.4, abs=0.5)
    assert geo.bearing_deg((0.0, 10.0), (1.0, 10.0)) == pytest.approx(0.0, abs=1e-9)
    assert geo.bearing_deg((35.0, 38.0), (35.0, 37.0)) == pytest.approx(270.3, abs=0.1)
    p = geo.destination((35.0, 38.0), 123.0, 50_000)
    assert geo.distance_m((35.0, 38.0), p) == pytest.approx(50_000, abs=1e-6)


def test_densify_keeps_pieces_short_and_on_the_geodesic():
    a, b = (34.0, 36.0), (36.0, 41.0)
    pts = geo.densify(a, b)
    assert pts[0] == (a, 0.0) and pts[-1] == (b, 1.0)
    total = geo.distance_m(a, b)
    for (p, f), (q, g) in zip(pts, pts[1:]):
        assert geo.distance_m(p, q) <= geo.MAX_PIECE_M + 1e-6
        assert geo.distance_m(a, q) == pytest.approx(g * total, abs=1.0)


def _brute_leg_distance(a0, a1, b0, b1, n=400):
    """Least geodesic distance between points sampled densely along both geodesics."""
    pa = [p for p, _ in geo.densify(a0, a1, geo.distance_m(a0, a1) / n)]
    pb = [p for p, _ in geo.densify(b0, b1, geo.distance_m(b0, b1) / n)]
    best = min((geo.distance_m(p, q), i, j) for i, p in enumerate(pa) for j, q in enumerate(pb[::8]))
    _, i, j = best  # refine around the coarse best
    return min(geo.distance_m(p, q) for p in pa[max(0, i - 3):i + 4] for q in pb[max(0, 8 * j - 10):8 * j + 11])


def test_leg_to_leg_distance_in_the_local_frame_matches_geodesic_sampling():
    rnd = random.Random(12)
    for _ in range(12):
        c = (rnd.uniform(30, 40), rnd.uniform(35, 45))
        a0 = geo.destination(c, rnd.uniform(0, 360), rnd.uniform(0, 18_000))
        a1 = geo.destination(a0, rnd.uniform(0, 360), rnd.uniform(5_000, geo.MAX_PIECE_M))
        b0 = geo.destination(c, rnd.uniform(0, 360), rnd.uniform(0, 18_000))
        b1 = geo.destination(b0, rnd.uniform(0, 360), rnd.uniform(5_000, geo.MAX_PIECE_M))
        f = geo.frame_for(a0, a1, b0, b1)
        d = geo.segment_distance(f.xy(a0), f.xy(a1), f.xy(b0), f.xy(b1))
        brute = _brute_leg_distance(a0, a1, b0, b1)
        # sampling overestimates by at most half a sample step (< 50 m here); the frame's error is ~1 m
        assert brute - 60 <= d <= brute + 25, (d, brute)


def test_segment_distance_planar_cases():
    assert geo.segment_distance((0, 0), (10, 0), (5, -5), (5, 5)) == 0.0
    assert geo.segment_distance((0, 0), (10, 0), (0, 3), (10, 3)) == pytest.approx(3.0)
    assert geo.segment_distance((0, 0), (10, 0), (13, 4), (20, 4)) == pytest.approx(5.0)
    assert geo.segment_distance((0, 0), (0, 0), (3, 4), (3, 4)) == pytest.approx(5.0)


def _brute_interval(a0, a1, b0, b1, d, n=4001):
    inside = [i / (n - 1) for i in range(n)
              if geo._point_segment((a0[0] + i / (n - 1) * (a1[0] - a0[0]), a0[1] + i / (n - 1) * (a1[1] - a0[1])),
                                    b0, b1) <= d]
    return (inside[0], inside[-1]) if inside else None


def test_close_interval_is_exact():
    rnd = random.Random(3)
    for _ in range(60):
        pts = [(rnd.uniform(-10, 10), rnd.uniform(-10, 10)) for _ in range(4)]
        d = rnd.uniform(0.5, 6)
        got, want = geo.close_interval(*pts, d), _brute_interval(*pts, d)
        if want is None:
            assert got is None or got[1] - got[0] < 1e-3
        else:
            assert got is not None and got[0] == pytest.approx(want[0], abs=1e-3) \
                and got[1] == pytest.approx(want[1], abs=1e-3)
    # perpendicular crossing: the part within d is d either side of the crossing
    assert geo.close_interval((-10, 0), (10, 0), (0, -10), (0, 10), 2) == pytest.approx((0.4, 0.6))


def test_cpa_and_within_interval():
    # head-on: 10 apart, closing at 2 per second: CPA at t = 5, distance 0
    t, dist = geo.cpa((-10, 0), (2, 0), 300)
    assert (t, dist) == (pytest.approx(5.0), pytest.approx(0.0))
    assert geo.within_interval((-10, 0), (2, 0), 4) == (pytest.approx(3.0), pytest.approx(7.0))
    # diverging: CPA now
    assert geo.cpa((10, 0), (2, 0), 300) == (0.0, pytest.approx(10.0))
    # parallel at the same speed: never closer, never within 3
    assert geo.within_interval((0, 5), (0, 0), 3) is None
    # beyond the look-ahead: the CPA is clipped to it
    assert geo.cpa((-1000, 0), (1, 0), 300)[0] == 300


def test_frames_are_cached_per_grid_cell_and_round_trip():
    f1 = geo.frame_for((35.1, 38.1), (35.2, 38.3))
    f2 = geo.frame_for((35.2, 38.3), (35.1, 38.1))
    assert f1 == f2 == geo.LocalFrame(35.0, 38.0)
    p = (35.3, 38.4)
    back = f1.latlon(f1.xy(p))
    assert math.isclose(back[0], p[0], abs_tol=1e-9) and math.isclose(back[1], p[1], abs_tol=1e-9)
    # distances from the centre are exact in an azimuthal-equidistant frame
    x, y = f1.xy(p)
    assert math.hypot(x, y) == pytest.approx(geo.distance_m((35.0, 38.0), p), abs=1e-3)

"""The grid index: boxes in cells, far-apart objects never compared, near ones always candidates; cost grows with
nearby pairs, not all pairs."""

from __future__ import annotations

import random

import pytest

from consumers.deconfliction import State, geometry as geo
from consumers.deconfliction import conflicts as conflicts_mod
from consumers.deconfliction.index import GridIndex, bbox_of, widen
from tests.unit.deconfliction_support import T0, plan, straight, track

pytestmark = pytest.mark.unit

NM = geo.NM_M


def test_grid_insert_query_remove():
    g = GridIndex(0.25)
    g.insert("a", (35.0, 38.0, 35.1, 38.1))
    g.insert("b", (35.2, 38.2, 35.3, 38.3))   # same cell as a
    g.insert("c", (36.0, 40.0, 36.1, 40.1))   # far
    assert g.near("a") == {"b"} and g.near("c") == set()
    assert g.query((35.05, 38.05, 35.06, 38.06)) == {"a", "b"}
    g.insert("a", (36.0, 40.0, 36.05, 40.05))  # moved next to c
    assert g.near("a") == {"c"} and g.near("b") == set()
    g.remove("a")
    assert "a" not in g and len(g) == 2 and g.near("c") == set()


def test_layers_keep_bands_apart_unless_within_the_separation():
    g = GridIndex(0.25, layer_ft=2000.0)
    box = (35.0, 38.0, 35.1, 38.1)
    g.insert(("a", 0), box, (19_500, 25_500))       # FL200-250 widened by 500 ft
    g.insert(("b", 0), box, (26_500, 27_500))       # 27,000 ft: 2,000 ft above a's ceiling, another layer
    g.insert(("c", 0), box, (24_500, 24_500))
    g.insert(("d", 0), box, (-600, 400))            # below sea level too
    assert g.near(("a", 0)) == {("c", 0)} and g.near(("d", 0)) == set()
    g.insert(("b", 0), box, (24_900, 25_100))       # moved down: shares a's layer now
    assert g.near(("a", 0)) == {("b", 0), ("c", 0)}
    assert g.query(box, (-1000, -1000)) == {("d", 0)}


def test_bands_closer_than_the_vertical_separation_always_share_a_layer():
    rnd = random.Random(7)
    box = (35.0, 38.0, 35.1, 38.1)
    for _ in range(2000):
        g = GridIndex(0.25, layer_ft=2000.0)
        floor = rnd.uniform(-2000, 45_000)
        a = (floor, floor + rnd.choice([0.0, rnd.uniform(0, 10_000)]))
        gap = rnd.uniform(-3000, 999.9)                        # < 0: they overlap by that much
        size = max(0.0, -gap) + rnd.uniform(0, 5000)
        b = (a[1] + gap, a[1] + gap + size) if rnd.random() < 0.5 else (a[0] - gap - size, a[0] - gap)
        g.insert("a", box, (a[0] - 500, a[1] + 500))
        g.insert("b", box, (b[0] - 500, b[1] + 500))
        assert g.near("a") == {"b"}, (a, b)


def test_widen_covers_the_margin_in_every_direction():
    box = widen(bbox_of([(35.0, 38.0)]), 5 * NM)
    for bearing in range(0, 360, 15):
        p = geo.destination((35.0, 38.0), bearing, 5 * NM)
        assert box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def _count_piece_hits(monkeypatch):
    calls = []
    real = conflicts_mod.piece_hit

    def counting(a, b, params):
        calls.append((a, b))
        return real(a, b, params)

    monkeypatch.setattr(conflicts_mod, "piece_hit", counting)
    return calls


def test_far_apart_objects_are_never_compared(monkeypatch):
    calls = _count_piece_hits(monkeypatch)
    t = T0 + 3_600_000
    ours = [("AirMissionPlan", plan(f"A{i}", *straight((33.0 + 0.5 * i, 36.0), 90.0, 30_000, 250.0, t)))
            for i in range(5)]
    theirs = [("RUS/AirMissionPlan", plan(f"R{i}", *straight((33.0 + 0.5 * i, 39.0), 0.0, 30_000, 250.0, t),
                                          ours=False)) for i in range(5)]
    tracks = [("AirTrack", track("T1", (33.0, 36.0), 90.0, 400, 20000, T0)),
              ("RUS/AirTrack", track("R9", (33.0, 40.0), 270.0, 400, 20000, T0))]   # 370 km apart
    r = State().step(ours + theirs + tracks, T0)
    assert r.emissions == [] and calls == [] and r.stats["pairs"] == 0


def test_close_objects_are_always_candidates():
    rnd = random.Random(5)
    for _ in range(40):
        c = (rnd.uniform(30, 40), rnd.uniform(35, 42))
        t = T0 + 3_600_000
        ours = plan("A", *straight(c, rnd.uniform(0, 360), rnd.uniform(1_000, 80_000), 250.0, t))
        off = geo.destination(c, rnd.uniform(0, 360), rnd.uniform(0, 4.9 * NM))
        theirs = plan("R", *straight(off, rnd.uniform(0, 360), rnd.uniform(1_000, 80_000), 250.0, t), ours=False)
        r = State().step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0)
        assert len(r.emissions) == 1


def test_cost_grows_with_nearby_pairs_not_all_pairs(monkeypatch):
    calls = _count_piece_hits(monkeypatch)
    t = T0 + 3_600_000
    recs = []
    for i in range(20):   # 20 x 20 sorties, each side's spread over a 20 x 1 row of places 0.6 degrees apart
        c = (32.0 + 0.6 * (i % 10), 36.0 + 0.6 * (i // 10))
        recs.append(("AirMissionPlan", plan(f"A{i}", *straight(c, 90.0, 20_000, 250.0, t))))
        recs.append(("RUS/AirMissionPlan", plan(f"R{i}", *straight(c, 0.0, 20_000, 250.0, t), ours=False)))
    r = State().step(recs, T0)
    assert len(r.emissions) == 20                 # each crosses only its partner at the same place
    assert r.stats["pairs"] <= 20 * 3             # not 400
    assert len(calls) <= 20 * 3 * 4

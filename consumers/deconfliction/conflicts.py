"""Conflicts between one object of ours and one of a partner's: plan against plan, track against track, track
against plan. Pure geometry on :mod:`geometry`; which pairs to look at is :mod:`picture`'s business.

Pieces. A plan is flown as pieces: each route leg cut along its geodesic into pieces of at most 20 NM, each with
the time the plan is on it (its ETAs interpolated by distance) and the hull of the altitude bands at the leg's two
waypoints. A plan of one waypoint is one point piece over the hull of its time windows. A plan's times are widened
by ``eta_buffer_s`` either side and kept within the hull of its time windows (also widened). A track is one
piece: its constant-velocity path over [now, now + look-ahead] widened to whole ``track_step_s`` steps, at its
altitude, with exact times.

Hit of two pieces (plan/plan and track/plan): their bands overlap or come within the vertical separation; the
pieces come within the lateral separation (segment to segment, in a local frame); the part of each piece within
the lateral separation of the other (exact, :func:`geometry.close_interval`) is flown, by each side, at times that
overlap. The hit's window is that overlap; its points are the ends of both close parts; its band is the overlap
of the two bands (or, when they do not overlap, the gap between them).

Conflict of a pair: its hits merged by time (less than ``merge_gap_s`` apart: one conflict), windows ending
before ``now`` dropped (passed). Volume: centre midway between the two of the hits' points farthest apart, radius
to the farthest point from it, band hull. Track against track: the closest point of approach of both constant-velocity
tracks within the look-ahead, below both minima (now, when the distance would shrink by less than 1 m); window:
when they are within the lateral separation under constant velocity, bounded to [start of the track step - track
max age, end of the stepped look-ahead + look-ahead] (only tracks keeping nearly the same distance reach the
bounds); centre: midway between them at the CPA; radius: the lateral separation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from consumers.deconfliction import geometry as geo
from consumers.deconfliction.index import M_PER_DEG_LAT
from consumers.deconfliction.model import Plan, Track
from consumers.deconfliction.params import Params

__all__ = ["PLAN_PLAN", "TRACK_PLAN", "TRACK_TRACK", "KINDS", "Conflict", "Hit", "Piece", "conflicts_of_pieces",
           "merge", "piece_hit", "plan_pieces", "track_piece", "track_track"]

PLAN_PLAN, TRACK_TRACK, TRACK_PLAN = "PLAN_PLAN", "TRACK_TRACK", "TRACK_PLAN"
KINDS = (PLAN_PLAN, TRACK_TRACK, TRACK_PLAN)

Point = tuple[float, float]
#: two tracks whose distance would shrink by less than this within the look-ahead are closest now
CPA_FLAT_M = 1.0


@dataclass(frozen=True)
class Piece:
    p0: Point
    p1: Point
    t0: float          # ms at p0
    t1: float          # ms at p1
    floor_ft: float
    ceiling_ft: float
    buffer_ms: float   # times widened by this either side
    lo_ms: float       # and kept within [lo, hi]
    hi_ms: float
    box: tuple[float, float, float, float] = field(init=False, compare=False, repr=False)  # of p0, p1 (degrees)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", (min(self.p0[0], self.p1[0]), min(self.p0[1], self.p1[1]),
                                         max(self.p0[0], self.p1[0]), max(self.p0[1], self.p1[1])))


@dataclass(frozen=True)
class Hit:
    start_ms: float
    end_ms: float
    points: tuple[Point, ...]
    floor_ft: float
    ceiling_ft: float
    lateral_m: float
    vertical_ft: float


@dataclass(frozen=True)
class Conflict:
    kind: str
    ours: str          # object key of ours ("/plan/<sortie>", "/track/<track>")
    theirs: str        # object key of the partner's ("RUS/plan/<sortie>")
    centre: Point
    radius_m: float
    floor_ft: float
    ceiling_ft: float
    start_ms: int
    end_ms: int
    lateral_m: float   # least predicted lateral distance
    vertical_ft: float  # least vertical distance (0 when the bands overlap)
    cpa_ms: int | None = None  # track against track: time of the closest approach

    @property
    def partner(self) -> str:
        return self.theirs.split("/", 1)[0]

    @property
    def pair(self) -> tuple[str, str, str]:
        return self.kind, self.ours, self.theirs


# ------------------------------------------------------------------------------------------------- pieces


def plan_pieces(plan: Plan, params: Params) -> list[Piece]:
    if not plan.route:
        return []
    buf = params.eta_buffer_s * 1000
    if plan.windows:
        lo, hi = min(w[0] for w in plan.windows) - buf, max(w[1] for w in plan.windows) + buf
    else:
        lo, hi = -math.inf, math.inf
    route = plan.route
    if len(route) == 1:
        w = route[0]
        t0, t1 = (lo + buf, hi - buf) if plan.windows else (w.eta_ms, w.eta_ms)
        p = (w.lat, w.lon)
        return [Piece(p, p, t0, t1, w.floor_ft, w.ceiling_ft, buf, lo, hi)]
    out = []
    for a, b in zip(route, route[1:]):
        floor, ceiling = min(a.floor_ft, b.floor_ft), max(a.ceiling_ft, b.ceiling_ft)
        pts = geo.densify((a.lat, a.lon), (b.lat, b.lon))
        for (p, f), (q, g) in zip(pts, pts[1:]):
            out.append(Piece(p, q, a.eta_ms + f * (b.eta_ms - a.eta_ms), a.eta_ms + g * (b.eta_ms - a.eta_ms),
                             floor, ceiling, buf, lo, hi))
    return out


def track_span(now_ms: int, params: Params) -> tuple[int, int]:
    """[now, now + look-ahead] widened to whole steps."""
    step = round(params.track_step_s * 1000)
    return (now_ms // step) * step, -((-(now_ms + round(params.lookahead_s * 1000))) // step) * step


def track_at(track: Track, t_ms: float) -> Point:
    """Where a constant-velocity track is at ``t_ms`` (along the geodesic of its heading)."""
    dist = track.speed_kt * geo.KT_MS * (t_ms - track.time_ms) / 1000
    return geo.destination((track.lat, track.lon), track.heading_deg, dist)


def track_piece(track: Track, now_ms: int, params: Params) -> Piece:
    t0, t1 = track_span(now_ms, params)
    return Piece(track_at(track, t0), track_at(track, t1), t0, t1, track.altitude_ft, track.altitude_ft, 0, t0, t1)


# ---------------------------------------------------------------------------------------------------- hits


def _times(piece: Piece, s0: float, s1: float) -> tuple[float, float]:
    """When the piece's part [s0, s1] is flown, widened and clipped (ETAs may run backwards: sorted)."""
    a, b = sorted((piece.t0 + s0 * (piece.t1 - piece.t0), piece.t0 + s1 * (piece.t1 - piece.t0)))
    return max(a - piece.buffer_ms, piece.lo_ms), min(b + piece.buffer_ms, piece.hi_ms)


#: slack on the box test: a piece is a geodesic (or, in the frame, a straight line) between its ends, which can
#: bow out of the box of its ends by a few tens of metres over 20 NM
BOX_SLACK_M = 1000.0


def _apart(a: tuple[float, float, float, float], b: tuple[float, float, float, float], lateral_m: float) -> bool:
    """True when boxes a and b (lat_min, lon_min, lat_max, lon_max, degrees) are surely more than ``lateral_m``
    apart: by latitude (a degree is at least 110,574 m) or by longitude (at least 111,320 m times the cosine of
    the box's latitude farthest from the equator, with 1 % to spare)."""
    reach = lateral_m + BOX_SLACK_M
    dlat = max(a[0] - b[2], b[0] - a[2])
    if dlat * M_PER_DEG_LAT > reach:
        return True
    dlon = max(a[1] - b[3], b[1] - a[3])
    if dlon <= 0:
        return False
    far = max(abs(a[0]), abs(a[2]), abs(b[0]), abs(b[2]))
    return dlon * 111_320.0 * 0.99 * math.cos(math.radians(min(far, 89.9))) > reach


def piece_hit(a: Piece, b: Piece, params: Params) -> Hit | None:
    """The hit of two pieces (symmetric in a and b), or None."""
    gap = max(a.floor_ft, b.floor_ft) - min(a.ceiling_ft, b.ceiling_ft)
    if gap >= params.vertical_ft and gap > 0:
        return None
    wa, wb = _times(a, 0.0, 1.0), _times(b, 0.0, 1.0)  # cheap first: the pieces' whole times must overlap
    if max(wa[0], wb[0]) > min(wa[1], wb[1]):
        return None
    if _apart(a.box, b.box, params.lateral_m):  # and their boxes must come within the separation
        return None
    frame = geo.frame_for(a.p0, a.p1, b.p0, b.p1)
    a0, a1, b0, b1 = frame.xy(a.p0), frame.xy(a.p1), frame.xy(b.p0), frame.xy(b.p1)
    d = geo.segment_distance(a0, a1, b0, b1)
    if d >= params.lateral_m:
        return None
    sa = geo.close_interval(a0, a1, b0, b1, params.lateral_m)
    sb = geo.close_interval(b0, b1, a0, a1, params.lateral_m)
    if sa is None or sb is None:
        return None
    ta, tb = _times(a, *sa), _times(b, *sb)
    start, end = max(ta[0], tb[0]), min(ta[1], tb[1])
    if start > end:
        return None
    pts = []
    for (p0, p1), (s0, s1) in (((a0, a1), sa), ((b0, b1), sb)):
        for s in (s0, s1):
            pts.append(frame.latlon((p0[0] + s * (p1[0] - p0[0]), p0[1] + s * (p1[1] - p0[1]))))
    lo, hi = max(a.floor_ft, b.floor_ft), min(a.ceiling_ft, b.ceiling_ft)
    return Hit(start, end, tuple(pts), min(lo, hi), max(lo, hi), d, max(0.0, gap))


def merge(kind: str, ours: str, theirs: str, hits: list[Hit], now_ms: int, params: Params) -> list[Conflict]:
    """A pair's hits as conflicts: merged when less than ``merge_gap_s`` apart, those that ended before now
    dropped."""
    groups: list[list[Hit]] = []
    gap = params.merge_gap_s * 1000
    for h in sorted(hits, key=lambda h: (h.start_ms, h.end_ms)):
        if groups and h.start_ms <= max(g.end_ms for g in groups[-1]) + gap:
            groups[-1].append(h)
        else:
            groups.append([h])
    out = []
    for g in groups:
        end = max(h.end_ms for h in g)
        if end < now_ms:
            continue
        points = [p for h in g for p in h.points]
        centre, radius = _circle(points)
        out.append(Conflict(kind, ours, theirs, centre, radius, min(h.floor_ft for h in g),
                            max(h.ceiling_ft for h in g), math.floor(min(h.start_ms for h in g)), math.ceil(end),
                            min(h.lateral_m for h in g), min(h.vertical_ft for h in g)))
    return out


def _circle(points: list[Point]) -> tuple[Point, float]:
    """Centre: the midpoint of the two points farthest apart; radius: to the farthest point from it (at most 2/sqrt(3)
    of the smallest enclosing circle's). Independent of the frame's orientation, so a translated scenario gives the
    translated volume."""
    frame = geo.frame_for(*points)
    xy = sorted({frame.xy(p) for p in points})
    _, p, q = max(((math.hypot(p[0] - q[0], p[1] - q[1]), p, q) for i, p in enumerate(xy) for q in xy[i:]),
                  key=lambda t: t[0])
    cx, cy = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
    return frame.latlon((cx, cy)), max(math.hypot(r[0] - cx, r[1] - cy) for r in xy)


def conflicts_of_pieces(kind: str, ours: str, theirs: str, pairs: list[tuple[Piece, Piece]], now_ms: int,
                        params: Params) -> list[Conflict]:
    """Plan against plan, or track against plan: the conflicts of one pair from its candidate piece pairs."""
    hits = [h for a, b in pairs if (h := piece_hit(a, b, params)) is not None]
    return merge(kind, ours, theirs, hits, now_ms, params) if hits else []


# ------------------------------------------------------------------------------------------ track / track


def track_track(ours: Track, theirs: Track, now_ms: int, params: Params) -> list[Conflict]:
    """The closest approach of two tracks within the look-ahead from now, when it is below both minima."""
    vertical = abs(ours.altitude_ft - theirs.altitude_ft)
    if vertical >= params.vertical_ft:
        return []
    horizon = params.lookahead_s
    t1 = now_ms + horizon * 1000
    a0, a1, b0, b1 = track_at(ours, now_ms), track_at(ours, t1), track_at(theirs, now_ms), track_at(theirs, t1)
    frame = geo.frame_for(a0, a1, b0, b1)
    pa, pb = frame.xy(a0), frame.xy(b0)
    qa, qb = frame.xy(a1), frame.xy(b1)
    va = ((qa[0] - pa[0]) / horizon, (qa[1] - pa[1]) / horizon)
    vb = ((qb[0] - pb[0]) / horizon, (qb[1] - pb[1]) / horizon)
    rel, vel = (pa[0] - pb[0], pa[1] - pb[1]), (va[0] - vb[0], va[1] - vb[1])
    tau, dist = geo.cpa(rel, vel, horizon)
    d0 = math.hypot(*rel)
    if d0 - dist < CPA_FLAT_M:  # (nearly) the same velocity: the distance hardly changes, the closest is now
        tau, dist = 0.0, d0
    if dist >= params.lateral_m:
        return []
    inside = geo.within_interval(rel, vel, params.lateral_m) or (0.0, 0.0)
    # bounded, and in whole steps, for tracks that keep (nearly) the same distance: from the last reports to a
    # look-ahead past the horizon
    span0, span1 = track_span(now_ms, params)
    enter = max(now_ms + inside[0] * 1000, span0 - params.track_max_age_s * 1000)
    leave = min(now_ms + inside[1] * 1000, span1 + horizon * 1000)
    mid = ((pa[0] + va[0] * tau + pb[0] + vb[0] * tau) / 2, (pa[1] + va[1] * tau + pb[1] + vb[1] * tau) / 2)
    return [Conflict(TRACK_TRACK, ours.key, theirs.key, frame.latlon(mid), params.lateral_m,
                     min(ours.altitude_ft, theirs.altitude_ft), max(ours.altitude_ft, theirs.altitude_ft),
                     math.floor(enter), math.ceil(leave), dist, vertical,
                     round(now_ms + tau * 1000))]

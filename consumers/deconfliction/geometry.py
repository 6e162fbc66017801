"""Geodesy for deconfliction: distances and bearings on the WGS 84 ellipsoid (pyproj.Geod), and planar
geometry in a local azimuthal-equidistant projection (pyproj, ``+proj=aeqd +ellps=WGS84``).

Method and error bound
----------------------
* Distance, bearing, destination: ``pyproj.Geod(ellps="WGS84")`` (Karney's geodesics), exact to the nanometre.
* Leg-to-leg distance, close intervals, closest point of approach: in a :class:`LocalFrame`, an azimuthal
  equidistant projection whose centre is snapped to a ``FRAME_STEP_DEG`` grid (so a frame is made once per
  0.5 degree cell and cached, and both orders of a pair get the same frame). Route legs are cut into pieces of at
  most ``MAX_PIECE_M`` (20 NM) along the geodesic (:func:`densify`) before they are projected, so what one frame
  holds (two pieces, or two tracks' 5-minute paths) lies within ``FRAME_RADIUS_M`` (150 km) of its centre. The aeqd
  projection keeps distances from the centre exact; the scale across is rho/sin(rho) (rho = r / 6371 km), so a
  distance measured in the frame is off by at most rho^2/6 = 1e-4 relative at r = 150 km: < 1 m at 5 NM. A
  geodesic piece drawn as a straight chord in the frame deviates from it by well under a metre. The unit tests
  check leg-to-leg distances against brute-force geodesic sampling (Geod.inv on dense points) to 25 m (the
  sampling's own step); the frame's error is about 1 m. Where a result is ill-conditioned (the ends of the close
  parts of two nearly parallel legs move by 1/sin(angle) per metre of error), that factor applies on top.
* Tracks: constant velocity along the geodesic of their heading; a track's path over a time span is projected
  as the chord from its position at the start to its position at the end (both from Geod.fwd), so the
  meridian convergence of the frame does not tilt its velocity.

Antimeridian and poles are out of scope (the area of operations is the Levant): frames assume |lat| < 80.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from pyproj import Geod, Transformer

__all__ = ["FT_M", "KT_MS", "NM_M", "FRAME_RADIUS_M", "FRAME_STEP_DEG", "GEOD", "MAX_PIECE_M", "LocalFrame",
           "bearing_deg", "close_interval", "cpa", "densify", "destination", "distance_m", "frame_for",
           "segment_distance", "within_interval"]

NM_M = 1852.0
FT_M = 0.3048
KT_MS = 1852.0 / 3600.0

GEOD = Geod(ellps="WGS84")
#: frame centres are snapped to this grid (degrees)
FRAME_STEP_DEG = 0.5
#: route legs are cut into pieces no longer than this (20 NM) before they are compared
MAX_PIECE_M = 20 * NM_M
#: the largest distance from a frame's centre the error bound above is stated for
FRAME_RADIUS_M = 150_000.0

Point = tuple[float, float]  # (lat, lon) in degrees
XY = tuple[float, float]     # metres east, north in a LocalFrame


# ------------------------------------------------------------------------------------------ on the ellipsoid


def distance_m(a: Point, b: Point) -> float:
    """Geodesic distance in metres between two (lat, lon) points."""
    return GEOD.inv(a[1], a[0], b[1], b[0])[2]


def bearing_deg(a: Point, b: Point) -> float:
    """Initial true bearing from a to b, in [0, 360)."""
    return GEOD.inv(a[1], a[0], b[1], b[0])[0] % 360.0


def destination(a: Point, bearing: float, dist_m: float) -> Point:
    """The point ``dist_m`` from a along the geodesic of initial bearing ``bearing``."""
    lon, lat, _ = GEOD.fwd(a[1], a[0], bearing, dist_m)
    return lat, lon


def densify(a: Point, b: Point, max_m: float = MAX_PIECE_M) -> list[tuple[Point, float]]:
    """Points of the geodesic a -> b, a and b included, no two consecutive ones more than ``max_m`` apart, each
    with its fraction of the whole length (0 at a, 1 at b)."""
    dist = distance_m(a, b)
    n = max(1, math.ceil(dist / max_m))
    if n == 1:
        return [(a, 0.0), (b, 1.0)]
    inner = GEOD.npts(a[1], a[0], b[1], b[0], n - 1)
    return [(a, 0.0)] + [((lat, lon), (i + 1) / n) for i, (lon, lat) in enumerate(inner)] + [(b, 1.0)]


# ------------------------------------------------------------------------------------------- local frame


@dataclass(frozen=True)
class LocalFrame:
    """An azimuthal-equidistant projection centred at (lat0, lon0): x east, y north, metres."""

    lat0: float
    lon0: float

    @property
    def _tr(self) -> Transformer:
        return _transformer(self.lat0, self.lon0)

    def xy(self, p: Point) -> XY:
        return self._tr.transform(p[1], p[0])

    def latlon(self, q: XY) -> Point:
        lon, lat = self._tr.transform(q[0], q[1], direction="INVERSE")
        return lat, lon


@lru_cache(maxsize=4096)
def _transformer(lat0: float, lon0: float) -> Transformer:
    return Transformer.from_proj("+proj=longlat +ellps=WGS84 +no_defs",
                                 f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m +no_defs",
                                 always_xy=True)


def frame_for(*points: Point) -> LocalFrame:
    """The frame of a group of nearby points: centred at their mean, snapped to the FRAME_STEP_DEG grid (the same
    frame whatever the order of the points, and one cached transformer per grid cell)."""
    lat = sum(sorted(p[0] for p in points)) / len(points)
    lon = sum(sorted(p[1] for p in points)) / len(points)
    return LocalFrame(round(lat / FRAME_STEP_DEG) * FRAME_STEP_DEG, round(lon / FRAME_STEP_DEG) * FRAME_STEP_DEG)


# ------------------------------------------------------------------------------------------ planar geometry


def _sub(a: XY, b: XY) -> XY:
    return a[0] - b[0], a[1] - b[1]


def _dot(a: XY, b: XY) -> float:
    return a[0] * b[0] + a[1] * b[1]


def _cross(a: XY, b: XY) -> float:
    return a[0] * b[1] - a[1] * b[0]


def _point_segment(p: XY, a: XY, b: XY) -> float:
    ab = _sub(b, a)
    n = _dot(ab, ab)
    t = 0.0 if n == 0 else min(1.0, max(0.0, _dot(_sub(p, a), ab) / n))
    return math.hypot(p[0] - a[0] - t * ab[0], p[1] - a[1] - t * ab[1])


def segment_distance(a0: XY, a1: XY, b0: XY, b1: XY) -> float:
    """Minimum distance between segments a0-a1 and b0-b1 (0 when they cross)."""
    da, db = _sub(a1, a0), _sub(b1, b0)
    den = _cross(da, db)
    if den != 0:
        w = _sub(b0, a0)
        s, t = _cross(w, db) / den, _cross(w, da) / den
        if 0.0 <= s <= 1.0 and 0.0 <= t <= 1.0:
            return 0.0
    return min(_point_segment(a0, b0, b1), _point_segment(a1, b0, b1),
               _point_segment(b0, a0, a1), _point_segment(b1, a0, a1))


def close_interval(a0: XY, a1: XY, b0: XY, b1: XY, d: float) -> tuple[float, float] | None:
    """The fractions [s0, s1] of segment a0-a1 whose points lie within ``d`` of segment b0-b1, or None.

    Exact: the points within d of a segment form a convex "stadium" (two discs and a rectangle); a line meets a
    convex set in one interval, the hull of the intervals it meets the three parts in."""
    da = _sub(a1, a0)
    la2 = _dot(da, da)
    if la2 == 0:  # a point
        return (0.0, 1.0) if _point_segment(a0, b0, b1) <= d else None
    parts: list[tuple[float, float]] = []
    for c in (b0, b1):  # discs: |a0 + s da - c|^2 <= d^2
        w = _sub(a0, c)
        bq, cq = 2 * _dot(w, da), _dot(w, w) - d * d
        disc = bq * bq - 4 * la2 * cq
        if disc >= 0:
            r = math.sqrt(disc)
            parts.append(((-bq - r) / (2 * la2), (-bq + r) / (2 * la2)))
    db = _sub(b1, b0)
    lb = math.sqrt(_dot(db, db))
    if lb > 0:  # rectangle: 0 <= along <= lb and |across| <= d, both linear in s
        u = (db[0] / lb, db[1] / lb)
        lo, hi = -math.inf, math.inf
        for value0, slope, vmin, vmax in ((_dot(_sub(a0, b0), u), _dot(da, u), 0.0, lb),
                                          (_cross(u, _sub(a0, b0)), _cross(u, da), -d, d)):
            if slope == 0:
                if not vmin <= value0 <= vmax:
                    lo, hi = 1.0, 0.0
                    break
                continue
            s0, s1 = sorted(((vmin - value0) / slope, (vmax - value0) / slope))
            lo, hi = max(lo, s0), min(hi, s1)
        if lo <= hi:
            parts.append((lo, hi))
    if not parts:
        return None
    s0, s1 = max(0.0, min(p[0] for p in parts)), min(1.0, max(p[1] for p in parts))
    return (s0, s1) if s0 <= s1 else None


def within_interval(p: XY, v: XY, d: float) -> tuple[float, float] | None:
    """The times t (unbounded) at which |p + v t| <= d, for a relative position p and velocity v; None if never.
    With v = 0: (-inf, inf) when |p| <= d."""
    a = _dot(v, v)
    c = _dot(p, p) - d * d
    if a == 0:
        return (-math.inf, math.inf) if c <= 0 else None
    b = 2 * _dot(p, v)
    disc = b * b - 4 * a * c
    if disc < 0:
        return None
    r = math.sqrt(disc)
    return (-b - r) / (2 * a), (-b + r) / (2 * a)


def cpa(p: XY, v: XY, horizon: float) -> tuple[float, float]:
    """Closest point of approach of a relative motion p + v t over t in [0, horizon]: (t, distance)."""
    a = _dot(v, v)
    t = 0.0 if a == 0 else min(horizon, max(0.0, -_dot(p, v) / a))
    return t, math.hypot(p[0] + v[0] * t, p[1] + v[1] * t)

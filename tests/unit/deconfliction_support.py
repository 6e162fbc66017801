"""Synthetic plans and tracks for the deconfliction tests: records as fastavro gives them (our schema, or a partner's
derived one without base, mission or weapons), built from geometry whose answers are known beforehand."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timezone

from consumers.deconfliction import geometry as geo

T0 = 1_800_000_000_000  # ms: the synthetic clock's origin
C = (35.0, 38.0)         # the synthetic crossing point (northern Syria)
_ids = itertools.count()

#: sentinels of what deconfliction must never carry
SENTINELS = {"mission_purpose": "SENTINEL-PURPOSE-7731", "target_area": "SENTINEL-TARGET-7731",
             "weapons_loadout": ["SENTINEL-LOADOUT-7731"], "base": "SENTINEL-BASE-7731"}


def dt(ms: float) -> datetime:
    return datetime.fromtimestamp(round(ms) / 1000, tz=timezone.utc)


def label(created_ms: float = T0, rel=("FRA", "RUS", "USA"), classification="CONFIDENTIAL") -> dict:
    return {"classification": classification, "releasable_to": list(rel), "caveats": [],
            "originator": "air.test", "created_at": dt(created_ms),
            "message_id": str(uuid.UUID(int=next(_ids) + (1 << 100)))}


def plan(sortie_id: str, points, etas, band=(20000, 25000), *, ours=True, status="PLANNED", windows=None,
         created_ms: float = T0, callsign=None, rel=("FRA", "RUS", "USA")) -> dict:
    """A plan record: points [(lat, lon)], ETAs in ms, one band for every waypoint (or one per waypoint)."""
    bands = band if isinstance(band[0], tuple) else [band] * len(points)
    rec = {"label": label(created_ms, rel), "sortie_id": sortie_id, "callsign": callsign or f"CALL {sortie_id}",
           "aircraft_type": "T", "aircraft_count": 2, "status": status,
           "time_windows": [{"start": dt(s), "end": dt(e)} for s, e in (windows or [(min(etas), max(etas))])],
           "route": [{"name": f"WP{i}", "position": {"lat": p[0], "lon": p[1]},
                      "altitude_band": {"floor_ft": b[0], "ceiling_ft": b[1]}, "eta": dt(e)}
                     for i, (p, e, b) in enumerate(zip(points, etas, bands))]}
    if ours:
        rec.update(SENTINELS, carrier_based=False)
    return rec


def track(track_id: str, pos, heading: float, speed_kt: float, alt_ft: int, time_ms: float, *, callsign=None,
          sortie_id=None, rel=("FRA", "RUS", "USA")) -> dict:
    return {"label": label(time_ms, rel), "track_id": track_id, "callsign": callsign or f"TRK {track_id}",
            "time": dt(time_ms), "position": {"lat": pos[0], "lon": pos[1]}, "altitude_ft": alt_ft,
            "heading_deg": heading, "speed_kt": speed_kt, "sortie_id": sortie_id}


def straight(centre, bearing: float, half_m: float, speed_ms: float, t_centre_ms: float):
    """A straight route through ``centre`` along ``bearing`` (at the centre), ``half_m`` either side, flown at
    ``speed_ms`` so that it passes the centre at ``t_centre_ms``: (points, etas)."""
    a = geo.destination(centre, (bearing + 180) % 360, half_m)
    b = geo.destination(centre, bearing, half_m)
    dt_ms = half_m / speed_ms * 1000
    return [a, b], [round(t_centre_ms - dt_ms), round(t_centre_ms + dt_ms)]


def towards(target, from_bearing: float, dist_m: float):
    """A point ``dist_m`` from ``target`` on bearing ``from_bearing``, and the heading there towards the target."""
    p = geo.destination(target, from_bearing, dist_m)
    return p, geo.bearing_deg(p, target)


def by_kind(emissions):
    out: dict[str, list] = {}
    for e in emissions:
        out.setdefault(e.alert.conflict.kind, []).append(e)
    return out

"""A released record -> what the console lists and draws. Pure.

Each record a principal reads becomes one *item*: where it came from (topic, partition, offset), its record
time, its type and source (ours, or a partner's record released onward), a title (callsign, ship, group), the
key fields (the officers' feed shows the same: :func:`consumers.officers.feed.key_fields`), the whole value as
released, and its shapes on the map:

    point    a position released as it is                        {"kind": "point", "lat", "lon"}
    cell     a coarsened position: its grid cell                 {"kind": "cell", "south", "west", "north", "east"}
    circle   an area (centre and radius) or a conflict volume    {"kind": "circle", "lat", "lon", "radius_m", ...}
    route    a plan's waypoints, with altitude bands and ETAs    {"kind": "route", "points": [...]}

plus ``track``, the key a map joins positions on into a trail (the track id, the ship id, the callsign, as
released). Nothing is added that the record does not carry: what the page shows is what the principal received.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from consumers.officers.feed import field_at, key_fields
from core import topics
from console.precision import Grids, cell_of

__all__ = ["item_of", "jsonable"]

NM_M = 1852.0
KM_M = 1000.0


def jsonable(value: Any) -> Any:
    """A decoded Avro value as JSON: times as ISO 8601 (UTC), bytes as base64, UUIDs and decimals as strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(
            dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # UUIDs, decimals, enums


def _latlon(p: Any) -> tuple[float, float] | None:
    if not isinstance(p, Mapping):
        return None
    lat, lon = p.get("lat"), p.get("lon")
    if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return float(lat), float(lon)


def _position(grids: Grids, origin: str | None, type_name: str, path: str, p: Any) -> dict | None:
    ll = _latlon(p)
    if ll is None:
        return None
    cell = cell_of(grids, origin, type_name, path, *ll)
    if cell is not None:
        s, w, n, e = cell
        return {"kind": "cell", "south": s, "west": w, "north": n, "east": e, "path": path}
    return {"kind": "point", "lat": ll[0], "lon": ll[1], "path": path}


def _area(grids: Grids, origin, type_name: str, path: str, area: Any) -> list[dict]:
    """An area {name, center, radius_km}: its centre (point or cell) and, when released, its circle."""
    if not isinstance(area, Mapping):
        return []
    shape = _position(grids, origin, type_name, f"{path}.center", area.get("center"))
    if shape is None:
        return []
    out = [shape]
    radius = area.get("radius_km")
    if shape["kind"] == "point" and isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0:
        out = [{"kind": "circle", "lat": shape["lat"], "lon": shape["lon"], "radius_m": radius * KM_M,
                "path": path}]
    return out


def _route(v: Mapping, grids: Grids, origin, type_name: str) -> list[dict]:
    points = []
    for wp in v.get("route") or ():
        shape = _position(grids, origin, type_name, "route.position", wp.get("position"))
        if shape is None:
            continue
        band = wp.get("altitude_band") if isinstance(wp.get("altitude_band"), Mapping) else None
        points.append({**shape, "name": wp.get("name"), "eta": jsonable(wp.get("eta")),
                       "floor_ft": band.get("floor_ft") if band else None,
                       "ceiling_ft": band.get("ceiling_ft") if band else None})
    if not points:
        return []
    windows = [{"start": jsonable(w.get("start")), "end": jsonable(w.get("end"))} for w in v.get("time_windows") or ()]
    return [{"kind": "route", "points": points, "windows": windows}]


def _volume(v: Mapping) -> list[dict]:
    vol = v.get("volume")
    if not isinstance(vol, Mapping):
        return []
    ll = _latlon(vol.get("centre"))
    radius = vol.get("radius_nm")
    if ll is None or not isinstance(radius, (int, float)) or not math.isfinite(radius):
        return []
    window = v.get("window") if isinstance(v.get("window"), Mapping) else {}
    return [{"kind": "circle", "lat": ll[0], "lon": ll[1], "radius_m": max(radius, 0.0) * NM_M, "path": "volume",
             "floor_ft": vol.get("floor_ft"), "ceiling_ft": vol.get("ceiling_ft"),
             "start": jsonable(window.get("start")), "end": jsonable(window.get("end")), "alert": True}]


def _shapes(type_name: str, v: Mapping, grids: Grids, origin: str | None) -> list[dict]:
    if type_name in ("AirTrack", "MaritimeTrack", "StrikeReport", "GroupLocationReport"):
        shape = _position(grids, origin, type_name, "position", v.get("position"))
        return [shape] if shape else []
    if type_name == "AirMissionPlan":
        return _route(v, grids, origin, type_name)
    if type_name == "ForeignFighterReport":
        return _area(grids, origin, type_name, "last_known_area", v.get("last_known_area"))
    if type_name == "LogisticsObservation":
        return _area(grids, origin, type_name, "area", v.get("area"))
    if type_name == "DeconflictionAlert":
        return _volume(v)
    return []


def _track_key(type_name: str, v: Mapping, origin: str | None) -> str | None:
    """The released identifier positions are joined on into a trail (None: the record has no trail)."""
    field = {"AirTrack": ("track_id", "callsign"), "MaritimeTrack": ("ship_id", "ship_name")}.get(type_name)
    for name in field or ():
        if v.get(name) not in (None, ""):
            return f"{origin or ''}/{type_name}/{v[name]}"
    return None


def _title(type_name: str, v: Mapping) -> str:
    for path in {"AirTrack": ("callsign", "track_id"), "AirMissionPlan": ("callsign",),
                 "MaritimeTrack": ("ship_name", "ship_id"), "StrikeReport": ("target_category", "strike_id"),
                 "GroupLocationReport": ("group_id",), "ForeignFighterReport": ("affiliation", "subject.subject_ref"),
                 "LogisticsObservation": ("area.name",), "DeconflictionAlert": ("kind",)}.get(type_name, ()):
        got = field_at(v, path)
        if got not in (None, ""):
            return str(got)
    return type_name


def _time_of(type_name: str, v: Mapping) -> Any:
    for path in ("time", "time_bucket_start", "window.start", "label.created_at"):
        got = field_at(v, path)
        if got is not None:
            return jsonable(got)
    return None


def item_of(topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
            headers: Sequence[tuple[str, bytes | None]] | None, value: Mapping[str, Any], grids: Grids) -> dict:
    """One released record as the page shows it (see the module's docstring)."""
    hdrs = {k: (v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v) for k, v in headers or ()}
    try:
        origin, type_name = topics.split_source(topics.source_of_recipient_topic(topic)[1])
    except Exception:  # noqa: BLE001 - a feed topic of an unknown shape: shown by its type header alone
        origin, type_name = None, str(hdrs.get("type") or "?").rpartition(".")[2]
    summary = [[k, jsonable(val)] for k, val in key_fields(type_name, dict(value)) if val not in (None, "")]
    return {"id": f"{topic}/{partition}/{offset}", "topic": topic, "partition": partition, "offset": offset,
            "timestamp": timestamp_ms, "type": type_name, "origin": origin,
            "key": key.decode("utf-8", "replace") if key else None, "message_id": hdrs.get("message_id"),
            "title": _title(type_name, value), "time": _time_of(type_name, value), "summary": summary,
            "classification": field_at(value, "label.classification"),
            "shapes": _shapes(type_name, value, grids, origin), "track": _track_key(type_name, value, origin),
            "value": jsonable(value)}

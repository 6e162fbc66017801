"""An emission as a DeconflictionAlert record, exactly as ``schemas/DeconflictionAlert.avsc`` says (a message type
of the bus: the forwarder releases it to our air component and to the partner it is about, with their policies).

Label: classification the higher of the two records' that last shaped the alert; REL TO our nation, and the partner
only when our record's REL TO names it (an alert about a flight of ours the partner may not know of stays with us:
the forwarder's label check withholds it); caveat DECONFLICTION ONLY; originator ``Params.originator``;
created_at = now; message_id from (alert id, revision), so a replay of the same step gives the same record.
The window is half-open and never empty: a conflict at one instant t is [t, t + 1 ms) (the schema's shared
TimeWindow: end after start).
The record holds only what the volume, the window and the parties say: no purpose, target, loadout or base
(deconfliction never keeps them, see :mod:`model`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import schemas

from consumers.deconfliction.geometry import NM_M
from consumers.deconfliction.lifecycle import CLEARED, Emission, Party
from consumers.deconfliction.params import Params

__all__ = ["CAVEAT", "SCHEMA_PATH", "alert_record", "alert_schema"]

SCHEMA_PATH: Path = schemas.SCHEMA_DIR / "DeconflictionAlert.avsc"
CAVEAT = "DECONFLICTION ONLY"
_LEVELS = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP_SECRET")


def alert_schema() -> dict:
    """The DeconflictionAlert schema (parsed JSON, a fresh dict)."""
    return schemas.load_schema("DeconflictionAlert")


def _level(name: str) -> int:
    return _LEVELS.index(name) if name in _LEVELS else len(_LEVELS) - 1  # unknown: the most restrictive


def _dt(ms: float) -> datetime:
    return datetime.fromtimestamp(round(ms) / 1000, tz=timezone.utc)


def _party(p: Party, nation: str) -> dict:
    return {"nation": nation, "object": p.object, "callsign": p.callsign, "sortie_id": p.sortie_id,
            "track_id": p.track_id}


def alert_record(e: Emission, now_ms: int, params: Params) -> dict:
    a, c = e.alert, e.alert.conflict
    partner = c.partner
    rel = [params.our_nation] + ([partner] if partner in a.ours.releasable_to else [])
    cls_ = _LEVELS[max(_level(a.ours.classification), _level(a.theirs.classification))]
    return {
        "label": {"classification": cls_, "releasable_to": rel, "caveats": [CAVEAT], "originator": params.originator,
                  "created_at": _dt(now_ms), "message_id": e.message_id},
        "alert_id": a.alert_id,
        "revision": a.revision,
        "status": e.status,
        "cleared_reason": e.reason if e.status == CLEARED else None,
        "kind": c.kind,
        "partner": partner,
        "ours": _party(a.ours, params.our_nation),
        "theirs": _party(a.theirs, partner),
        "volume": {"centre": {"lat": c.centre[0], "lon": c.centre[1]}, "radius_nm": c.radius_m / NM_M,
                   "floor_ft": round(c.floor_ft), "ceiling_ft": round(c.ceiling_ft)},
        "window": {"start": _dt(c.start_ms), "end": _dt(max(round(c.start_ms) + 1, round(c.end_ms)))},
        "closest_approach": None if c.cpa_ms is None else
        {"time": _dt(c.cpa_ms), "time_to_cpa_s": max(0.0, (c.cpa_ms - now_ms) / 1000)},
        "lateral_nm": c.lateral_m / NM_M,
        "vertical_ft": round(c.vertical_ft),
        "minima": {"lateral_nm": params.lateral_m / NM_M, "vertical_ft": round(params.vertical_ft)},
    }

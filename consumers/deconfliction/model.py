"""What deconfliction keeps of a plan or a track: the geometry, the callsign, the ids and the label facts an alert's
label is made from. Nothing else (no purpose, target, loadout or base), so neither the state nor its changelog
holds them. Built from decoded records (fastavro dicts: our schema or a partner's derived one), JSON-able both ways.

Sides: ``None`` is ours, a partner code ("RUS") is that partner's, as :func:`core.topics.split_source` says.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from core.topics import split_source

__all__ = ["ACTIVE_STATUSES", "Plan", "RecordError", "Track", "Waypoint", "ms", "parse"]

#: statuses of a plan that deconfliction keeps (UNKNOWN: possibly active, as the schema says)
ACTIVE_STATUSES = frozenset({"PLANNED", "ACTIVE", "UNKNOWN"})


class RecordError(ValueError):
    """A record deconfliction cannot use (missing field, wrong type); the service counts and skips it."""


def ms(value: Any) -> int:
    """Milliseconds since the epoch of a timestamp-millis value as fastavro gives it (datetime) or as an int."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RecordError(f"not a timestamp: {type(value).__name__}")


@dataclass(frozen=True)
class Waypoint:
    lat: float
    lon: float
    floor_ft: int
    ceiling_ft: int
    eta_ms: int


@dataclass(frozen=True)
class Plan:
    side: str | None
    sortie_id: str
    callsign: str
    status: str
    windows: tuple[tuple[int, int], ...]
    route: tuple[Waypoint, ...]
    version_ms: int          # label.created_at: a later record of the sortie replaces this one
    classification: str
    releasable_to: tuple[str, ...]
    message_id: str

    @property
    def key(self) -> str:
        return f"{self.side or ''}/plan/{self.sortie_id}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(**{**d, "windows": tuple(tuple(w) for w in d["windows"]),
                      "route": tuple(Waypoint(**w) for w in d["route"]),
                      "releasable_to": tuple(d["releasable_to"])})


@dataclass(frozen=True)
class Track:
    side: str | None
    track_id: str
    callsign: str
    time_ms: int
    lat: float
    lon: float
    altitude_ft: int
    heading_deg: float
    speed_kt: float
    sortie_id: str | None
    classification: str
    releasable_to: tuple[str, ...]
    message_id: str

    @property
    def key(self) -> str:
        return f"{self.side or ''}/track/{self.track_id}"

    def to_dict(self) -> dict:
        """Its fields (flat: a copy of them is what dataclasses.asdict gives, at a fraction of the cost; a track is
        written to the changelog at every report)."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> Track:
        return cls(**{**d, "releasable_to": tuple(d["releasable_to"])})


def parse(source: str, record: dict) -> Plan | Track:
    """The Plan or Track of a decoded record of ``source`` ("AirTrack", "RUS/AirMissionPlan", ...)."""
    side, type_name = split_source(source)
    try:
        label = record["label"]
        cls_, rel, mid = str(label["classification"]), tuple(label["releasable_to"]), str(label["message_id"])
        if type_name == "AirMissionPlan":
            return Plan(side, str(record["sortie_id"]), str(record["callsign"]), str(record.get("status", "UNKNOWN")),
                        tuple((ms(w["start"]), ms(w["end"])) for w in record["time_windows"]),
                        tuple(Waypoint(float(w["position"]["lat"]), float(w["position"]["lon"]),
                                       int(w["altitude_band"]["floor_ft"]), int(w["altitude_band"]["ceiling_ft"]),
                                       ms(w["eta"])) for w in record["route"]),
                        ms(label["created_at"]), cls_, rel, mid)
        if type_name == "AirTrack":
            sortie = record.get("sortie_id")
            return Track(side, str(record["track_id"]), str(record["callsign"]), ms(record["time"]),
                         float(record["position"]["lat"]), float(record["position"]["lon"]),
                         int(record["altitude_ft"]), float(record["heading_deg"]) % 360.0,
                         max(0.0, float(record["speed_kt"])), None if sortie is None else str(sortie), cls_, rel, mid)
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(f"{source} record unusable: {type(e).__name__}: {e}") from None
    raise RecordError(f"{source}: deconfliction reads AirMissionPlan and AirTrack only")

"""Enums of the message models: one per Avro enum, member names equal to the Avro symbols."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "Classification",
    "MissionStatus",
    "Readiness",
    "TargetCategory",
    "AssessedEffect",
    "SourceType",
    "SourceReliability",
    "TrafficKind",
    "Trend",
    "AlertStatus",
    "ClearedReason",
    "ConflictKind",
    "ConflictObject",
]


class Classification(str, Enum):
    """Classification, least to most restrictive; unknown symbols read as TOP_SECRET (fail closed)."""

    UNCLASSIFIED = "UNCLASSIFIED"
    RESTRICTED = "RESTRICTED"
    CONFIDENTIAL = "CONFIDENTIAL"
    SECRET = "SECRET"
    TOP_SECRET = "TOP_SECRET"

    @property
    def level(self) -> int:
        """Rank of the classification: 0 for UNCLASSIFIED ... 4 for TOP_SECRET."""
        return list(type(self)).index(self)


class MissionStatus(str, Enum):
    PLANNED = "PLANNED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"


class Readiness(str, Enum):
    NORMAL = "NORMAL"
    ELEVATED = "ELEVATED"
    HIGH = "HIGH"
    UNKNOWN = "UNKNOWN"


class TargetCategory(str, Enum):
    OIL_TRANSPORT_LOGISTICS = "OIL_TRANSPORT_LOGISTICS"
    COMMAND_POST = "COMMAND_POST"
    WEAPONS_STORAGE = "WEAPONS_STORAGE"
    TRAINING_CAMP = "TRAINING_CAMP"
    VEHICLE = "VEHICLE"
    INFRASTRUCTURE = "INFRASTRUCTURE"
    OTHER = "OTHER"


class AssessedEffect(str, Enum):
    DESTROYED = "DESTROYED"
    DAMAGED = "DAMAGED"
    NO_EFFECT = "NO_EFFECT"
    UNKNOWN = "UNKNOWN"


class SourceType(str, Enum):
    HUMINT = "HUMINT"
    SIGINT = "SIGINT"
    IMINT = "IMINT"
    OSINT = "OSINT"
    OTHER = "OTHER"


class SourceReliability(str, Enum):
    A_RELIABLE = "A_RELIABLE"
    B_USUALLY_RELIABLE = "B_USUALLY_RELIABLE"
    C_FAIRLY_RELIABLE = "C_FAIRLY_RELIABLE"
    D_NOT_USUALLY_RELIABLE = "D_NOT_USUALLY_RELIABLE"
    E_UNRELIABLE = "E_UNRELIABLE"
    F_UNKNOWN = "F_UNKNOWN"


class TrafficKind(str, Enum):
    FUEL_TRUCK = "FUEL_TRUCK"
    CARGO_TRUCK = "CARGO_TRUCK"
    VEHICLE = "VEHICLE"
    TANKER_CONVOY = "TANKER_CONVOY"
    OTHER = "OTHER"


class Trend(str, Enum):
    INCREASING = "INCREASING"
    STABLE = "STABLE"
    DECREASING = "DECREASING"
    UNKNOWN = "UNKNOWN"


class AlertStatus(str, Enum):
    """Lifecycle of a deconfliction alert; UNKNOWN (a future symbol) is to be treated as an open alert."""

    NEW = "NEW"
    UPDATED = "UPDATED"
    CLEARED = "CLEARED"
    UNKNOWN = "UNKNOWN"


class ClearedReason(str, Enum):
    PASSED = "PASSED"
    RESOLVED = "RESOLVED"
    WITHDRAWN = "WITHDRAWN"
    UNKNOWN = "UNKNOWN"


class ConflictKind(str, Enum):
    PLAN_PLAN = "PLAN_PLAN"
    TRACK_TRACK = "TRACK_TRACK"
    TRACK_PLAN = "TRACK_PLAN"
    UNKNOWN = "UNKNOWN"


class ConflictObject(str, Enum):
    PLAN = "PLAN"
    TRACK = "TRACK"
    UNKNOWN = "UNKNOWN"

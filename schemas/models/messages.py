"""The message models, one per message type, and :data:`MODELS` (record name -> model)."""

from __future__ import annotations

import uuid
from typing import Optional, Union

from pydantic import BaseModel, Field, model_validator

from schemas.models.enums import (
    AlertStatus,
    AssessedEffect,
    ClearedReason,
    ConflictKind,
    MissionStatus,
    Readiness,
    SourceReliability,
    SourceType,
    TargetCategory,
    Trend,
)
from schemas.models.fields import (
    MAX_ITEMS,
    Bearing,
    Fraction,
    FreeText,
    GroupId,
    Identifier,
    NonBlankStr,
    NonBlankText,
    NonNegativeFloat,
    ShortText,
    Speed,
    UtcDatetime,
    CountryCode,
    _Model,
)
from schemas.models.records import (
    Area,
    ClosestApproach,
    ConflictParty,
    ConflictVolume,
    Position,
    SecurityLabel,
    SeparationMinima,
    Subject,
    TimeWindow,
    TrafficCount,
    Waypoint,
)

__all__ = [
    "AirMissionPlan",
    "AirTrack",
    "MaritimeTrack",
    "StrikeReport",
    "GroupLocationReport",
    "ForeignFighterReport",
    "LogisticsObservation",
    "DeconflictionAlert",
    "LiaisonMessage",
    "MODELS",
]


class AirMissionPlan(_Model):
    label: SecurityLabel
    sortie_id: Identifier
    callsign: Identifier
    aircraft_type: NonBlankStr
    aircraft_count: int = Field(ge=1)
    base: NonBlankStr
    carrier_based: bool = False
    status: MissionStatus
    time_windows: list[TimeWindow] = Field(min_length=1, max_length=MAX_ITEMS["time_windows"])
    route: list[Waypoint] = Field(min_length=1, max_length=MAX_ITEMS["route"])
    mission_purpose: FreeText
    target_area: Optional[ShortText] = None
    weapons_loadout: list[NonBlankStr] = Field(max_length=MAX_ITEMS["weapons_loadout"])


class AirTrack(_Model):
    label: SecurityLabel
    track_id: Identifier
    callsign: Identifier
    time: UtcDatetime
    position: Position
    #: Feet above mean sea level; the lowest ground in the theatre (Dead Sea shore) is ~ -1,400 ft.
    altitude_ft: int = Field(ge=-1500, le=100_000)
    heading_deg: Bearing
    speed_kt: Speed
    sortie_id: Optional[Identifier] = None


class MaritimeTrack(_Model):
    label: SecurityLabel
    ship_id: Identifier
    ship_class: NonBlankStr
    ship_name: NonBlankStr
    time: UtcDatetime
    position: Position
    course_deg: Bearing
    speed_kt: Speed
    mission: FreeText
    readiness: Readiness


class StrikeReport(_Model):
    label: SecurityLabel
    strike_id: Identifier
    sortie_id: Optional[Identifier] = None
    time: UtcDatetime
    position: Position
    target_category: TargetCategory
    group_id: GroupId
    assessed_effect: AssessedEffect
    collateral_assessment: FreeText
    weapon: ShortText
    launch_platform: ShortText


class GroupLocationReport(_Model):
    label: SecurityLabel
    report_id: Identifier
    group_id: GroupId
    time: UtcDatetime
    position: Position
    radius_m: NonNegativeFloat
    confidence: Fraction
    observed_activity: FreeText
    source_type: SourceType
    source_reliability: SourceReliability


class ForeignFighterReport(_Model):
    label: SecurityLabel
    report_id: Identifier
    subject: Subject
    affiliation: GroupId
    last_known_area: Area
    travel_indicators: list[NonBlankText] = Field(max_length=MAX_ITEMS["travel_indicators"])
    time: UtcDatetime


class LogisticsObservation(_Model):
    label: SecurityLabel
    observation_id: Identifier
    area: Area
    time_bucket_start: UtcDatetime
    time_bucket_end: UtcDatetime
    counts: list[TrafficCount] = Field(max_length=MAX_ITEMS["counts"])
    trend: Trend

    @model_validator(mode="after")
    def _bucket_start_before_end(self) -> LogisticsObservation:
        if self.time_bucket_start >= self.time_bucket_end:
            raise ValueError("time_bucket_start must be before time_bucket_end")
        return self


class DeconflictionAlert(_Model):
    """An air deconfliction alert (the deconfliction service publishes it; no simulator of ours does)."""

    label: SecurityLabel
    alert_id: uuid.UUID
    revision: int = Field(ge=0)
    status: AlertStatus
    cleared_reason: Optional[ClearedReason] = None
    kind: ConflictKind
    partner: CountryCode
    ours: ConflictParty
    theirs: ConflictParty
    volume: ConflictVolume
    window: TimeWindow
    closest_approach: Optional[ClosestApproach] = None
    lateral_nm: NonNegativeFloat
    vertical_ft: int = Field(ge=0)
    minima: SeparationMinima

    @model_validator(mode="after")
    def _lifecycle(self) -> DeconflictionAlert:
        if self.cleared_reason is not None and self.status is not AlertStatus.CLEARED:
            raise ValueError("cleared_reason is for a CLEARED alert only")
        if (self.status is AlertStatus.NEW and self.revision != 0) or (
                self.status in (AlertStatus.UPDATED, AlertStatus.CLEARED) and self.revision == 0):
            raise ValueError("revision is 0 for NEW, above 0 for UPDATED and CLEARED")
        if self.theirs.nation != self.partner:
            raise ValueError("theirs.nation must be the partner")
        return self


LiaisonMessage = Union[
    AirMissionPlan,
    AirTrack,
    MaritimeTrack,
    StrikeReport,
    GroupLocationReport,
    ForeignFighterReport,
    LogisticsObservation,
    DeconflictionAlert,
]

#: Record name -> model, for the message types, in the order of :data:`schemas.MESSAGE_TYPES`.
MODELS: dict[str, type[BaseModel]] = {
    "AirMissionPlan": AirMissionPlan,
    "AirTrack": AirTrack,
    "MaritimeTrack": MaritimeTrack,
    "StrikeReport": StrikeReport,
    "GroupLocationReport": GroupLocationReport,
    "ForeignFighterReport": ForeignFighterReport,
    "LogisticsObservation": LogisticsObservation,
    "DeconflictionAlert": DeconflictionAlert,
}

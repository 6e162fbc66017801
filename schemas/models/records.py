"""Shared records of the message models: the security label and the records messages are made of."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Optional

from pydantic import Field, model_validator

from schemas.models.enums import Classification, ConflictObject, TrafficKind
from schemas.models.fields import (
    CountryCode,
    ComponentId,
    MAX_ITEMS,
    Identifier,
    LanguageCode,
    Latitude,
    Longitude,
    NonBlankStr,
    NonNegativeFloat,
    UtcDatetime,
    _Model,
)

__all__ = ["SecurityLabel", "Position", "Area", "TimeWindow", "AltitudeBand", "Waypoint", "Subject", "TrafficCount",
           "ConflictParty", "ConflictVolume", "ClosestApproach", "SeparationMinima"]


class SecurityLabel(_Model):
    classification: Classification
    releasable_to: list[CountryCode] = Field(min_length=1, max_length=MAX_ITEMS["releasable_to"])
    caveats: list[NonBlankStr] = Field(default_factory=list, max_length=MAX_ITEMS["caveats"])
    originator: ComponentId
    created_at: UtcDatetime
    message_id: uuid.UUID

    def releasable_to_nation(self, nation: str) -> bool:
        """True when ``nation`` (alpha-3) is named in the REL TO list."""
        return nation in self.releasable_to


class Position(_Model):
    lat: Latitude
    lon: Longitude


class Area(_Model):
    name: NonBlankStr
    center: Position
    radius_km: NonNegativeFloat


class TimeWindow(_Model):
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _start_before_end(self) -> TimeWindow:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class AltitudeBand(_Model):
    floor_ft: int = Field(ge=0)
    ceiling_ft: int

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> AltitudeBand:
        if self.floor_ft >= self.ceiling_ft:
            raise ValueError("floor_ft must be below ceiling_ft")
        return self


class Waypoint(_Model):
    name: NonBlankStr
    position: Position
    altitude_band: AltitudeBand
    eta: UtcDatetime


class Subject(_Model):
    name: NonBlankStr
    subject_ref: Identifier
    nationality: list[CountryCode] = Field(max_length=MAX_ITEMS["nationality"])
    languages: list[LanguageCode] = Field(max_length=MAX_ITEMS["languages"])
    date_of_birth: Optional[date] = None

    @model_validator(mode="after")
    def _born_in_the_past(self) -> Subject:
        if self.date_of_birth is not None and self.date_of_birth > datetime.now(timezone.utc).date():
            raise ValueError("date_of_birth must not be in the future")
        return self


class TrafficCount(_Model):
    kind: TrafficKind
    count: int = Field(ge=0)


# ------------------------------------------------------------------ records of DeconflictionAlert


class ConflictParty(_Model):
    """One side of a conflict: the callsign and the ids each side correlates its picture with, nothing else."""

    nation: CountryCode
    object: ConflictObject
    callsign: Identifier
    sortie_id: Optional[Identifier] = None
    track_id: Optional[Identifier] = None


class ConflictVolume(_Model):
    centre: Position
    radius_nm: NonNegativeFloat
    #: feet above mean sea level; a floor may equal the ceiling (two tracks at one altitude)
    floor_ft: int = Field(ge=-1500, le=100_000)
    ceiling_ft: int = Field(ge=-1500, le=100_000)

    @model_validator(mode="after")
    def _floor_not_above_ceiling(self) -> ConflictVolume:
        if self.floor_ft > self.ceiling_ft:
            raise ValueError("floor_ft must not be above ceiling_ft")
        return self


class ClosestApproach(_Model):
    time: UtcDatetime
    time_to_cpa_s: NonNegativeFloat


class SeparationMinima(_Model):
    lateral_nm: NonNegativeFloat
    vertical_ft: int = Field(ge=0)

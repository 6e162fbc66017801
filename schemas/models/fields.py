"""Field types of the message models (constrained strings, UTC times, coordinates) and their base class."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "UtcDatetime",
    "NonBlankStr",
    "CountryCode",
    "LanguageCode",
    "GroupId",
    "ComponentId",
    "Latitude",
    "Longitude",
    "Bearing",
    "Speed",
    "FiniteFloat",
    "NonNegativeFloat",
    "Fraction",
]


def _utc_millis(value: datetime) -> datetime:
    """Reject naive datetimes; normalise to UTC and truncate to milliseconds."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("datetime must be timezone-aware (UTC); got a naive datetime")
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return value


#: Timezone-aware datetime, normalised to UTC, millisecond precision (Avro timestamp-millis).
UtcDatetime = Annotated[datetime, AfterValidator(_utc_millis)]
#: Non-empty, non-blank string (identifiers, names).
NonBlankStr = Annotated[str, AfterValidator(_not_blank)]
#: ISO 3166-1 alpha-3 country code, e.g. FRA, USA, RUS.
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
#: ISO 639-1 language code, e.g. ru, fr, en, ar.
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
#: Identifier of an armed group: lowercase slug matched exactly against designation lists.
GroupId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
#: Identifier of a producing component, lowercase dotted: naval.cvn-group, air.jordan, intel.cell.
ComponentId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*(?:\.[a-z0-9][a-z0-9-]*)*$")]

# Every float (Avro float/double) field of every model is one of these types: finite only. NaN and
# +/-Infinity are refused (allow_inf_nan=False) - they are not JSON, compare false with every bound,
# and would reach partners as non-standard output. _Model's config refuses them too, as a backstop
# for a float field declared without one of these types.
#: Finite float, no other bound.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Finite float >= 0 (distances, radii).
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
#: Finite float in [0, 1] (confidence).
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Bearing = Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False)]
Speed = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class _Model(BaseModel):
    # hide_input_in_errors: validation errors name the field path and the rule, never the value,
    # so error text (logs, dead-letter reasons) cannot leak personal or classified content.
    # allow_inf_nan=False: no float field of any model (nested records included) accepts NaN or Infinity.
    model_config = ConfigDict(extra="forbid", frozen=False, hide_input_in_errors=True, allow_inf_nan=False)

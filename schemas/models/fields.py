"""Field types of the message models (constrained strings, UTC times, coordinates) and their base class.

Every string and every list of every model is bounded, by kind (lengths in characters, i.e. code points;
a character is at most 4 bytes of UTF-8):

=====================  =====  ==========================================================================
kind                   max    fields
=====================  =====  ==========================================================================
:data:`Identifier`     128    ids and references (sortie, track, ship, strike, report, observation,
                              subject_ref), callsigns; non-blank
:data:`NonBlankStr`    256    names and short labels (ship, waypoint, area, subject names, aircraft type,
                              base, ship class, caveats, loadout items); non-blank
:data:`ShortText`      256    short values that may be empty (weapon, launch platform, target area)
:data:`FreeText`       4096   free text that may be empty (mission purpose, ship mission, collateral
                              assessment, observed activity); :data:`NonBlankText` the same, non-blank
                              (travel indicators)
:data:`GroupId`,       64     slugs (pattern-constrained too); country and language codes are fixed-length
:data:`ComponentId`           patterns
=====================  =====  ==========================================================================

Lists: see :data:`MAX_ITEMS` (REL TO nations 64, caveats 16, time windows 16, route waypoints 64, loadout
32, nationalities 8, languages 16, travel indicators 32, traffic counts 16).

On top of the field bounds, a whole record is bounded once encoded: :data:`MAX_RECORD_BYTES` (64 KiB of framed
Avro), far below the topics' ``max.message.bytes`` (the broker default, ~1 MiB; deploy/topics.yaml sets
none). The field bounds alone keep every record below 1 MiB; the record bound is what ``liaison publish``
checks per line after encoding and what the publisher refuses to send.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "UtcDatetime",
    "Identifier",
    "NonBlankStr",
    "ShortText",
    "FreeText",
    "NonBlankText",
    "MAX_ID_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_SLUG_CHARS",
    "MAX_ITEMS",
    "MAX_RECORD_BYTES",
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


#: Longest identifier, reference or callsign (characters).
MAX_ID_CHARS = 128
#: Longest name or short label (characters).
MAX_NAME_CHARS = 256
#: Longest free-text value (characters).
MAX_TEXT_CHARS = 4096
#: Longest group or component slug (characters).
MAX_SLUG_CHARS = 64
#: Most items of each list field, by field name (the models use these; README "Producers" lists them).
MAX_ITEMS: dict[str, int] = {
    "releasable_to": 64,
    "caveats": 16,
    "time_windows": 16,
    "route": 64,
    "weapons_loadout": 32,
    "nationality": 8,
    "languages": 16,
    "travel_indicators": 32,
    "counts": 16,
}
#: Largest encoded record: the framed Avro value (magic byte, schema id, body), in bytes.
MAX_RECORD_BYTES = 64 * 1024

#: Timezone-aware datetime, normalised to UTC, millisecond precision (Avro timestamp-millis).
UtcDatetime = Annotated[datetime, AfterValidator(_utc_millis)]
# The length bound comes first: a long value is refused before any validator of ours looks at it.
#: Identifier, reference or callsign: non-blank, at most MAX_ID_CHARS.
Identifier = Annotated[str, StringConstraints(max_length=MAX_ID_CHARS), AfterValidator(_not_blank)]
#: Name or short label: non-blank, at most MAX_NAME_CHARS.
NonBlankStr = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS), AfterValidator(_not_blank)]
#: Short value that may be empty: at most MAX_NAME_CHARS.
ShortText = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS)]
#: Free text that may be empty: at most MAX_TEXT_CHARS.
FreeText = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
#: Free text, non-blank: at most MAX_TEXT_CHARS.
NonBlankText = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS), AfterValidator(_not_blank)]
#: ISO 3166-1 alpha-3 country code, e.g. FRA, USA, RUS.
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
#: ISO 639-1 language code, e.g. ru, fr, en, ar.
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
#: Identifier of an armed group: lowercase slug matched exactly against designation lists.
GroupId = Annotated[str, StringConstraints(max_length=MAX_SLUG_CHARS, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
#: Identifier of a producing component, lowercase dotted: naval.cvn-group, air.jordan, intel.cell.
ComponentId = Annotated[str, StringConstraints(max_length=MAX_SLUG_CHARS,
                                               pattern=r"^[a-z][a-z0-9-]*(?:\.[a-z0-9][a-z0-9-]*)*$")]

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

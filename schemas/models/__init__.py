"""Typed pydantic models of the liaison messages, written by hand and checked against the .avsc.

The ``.avsc`` files of :mod:`schemas` are the source of truth for the wire format; these models
add what Avro cannot say (ranges, patterns, ordering of times, non-empty lists) and give
producers and tests a typed API. The package, one job per module:

* :mod:`~schemas.models.fields` - field types (UTC times, country codes, coordinates) and the base model;
* :mod:`~schemas.models.enums` - the enums; :mod:`~schemas.models.records` - the shared records;
* :mod:`~schemas.models.messages` - the message models and :data:`MODELS`;
* :mod:`~schemas.models.convert` - :func:`to_avro`, :func:`from_avro`, :func:`model_name`;
* :mod:`~schemas.models.conformance` - :func:`check_models_against_schemas`, run by the unit
  tests, so models and schemas cannot drift apart silently;
* :mod:`~schemas.models.jsontext` - :func:`~schemas.models.jsontext.loads_strict`, one line of the
  JSON form parsed safely (bounded nesting, finite numbers, no duplicate keys), for
  ``liaison publish`` and ``liaison policy explain``.

Every float field is finite: NaN and Infinity are refused by every model, nested records included.
Every string and every list is bounded by kind (:mod:`~schemas.models.fields`: ids 128 characters, names 256,
free text 4096, lists per field) and a record by its encoded size (:data:`MAX_RECORD_BYTES`, 64 KiB).

Every name is importable from ``schemas.models`` as before the split.
"""

from __future__ import annotations

from schemas.models.enums import (
    AlertStatus,
    AssessedEffect,
    ClearedReason,
    ConflictKind,
    ConflictObject,
    Classification,
    MissionStatus,
    Readiness,
    SourceReliability,
    SourceType,
    TargetCategory,
    TrafficKind,
    Trend,
)
from schemas.models.fields import (  # noqa: F401 - importable from here as before, not in __all__
    MAX_ID_CHARS,
    MAX_ITEMS,
    MAX_NAME_CHARS,
    MAX_RECORD_BYTES,
    MAX_SLUG_CHARS,
    MAX_TEXT_CHARS,
    Bearing,
    ComponentId,
    CountryCode,
    FiniteFloat,
    Fraction,
    FreeText,
    GroupId,
    Identifier,
    LanguageCode,
    Latitude,
    Longitude,
    NonBlankStr,
    NonBlankText,
    NonNegativeFloat,
    ShortText,
    Speed,
    UtcDatetime,
)
from schemas.models.records import (
    AltitudeBand,
    Area,
    ClosestApproach,
    ConflictParty,
    ConflictVolume,
    SeparationMinima,
    Position,
    SecurityLabel,
    Subject,
    TimeWindow,
    TrafficCount,
    Waypoint,
)
from schemas.models.messages import (
    MODELS,
    AirMissionPlan,
    AirTrack,
    DeconflictionAlert,
    ForeignFighterReport,
    GroupLocationReport,
    LiaisonMessage,
    LogisticsObservation,
    MaritimeTrack,
    StrikeReport,
)
from schemas.models.convert import from_avro, model_name, to_avro
from schemas.models.conformance import check_models_against_schemas, compare_model_to_schema

from schemas.models import conformance as _conformance, enums as _enums, messages as _messages, records as _records

#: the names each module exports, plus the conversions (avro_value stays in schemas.models.convert)
__all__ = [*_enums.__all__, *_records.__all__, *_messages.__all__, "to_avro", "from_avro", "model_name",
           *_conformance.__all__]

"""Typed pydantic models of the liaison messages, written by hand and checked against the .avsc.

The ``.avsc`` files in this package are the source of truth for the wire format; these models
add what Avro cannot say (ranges, patterns, ordering of times, non-empty lists) and give
producers and tests a typed API. :func:`check_models_against_schemas` compares every model,
recursively, with its schema (field names and order, optionality and defaults, arrays, nested
records, enum symbols, primitive and logical types) and is run by the unit tests, so the two
cannot drift apart silently.

Conversions:

* :func:`to_avro` gives the dict :func:`fastavro.schemaless_writer` accepts (enums as symbol
  strings, UUIDs as strings, aware datetimes and dates as is).
* :func:`from_avro` validates a dict as returned by :func:`fastavro.schemaless_reader` back into
  a model. Times are truncated to milliseconds (the precision of ``timestamp-millis``) and
  normalised to UTC on validation, so model -> Avro -> model round-trips with equality.
"""

from __future__ import annotations

import types
import typing
import uuid
from datetime import date, datetime, timezone
from enum import Enum
from typing import Annotated, Any, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas import MESSAGE_TYPES, NAMESPACE, UnknownMessageType, load_schema
from schemas.named import NamedTypes, UndefinedNamedType

__all__ = [
    # enums
    "Classification",
    "MissionStatus",
    "Readiness",
    "TargetCategory",
    "AssessedEffect",
    "SourceType",
    "SourceReliability",
    "TrafficKind",
    "Trend",
    # shared records
    "SecurityLabel",
    "Position",
    "Area",
    "TimeWindow",
    "AltitudeBand",
    "Waypoint",
    "Subject",
    "TrafficCount",
    # messages
    "AirMissionPlan",
    "AirTrack",
    "MaritimeTrack",
    "StrikeReport",
    "GroupLocationReport",
    "ForeignFighterReport",
    "LogisticsObservation",
    "LiaisonMessage",
    "MODELS",
    # conversions and checks
    "to_avro",
    "from_avro",
    "model_name",
    "compare_model_to_schema",
    "check_models_against_schemas",
]


# --------------------------------------------------------------------------- field types


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

Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
Bearing = Annotated[float, Field(ge=0.0, lt=360.0)]
Speed = Annotated[float, Field(ge=0.0)]


class _Model(BaseModel):
    # hide_input_in_errors: validation errors name the field path and the rule, never the value,
    # so error text (logs, dead-letter reasons) cannot leak personal or classified content.
    model_config = ConfigDict(extra="forbid", frozen=False, hide_input_in_errors=True)


# --------------------------------------------------------------------------- enums


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


# --------------------------------------------------------------------------- shared records


class SecurityLabel(_Model):
    classification: Classification
    releasable_to: list[CountryCode] = Field(min_length=1)
    caveats: list[NonBlankStr] = Field(default_factory=list)
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
    radius_km: float = Field(ge=0.0)


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
    subject_ref: NonBlankStr
    nationality: list[CountryCode]
    languages: list[LanguageCode]
    date_of_birth: Optional[date] = None

    @model_validator(mode="after")
    def _born_in_the_past(self) -> Subject:
        if self.date_of_birth is not None and self.date_of_birth > datetime.now(timezone.utc).date():
            raise ValueError("date_of_birth must not be in the future")
        return self


class TrafficCount(_Model):
    kind: TrafficKind
    count: int = Field(ge=0)


# --------------------------------------------------------------------------- messages


class AirMissionPlan(_Model):
    label: SecurityLabel
    sortie_id: NonBlankStr
    callsign: NonBlankStr
    aircraft_type: NonBlankStr
    aircraft_count: int = Field(ge=1)
    base: NonBlankStr
    carrier_based: bool = False
    status: MissionStatus
    time_windows: list[TimeWindow] = Field(min_length=1)
    route: list[Waypoint] = Field(min_length=1)
    mission_purpose: str
    target_area: Optional[str] = None
    weapons_loadout: list[NonBlankStr]


class AirTrack(_Model):
    label: SecurityLabel
    track_id: NonBlankStr
    callsign: NonBlankStr
    time: UtcDatetime
    position: Position
    #: Feet above mean sea level; the lowest ground in the theatre (Dead Sea shore) is ~ -1,400 ft.
    altitude_ft: int = Field(ge=-1500, le=100_000)
    heading_deg: Bearing
    speed_kt: Speed
    sortie_id: Optional[NonBlankStr] = None


class MaritimeTrack(_Model):
    label: SecurityLabel
    ship_id: NonBlankStr
    ship_class: NonBlankStr
    ship_name: NonBlankStr
    time: UtcDatetime
    position: Position
    course_deg: Bearing
    speed_kt: Speed
    mission: str
    readiness: Readiness


class StrikeReport(_Model):
    label: SecurityLabel
    strike_id: NonBlankStr
    sortie_id: Optional[NonBlankStr] = None
    time: UtcDatetime
    position: Position
    target_category: TargetCategory
    group_id: GroupId
    assessed_effect: AssessedEffect
    collateral_assessment: str
    weapon: str
    launch_platform: str


class GroupLocationReport(_Model):
    label: SecurityLabel
    report_id: NonBlankStr
    group_id: GroupId
    time: UtcDatetime
    position: Position
    radius_m: float = Field(ge=0.0)
    confidence: float = Field(ge=0.0, le=1.0)
    observed_activity: str
    source_type: SourceType
    source_reliability: SourceReliability


class ForeignFighterReport(_Model):
    label: SecurityLabel
    report_id: NonBlankStr
    subject: Subject
    affiliation: GroupId
    last_known_area: Area
    travel_indicators: list[NonBlankStr]
    time: UtcDatetime


class LogisticsObservation(_Model):
    label: SecurityLabel
    observation_id: NonBlankStr
    area: Area
    time_bucket_start: UtcDatetime
    time_bucket_end: UtcDatetime
    counts: list[TrafficCount]
    trend: Trend

    @model_validator(mode="after")
    def _bucket_start_before_end(self) -> LogisticsObservation:
        if self.time_bucket_start >= self.time_bucket_end:
            raise ValueError("time_bucket_start must be before time_bucket_end")
        return self


LiaisonMessage = Union[
    AirMissionPlan,
    AirTrack,
    MaritimeTrack,
    StrikeReport,
    GroupLocationReport,
    ForeignFighterReport,
    LogisticsObservation,
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
}


# --------------------------------------------------------------------------- conversions


def _avro_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _avro_value(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_avro_value(item) for item in value]
    return value


def _fixups(cls: type[BaseModel]) -> tuple:
    """Per model class, the fields model_dump() leaves as Enum / UUID objects, with nested models and lists:
    ((field, kind, sub), ...), kind in enum | uuid | model | list; sub is the fixups of the nested model or,
    for a list, (item kind, item sub)."""
    import typing

    def classify(tp):
        origin = typing.get_origin(tp)
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            return classify(args[0]) if len(args) == 1 else (None, None)
        if origin in (list, tuple):
            kind, sub = classify(typing.get_args(tp)[0])
            return ("list", (kind, sub)) if kind else (None, None)
        if isinstance(tp, type) and issubclass(tp, Enum):
            return "enum", None
        if tp is uuid.UUID:
            return "uuid", None
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            sub = _fixups(tp)
            return ("model", sub) if sub else (None, None)
        return None, None

    out = []
    for name, info in cls.model_fields.items():
        kind, sub = classify(info.annotation)
        if kind:
            out.append((name, kind, sub))
    return tuple(out)


_FIXUPS: dict[type, tuple] = {}


def _apply(value: Any, kind: str, sub: Any) -> Any:
    if value is None:
        return None
    if kind == "enum":
        return value.value
    if kind == "uuid":
        return str(value)
    if kind == "model":
        for name, k, s in sub:
            value[name] = _apply(value[name], k, s)
        return value
    item_kind, item_sub = sub
    return [_apply(v, item_kind, item_sub) for v in value]


def to_avro(model: BaseModel) -> dict[str, Any]:
    """The record dict :func:`fastavro.schemaless_writer` accepts for ``model``'s schema: plain values
    (enum symbols as str, UUIDs as str), as fastavro's reader returns them. pydantic's model_dump does the
    walk; a per-class list of enum/uuid fields, computed once, fixes up only those."""
    if not isinstance(model, BaseModel):
        raise TypeError(f"expected a pydantic model, got {type(model).__name__}")
    cls = type(model)
    fix = _FIXUPS.get(cls)
    if fix is None:
        fix = _FIXUPS[cls] = _fixups(cls)
    data = model.model_dump()
    for name, kind, sub in fix:
        data[name] = _apply(data[name], kind, sub)
    return data


def model_name(model: BaseModel | type[BaseModel]) -> str:
    """Record name of a message model (instance or class), e.g. ``AirTrack``."""
    cls = model if isinstance(model, type) else type(model)
    for name, candidate in MODELS.items():
        if cls is candidate:
            return name
    raise UnknownMessageType(f"{cls.__name__} is not a message model; known: {', '.join(MODELS)}")


def from_avro(name: str, record: dict[str, Any]) -> BaseModel:
    """Validate a record dict (as read by fastavro) into the model of message type ``name``.

    Accepts message ids as ``uuid.UUID`` or string and timestamps as aware datetimes;
    raises :class:`pydantic.ValidationError` when the record breaks a model constraint.
    """
    try:
        model = MODELS[name]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {name!r}; known: {', '.join(MODELS)}") from None
    return model.model_validate(record)


# --------------------------------------------------------------------------- drift check

_PRIMITIVES: dict[str, type] = {
    "null": type(None),
    "boolean": bool,
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "bytes": bytes,
    "string": str,
}
_LOGICAL: dict[tuple[str, str], type] = {
    ("string", "uuid"): uuid.UUID,
    ("long", "timestamp-millis"): datetime,
    ("int", "date"): date,
}


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _optional_inner(tp: Any) -> tuple[bool, Any]:
    """(True, X) for Optional[X] / X | None, else (False, tp)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                return True, _strip_annotated(rest[0])
            return True, Union[tuple(rest)]  # type: ignore[return-value]
    return False, tp


def _type_label(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


class _Comparator:
    def __init__(self) -> None:
        # Learns named definitions as the walk meets them (define-before-use).
        self.named = NamedTypes()
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def resolve(self, avro_type: Any, namespace: str, path: str) -> Any:
        """Resolve named references; register named definitions. None when unresolvable."""
        try:
            return self.named.resolve(avro_type, namespace)
        except UndefinedNamedType as exc:
            self.problem(path, f"schema references undefined named type {exc.name!r}")
            return None

    def compare(self, avro_type: Any, py_type: Any, path: str, namespace: str) -> None:
        py_type = _strip_annotated(py_type)
        is_optional, inner = _optional_inner(py_type)

        if isinstance(avro_type, list):  # union
            branches = [b for b in avro_type if b != "null"]
            if "null" in avro_type and len(branches) == 1 and len(avro_type) == 2:
                if not is_optional:
                    self.problem(path, f"schema is optional [null, ...] but model type {_type_label(py_type)} is not Optional")
                    return
                self.compare(branches[0], inner, path, namespace)
            else:
                self.problem(path, f"unsupported union {avro_type!r} (only [\"null\", T] is used)")
            return
        if is_optional:
            self.problem(path, f"model type is Optional but schema type {_describe(avro_type)} is not a union with null")
            return

        resolved = self.resolve(avro_type, namespace, path)
        if resolved is None:
            return
        if isinstance(resolved, str):
            self._compare_primitive(resolved, None, py_type, path)
            return

        kind = resolved.get("type")
        if kind == "record":
            self.compare_record(resolved, py_type, path, namespace)
        elif kind == "enum":
            self._compare_enum(resolved, py_type, path)
        elif kind == "array":
            if typing.get_origin(py_type) is not list:
                self.problem(path, f"schema is an array but model type is {_type_label(py_type)}")
                return
            (item_type,) = typing.get_args(py_type) or (Any,)
            self.compare(resolved["items"], item_type, f"{path}[]", namespace)
        elif isinstance(kind, str) and kind in _PRIMITIVES:
            self._compare_primitive(kind, resolved.get("logicalType"), py_type, path)
        else:
            self.problem(path, f"unsupported schema type {_describe(resolved)}")

    def _compare_primitive(self, kind: str, logical: str | None, py_type: Any, path: str) -> None:
        if logical is not None:
            expected = _LOGICAL.get((kind, logical))
            if expected is None:
                self.problem(path, f"unsupported logical type {logical!r} on {kind!r}")
                return
        else:
            expected = _PRIMITIVES[kind]
        if py_type is not expected:
            avro = f"{kind}/{logical}" if logical else kind
            self.problem(path, f"schema type {avro} needs model type {expected.__name__}, model has {_type_label(py_type)}")

    def _compare_enum(self, definition: dict[str, Any], py_type: Any, path: str) -> None:
        if not (isinstance(py_type, type) and issubclass(py_type, Enum)):
            self.problem(path, f"schema is enum {definition['name']} but model type is {_type_label(py_type)}")
            return
        if py_type.__name__ != definition["name"]:
            self.problem(path, f"enum name differs: schema {definition['name']}, model {py_type.__name__}")
        model_symbols = [member.value for member in py_type]
        if model_symbols != definition["symbols"]:
            self.problem(
                path,
                f"enum {definition['name']} symbols differ: schema {definition['symbols']}, model {model_symbols}",
            )
        mismatched = [m.name for m in py_type if m.name != m.value]
        if mismatched:
            self.problem(path, f"enum {py_type.__name__} members whose name is not their symbol: {mismatched}")
        if "default" not in definition:
            self.problem(path, f"enum {definition['name']} has no default symbol")

    def compare_record(self, definition: dict[str, Any], model: Any, path: str, namespace: str) -> None:
        namespace = definition.get("namespace", namespace)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            self.problem(path, f"schema is record {definition['name']} but model type is {_type_label(model)}")
            return
        if model.__name__ != definition["name"]:
            self.problem(path, f"record name differs: schema {definition['name']}, model {model.__name__}")

        schema_fields = [field["name"] for field in definition.get("fields", [])]
        model_fields = list(model.model_fields)
        for name in schema_fields:
            if name not in model.model_fields:
                self.problem(path, f"field {name!r} is in the schema but not in model {model.__name__}")
        for name in model_fields:
            if name not in schema_fields:
                self.problem(path, f"field {name!r} is in model {model.__name__} but not in the schema")
        common_schema = [n for n in schema_fields if n in model.model_fields]
        common_model = [n for n in model_fields if n in schema_fields]
        if common_schema != common_model:
            self.problem(path, f"field order differs: schema {common_schema}, model {common_model}")

        for field in definition.get("fields", []):
            name = field["name"]
            info = model.model_fields.get(name)
            if info is None:
                continue
            field_path = f"{path}.{name}"
            if info.alias is not None and info.alias != name:
                self.problem(field_path, f"model field has alias {info.alias!r}; wire names must be field names")
            schema_has_default = "default" in field
            if schema_has_default and info.is_required():
                self.problem(field_path, f"schema has default {field['default']!r} but the model field is required")
            elif not schema_has_default and not info.is_required():
                self.problem(field_path, "model field has a default but the schema field has none")
            elif schema_has_default:
                model_default = _avro_value(info.get_default(call_default_factory=True))
                if model_default != field["default"]:
                    self.problem(
                        field_path,
                        f"default differs: schema {field['default']!r}, model {model_default!r}",
                    )
            self.compare(field["type"], info.annotation, field_path, namespace)


def _describe(avro_type: Any) -> str:
    if isinstance(avro_type, dict):
        name = avro_type.get("name")
        return f"{avro_type.get('type')}{' ' + name if name else ''}"
    return repr(avro_type)


def compare_model_to_schema(model: type[BaseModel], schema: dict[str, Any]) -> list[str]:
    """Differences between a model class and a record schema (parsed JSON), recursively.

    Returns human-readable mismatches, each prefixed with the field path; empty when they agree.
    """
    comparator = _Comparator()
    root = comparator.resolve(schema, NAMESPACE, schema.get("name", "?"))
    if not isinstance(root, dict) or root.get("type") != "record":
        return [f"{schema.get('name', '?')}: top-level schema is not a record"]
    comparator.compare_record(root, model, root["name"], root.get("namespace", NAMESPACE))
    return comparator.problems


def check_models_against_schemas() -> list[str]:
    """Compare every message model with its .avsc; returns the mismatches (empty when fine)."""
    problems: list[str] = []
    if list(MODELS) != list(MESSAGE_TYPES):
        problems.append(f"MODELS {list(MODELS)} != MESSAGE_TYPES {list(MESSAGE_TYPES)}")
    for name in MESSAGE_TYPES:
        model = MODELS.get(name)
        if model is None:
            continue
        problems.extend(compare_model_to_schema(model, load_schema(name)))
    return problems

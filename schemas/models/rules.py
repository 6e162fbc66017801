"""The models' validation rules as data, for the compiled core (``compiled/``, issue 13).

:func:`validation_rules` reads a message model (its fields' annotations and metadata: string lengths, patterns,
non-blank, number bounds, finite floats, list lengths, nested records) and its model validators (known here by
name: a model validator this module does not know makes the export fail, so a new one cannot be skipped
silently) into a JSON-able tree addressed by field index in the message's Avro schema. The compiled core answers
one question with it: does the record pass ``from_avro``? (The reference still writes the error of a record that
does not: the compiled forwarder hands those to it.) ``tests/unit/test_compiled_validation.py`` compares the two.
"""

from __future__ import annotations

import sys
import types
from datetime import date, datetime
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import annotated_types as at
from pydantic import BaseModel

import schemas
from schemas.models import fields as field_types
from schemas.models import messages, records
from schemas.models.messages import MODELS

__all__ = ["validation_rules", "python_whitespace"]

#: Model validators by (model, method name) -> how the compiled core checks them: ("lt", a, b): field a < field b;
#: ("le", a, b): a <= b; ("not_future_date", d): d (days) not after today (UTC); ("alert_lifecycle", status, revision,
#: cleared_reason, theirs.nation, partner): DeconflictionAlert._lifecycle
_MODEL_CHECKS: dict[tuple[type, str], tuple] = {
    (records.TimeWindow, "_start_before_end"): ("lt", "start", "end"),
    (records.AltitudeBand, "_floor_below_ceiling"): ("lt", "floor_ft", "ceiling_ft"),
    (records.ConflictVolume, "_floor_not_above_ceiling"): ("le", "floor_ft", "ceiling_ft"),
    (messages.LogisticsObservation, "_bucket_start_before_end"): ("lt", "time_bucket_start", "time_bucket_end"),
    (records.Subject, "_born_in_the_past"): ("not_future_date", "date_of_birth"),
    (messages.DeconflictionAlert, "_lifecycle"): ("alert_lifecycle", "status", "revision", "cleared_reason",
                                                  "theirs.nation", "partner"),
}


class UnknownRule(ValueError):
    """A model holds a validator this module cannot export."""


@lru_cache(maxsize=None)
def python_whitespace() -> str:
    """Every character ``str.strip()`` removes (what "blank" means to the models)."""
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


def validation_rules(type_name: str, schema: dict | None = None) -> dict[str, Any]:
    """The rules of message type ``type_name``'s model, by field index of its Avro schema; with ``schema``
    (a partner's exchange format: some fields dropped, some made optional) the rules of the guard's partial model
    (consumers/ingress/validation.py): the fields present keep their rules, a value the schema makes optional may
    be left out, a model validator that reads a field the schema drops does not apply."""
    partial = schema is not None
    return {"record": _record(MODELS[type_name], schema if partial else schemas.load_schema(type_name),
                              partial=partial),
            "whitespace": python_whitespace()}


def _record(model: type[BaseModel], schema: dict, named: dict | None = None, partial: bool = False) -> dict[str, Any]:
    named = {} if named is None else named
    named[schema["name"]] = schema
    if "namespace" in schema:
        named[f"{schema['namespace']}.{schema['name']}"] = schema
    names = [f["name"] for f in schema["fields"]]
    avro_types = {f["name"]: f["type"] for f in schema["fields"]}
    if (set(names) - set(model.model_fields)) if partial else (set(names) != set(model.model_fields)):
        raise UnknownRule(f"{model.__name__}: fields {sorted(model.model_fields)} are not the schema's {names}")
    out_fields = []
    for name, info in model.model_fields.items():
        if name not in avro_types:  # dropped from the partner's format
            continue
        rule = _rule(info.annotation, list(info.metadata), _resolve(avro_types[name], named), named,
                     f"{model.__name__}.{name}", partial)
        if rule:
            out_fields.append([names.index(name), rule])
    checks = []
    for method, _decorator in model.__pydantic_decorators__.model_validators.items():
        spec = _MODEL_CHECKS.get((model, method))
        if spec is None:
            raise UnknownRule(f"{model.__name__}.{method}: a model validator the compiled core does not know")
        op, *dotted = spec
        paths = [_path(model, schema, p, named) for p in dotted]
        if None in paths:  # reads a field the partner does not send: not applicable (the partial model's rule)
            continue
        checks.append([op] + paths)
    return {"fields": out_fields, "checks": checks}


def _path(model, schema, dotted: str, named) -> list[int] | None:
    out, rec = [], schema
    for part in dotted.split("."):
        names = [f["name"] for f in rec["fields"]]
        if part not in names:
            return None
        out.append(names.index(part))
        t = _non_null(_resolve(next(f["type"] for f in rec["fields"] if f["name"] == part), named))
        rec = t if isinstance(t, dict) and t.get("type") == "record" else rec
    return out


def _resolve(t, named):
    if isinstance(t, list):
        return [_resolve(b, named) for b in t]
    if isinstance(t, str):
        return named.get(t, t)
    if isinstance(t, dict) and isinstance(t.get("type"), (dict, list)):
        return _resolve(t["type"], named)
    return t


def _non_null(t):
    if isinstance(t, list):
        rest = [b for b in t if b != "null"]
        return rest[0] if len(rest) == 1 else t
    return t


def _rule(annotation: Any, metadata: list, avro: Any, named: dict, where: str, partial: bool = False
          ) -> dict[str, Any]:
    """The rule of one value: its annotation (Optional, Annotated, list, a model, a scalar) and metadata."""
    out: dict[str, Any] = {}
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise UnknownRule(f"{where}: a union of {args}")
        return _rule(args[0], metadata, _non_null(avro), named, where, partial)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _rule(base, metadata + list(extra), avro, named, where, partial)
    if partial:  # a value the partner's format makes optional: the partial model accepts it left out
        avro = _non_null(avro)
    bounds = _bounds(metadata, where)
    if origin is list:
        (item,) = get_args(annotation)
        avro = _non_null(avro)
        items = _rule(item, [], _resolve(avro["items"], named), named, where + "[]", partial)
        out["list"] = {k: v for k, v in bounds.items() if k in ("min_len", "max_len")}
        if items:
            out["items"] = items
        return out
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        record = _non_null(avro)
        record = named.get(record, record) if isinstance(record, str) else record
        out["record"] = _record(annotation, record, named, partial)
        return out
    if annotation is str:
        out["str"] = {k: v for k, v in bounds.items() if k in ("min_len", "max_len", "pattern", "nonblank")}
        return out if out["str"] else {}
    if annotation in (int, float):
        num = {k: v for k, v in bounds.items() if k in ("ge", "gt", "le", "lt")}
        if annotation is float:
            num["finite"] = True
        out["num"] = num
        return out if num else {}
    if annotation in (bool, datetime, date, UUID) or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        if set(bounds) - {"after"}:
            raise UnknownRule(f"{where}: bounds {bounds} on {annotation}")
        # a uuid is parsed from its text; a time or a date must be one Python can hold (fastavro's reading)
        return {"uuid": True} if annotation is UUID else {"ts": True} if annotation is datetime else \
            {"date": True} if annotation is date else {}
    raise UnknownRule(f"{where}: annotation {annotation!r}")


#: annotated_types bounds -> (key in the rules, attribute)
_SIMPLE = ((at.Ge, "ge", "ge"), (at.Gt, "gt", "gt"), (at.Le, "le", "le"), (at.Lt, "lt", "lt"),
           (at.MinLen, "min_len", "min_length"), (at.MaxLen, "max_len", "max_length"))


def _bounds(metadata: list, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        simple = next(((key, getattr(m, attr)) for cls, key, attr in _SIMPLE if isinstance(m, cls)), None)
        if simple is not None:
            out[simple[0]] = simple[1]
        elif type(m).__name__ == "StringConstraints":
            for attr, key in (("min_length", "min_len"), ("max_length", "max_len"), ("pattern", "pattern")):
                if getattr(m, attr, None) is not None:
                    out[key] = getattr(m, attr)
            if m.strip_whitespace or m.to_upper or m.to_lower:
                raise UnknownRule(f"{where}: a string constraint that changes the value")
        elif type(m).__name__ == "AllowInfNan":
            if m.allow_inf_nan:
                raise UnknownRule(f"{where}: a float that may be infinite")
        elif type(m).__name__ == "_PydanticGeneralMetadata":
            data = dict(m.__dict__)
            if data.pop("allow_inf_nan", False) is not False and data:
                raise UnknownRule(f"{where}: metadata {m!r}")
            if "pattern" in data:
                out["pattern"] = data["pattern"]
        elif type(m).__name__ == "AfterValidator":
            if m.func is field_types._not_blank:
                out["nonblank"] = True
            elif m.func is field_types._utc_millis:
                out["after"] = "utc"
            else:
                raise UnknownRule(f"{where}: validator {m.func.__name__}")
        else:
            raise UnknownRule(f"{where}: metadata {m!r}")
    return out


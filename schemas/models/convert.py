"""Conversion between message models and the record dicts fastavro writes and reads.

* :func:`to_avro` gives the dict :func:`fastavro.schemaless_writer` accepts (enums as symbol
  strings, UUIDs as strings, aware datetimes and dates as is).
* :func:`from_avro` validates a dict as returned by :func:`fastavro.schemaless_reader` back into
  a model. Times are truncated to milliseconds (the precision of ``timestamp-millis``) and
  normalised to UTC on validation, so model -> Avro -> model round-trips with equality.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any

from pydantic import BaseModel

from schemas import UnknownMessageType
from schemas.models.messages import MODELS

__all__ = ["to_avro", "from_avro", "model_name", "avro_value"]


def avro_value(value: Any) -> Any:
    """A model or value as plain Avro data: nested models as dicts, enums as symbols, UUIDs as strings."""
    if isinstance(value, BaseModel):
        return {name: avro_value(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [avro_value(item) for item in value]
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

"""Avro schemas of the liaison bus: the single source of truth for the wire format.

Every message type has one self-contained ``<RecordName>.avsc`` file in this folder
(namespace ``liaison.bus``). Shared named types (``SecurityLabel``, ``Classification``,
``Position``, ``Area``) are inlined in full in each file that uses them, and the inlined
copies are kept identical (the unit tests check it), so every file can be parsed, registered
and evolved on its own.

This module only knows about schemas and keys (topic names: core.topics); it imports nothing Kafka-related.
Typed models live in :mod:`schemas.models`, realistic instances in :mod:`schemas.examples`, the
resolver of Avro named types in :mod:`schemas.named`.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

from schemas.named import NamedTypes

__all__ = [
    "SCHEMA_DIR",
    "NAMESPACE",
    "MESSAGE_TYPES",
    "UnknownMessageType",
    "load_schema",
    "schema_str",
    "parsed_schema",
    "full_name",
    "key_field",
    "key_of",
    "named_types",
]

#: Folder holding the ``*.avsc`` files.
SCHEMA_DIR: Path = Path(__file__).resolve().parent

#: Avro namespace of every liaison record.
NAMESPACE = "liaison.bus"

#: Record names of the message types, in a fixed order (also the order of the brief).
MESSAGE_TYPES: tuple[str, ...] = (
    "AirMissionPlan",
    "AirTrack",
    "MaritimeTrack",
    "StrikeReport",
    "GroupLocationReport",
    "ForeignFighterReport",
    "LogisticsObservation",
    # Computed on our side by the deconfliction service from the exchanged plans and tracks; released like the
    # others, but never exchanged: a partner computes its own (schemas.agreement.NOT_EXCHANGED).
    "DeconflictionAlert",
)

# Dotted path of the entity id each record is keyed (and so partitioned) by on the internal
# topics: all records about one entity stay in order on one partition. These keys are
# internal values (e.g. the internal subject reference); anything forwarding to a partner
# must re-key from the *filtered* record, never copy the internal key.
_KEY_FIELDS: dict[str, str] = {
    "AirMissionPlan": "sortie_id",
    "AirTrack": "track_id",
    "MaritimeTrack": "ship_id",
    "StrikeReport": "strike_id",
    "GroupLocationReport": "group_id",
    "ForeignFighterReport": "subject.subject_ref",
    "LogisticsObservation": "area.name",
    "DeconflictionAlert": "alert_id",
}

assert set(MESSAGE_TYPES) == set(_KEY_FIELDS)


class UnknownMessageType(ValueError):
    """A record name or topic that is not one of :data:`MESSAGE_TYPES`."""


def _check(name: str) -> str:
    if name not in _KEY_FIELDS:
        raise UnknownMessageType(
            f"unknown message type {name!r}; known: {', '.join(MESSAGE_TYPES)}"
        )
    return name


@lru_cache(maxsize=None)
def schema_str(name: str) -> str:
    """The schema text of message type ``name`` exactly as in its ``.avsc`` file."""
    return (SCHEMA_DIR / f"{_check(name)}.avsc").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The schema of ``name`` as parsed JSON (a fresh dict on every call; safe to modify)."""
    return json.loads(schema_str(name))


@lru_cache(maxsize=None)
def parsed_schema(name: str) -> Any:
    """The schema of ``name`` parsed by :func:`fastavro.parse_schema` (cached; do not modify)."""
    return fastavro.parse_schema(load_schema(name))


def full_name(name: str) -> str:
    """Fully qualified Avro name of ``name``, e.g. ``liaison.bus.AirTrack``."""
    return f"{NAMESPACE}.{_check(name)}"


def key_field(name: str) -> str:
    """Dotted path of the field records of type ``name`` are keyed by (e.g. ``area.name``)."""
    return _KEY_FIELDS[_check(name)]


def key_of(name: str, value: Any) -> str:
    """The record key of ``value`` (a record dict, or an object with attributes such as a model).

    Raises ``ValueError`` when the key field is missing, null or empty.
    """
    path = key_field(name)
    current: Any = value
    for part in path.split("."):
        if isinstance(current, dict):
            if part not in current:
                raise ValueError(f"{name}: key field {path!r} missing (no {part!r})")
            current = current[part]
        else:
            if not hasattr(current, part):
                raise ValueError(f"{name}: key field {path!r} missing (no {part!r})")
            current = getattr(current, part)
        if current is None:
            raise ValueError(f"{name}: key field {path!r} is null")
    if isinstance(current, uuid.UUID):  # a model's uuid field (the record dict holds its string)
        current = str(current)
    if not isinstance(current, str):
        raise ValueError(f"{name}: key field {path!r} is not a string: {current!r}")
    if not current:
        raise ValueError(f"{name}: key field {path!r} is empty")
    return current


def named_types(avro_type: Any, ns: str = "") -> dict[str, Any]:
    """Every named type (record, enum, fixed) defined inside ``avro_type``, by full name.

    A thin function over :class:`schemas.named.NamedTypes`, the resolver of named types.
    """
    return NamedTypes(avro_type, ns).as_dict()

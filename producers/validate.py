"""Validate NDJSON files of liaison messages line by line, before anything is published.

``liaison publish <Type> --file events.ndjson`` reads one message per line: the JSON form of the
typed model :data:`schemas.models.MODELS[<Type>]`, label included (what
``model.model_dump_json()`` writes). :func:`validate_lines` checks every line and reports, per
line, either the validated model or the errors found, so a file is published whole or not at all
and the operator sees every problem at once::

    report = validate_lines("AirTrack", open("tracks.ndjson", encoding="utf-8"))
    if not report.ok:
        for error in report.errors:
            print(error)        # line 7: route.1.altitude_band: floor_ft must be below ceiling_ft

Rules:

* Line numbers are 1-based and count every physical line, blank ones included, so they match
  what an editor shows.
* Lines that are empty or whitespace only are skipped silently: they are not records (a trailing
  newline or a separating blank line is common in hand-edited files). They are counted in
  :attr:`ValidationReport.blank`.
* A line that is not valid JSON (including objects with a duplicated key, or arrays/objects
  nested deeper than :data:`schemas.models.jsontext.MAX_DEPTH`), or whose JSON value is not an
  object, is one error with field ``""``.
* Non-finite numbers are refused where they stand: each ``NaN``, ``Infinity``, ``-Infinity`` or
  number that overflows a double (``1e999``) is one error whose field is its dotted path
  (``position.lat``); so are integers longer than 64 digits and strings with a lone surrogate
  escape (not Unicode). The models refuse non-finite floats too (``allow_inf_nan=False``).
* Otherwise the object is validated by the model; every violation is one error whose field is
  the dotted path of pydantic's location (``label.releasable_to.0``,
  ``route.1.altitude_band``); errors about the record as a whole have field ``""``.
* A model-valid record must also be encodable with the type's Avro schema: integers outside the
  range of an Avro ``int``/``long`` (e.g. ``aircraft_count`` above 2^31 - 1) are reported with
  their path. (Everything else the encoder checks, the models already enforce: they are checked
  against the schemas by :func:`schemas.models.check_models_against_schemas`.)
* Sizes are bounded: every string and list by the models (ids and callsigns 128 characters, names
  256, free text 4096, lists per field: :mod:`schemas.models.fields`), and the whole record once
  encoded (framed Avro, as the publisher sends it) by :data:`schemas.models.MAX_RECORD_BYTES`
  (64 KiB, far below the topics' ~1 MiB ``max.message.bytes``); a record above it is one error
  whose field is its largest top-level field. So a file that validates cannot fail at produce time
  for its size.
* Error messages never echo input values (the models set ``hide_input_in_errors``; this module
  only uses pydantic's message and location, never its ``input``), so a report can be logged
  without leaking the content of a classified or personal record.

An unknown type name raises :class:`schemas.UnknownMessageType` before any line is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import BaseModel, ValidationError

import schemas
from schemas import UnknownMessageType
from schemas.models import MAX_RECORD_BYTES, MODELS, to_avro
from schemas.models.jsontext import JsonTextError, loads_strict
from schemas.named import NamedTypes

__all__ = ["LineError", "ValidationReport", "validate_lines", "validate_file", "encoded_size"]

_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class LineError:
    """One problem on one line: ``line`` is 1-based, ``field`` a dotted path or ``""`` (whole line)."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.field:
            return f"line {self.line}: {self.field}: {self.message}"
        return f"line {self.line}: {self.message}"


@dataclass
class ValidationReport:
    """Outcome of validating a file: the valid records and every error, both in line order."""

    type_name: str
    valid: list[tuple[int, BaseModel]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    #: Number of blank (empty or whitespace-only) lines skipped.
    blank: int = 0

    @property
    def ok(self) -> bool:
        """True when no line has an error (an empty file is ok and has no records)."""
        return not self.errors

    @property
    def models(self) -> list[BaseModel]:
        """The valid models, in line order."""
        return [model for _, model in self.valid]

    @property
    def invalid_lines(self) -> list[int]:
        """Line numbers with at least one error, ascending, without repeats."""
        return sorted({error.line for error in self.errors})

    @property
    def records(self) -> int:
        """Number of non-blank lines (valid and invalid records)."""
        return len(self.valid) + len(self.invalid_lines)

    def summary(self) -> str:
        """One line: ``<type>: <n> records, <v> valid, <e> invalid (<k> errors)``."""
        return (
            f"{self.type_name}: {self.records} records, {len(self.valid)} valid, "
            f"{len(self.invalid_lines)} invalid ({len(self.errors)} errors)"
        )


def validate_lines(type_name: str, lines: Iterable[str | bytes]) -> ValidationReport:
    """Validate every line of an NDJSON stream as a message of type ``type_name``.

    ``lines`` may be any iterable of lines (an open text file, ``str.splitlines()``, a list);
    trailing newlines are ignored, ``bytes`` lines are decoded as UTF-8 (a line that is not
    UTF-8 is an error), and a UTF-8 byte-order mark on the first line is ignored.
    Raises :class:`schemas.UnknownMessageType` when ``type_name`` is not a message type.
    """
    model = _model_for(type_name)
    report = ValidationReport(type_name=type_name)
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, (bytes, bytearray)):
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                report.errors.append(LineError(number, "", f"not valid UTF-8 (byte {exc.start})"))
                continue
        else:
            text = raw
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip():
            report.blank += 1
            continue
        result = _validate_one(type_name, model, number, text)
        if isinstance(result, BaseModel):
            report.valid.append((number, result))
        else:
            report.errors.extend(result)
    return report


def validate_file(type_name: str, path: str | Path) -> ValidationReport:
    """:func:`validate_lines` on the file at ``path``, read as bytes so one bad line stays one error."""
    _model_for(type_name)  # fail fast, before opening the file
    with open(path, "rb") as handle:
        return validate_lines(type_name, _split_lines(handle))


# --------------------------------------------------------------------------- internals


def _model_for(type_name: str) -> type[BaseModel]:
    try:
        return MODELS[type_name]
    except KeyError:
        raise UnknownMessageType(
            f"unknown message type {type_name!r}; known: {', '.join(schemas.MESSAGE_TYPES)}"
        ) from None


def _split_lines(handle: Any) -> Iterator[bytes]:
    # Split on b"\n" only (what NDJSON means by a line); "\r\n" leaves a "\r" that strip() and
    # JSON whitespace rules absorb.
    for line in handle:
        yield line.rstrip(b"\n")


def _validate_one(type_name: str, model: type[BaseModel], number: int, text: str) -> BaseModel | list[LineError]:
    try:
        value = loads_strict(text)
    except JsonTextError as exc:
        # Messages name the problem and where it is (position, field path), never the content.
        return [LineError(number, ".".join(map(str, path)), message) for path, message in exc.problems]
    if not isinstance(value, dict):
        return [LineError(number, "", f"expected a JSON object, got {_json_kind(value)}")]

    try:
        instance = model.model_validate(value)
    except ValidationError as exc:
        return [_line_error(number, error) for error in exc.errors(include_url=False, include_input=False)]

    avro_errors = _avro_errors(type_name, instance, number)
    return avro_errors or _size_errors(type_name, instance, number) or instance


def _line_error(number: int, error: Any) -> LineError:
    path = ".".join(str(part) for part in error.get("loc", ()))
    message = error.get("msg", "invalid")
    if error.get("type") == "value_error":
        # "Value error, floor_ft must be below ceiling_ft" -> our validator's own message.
        cause = (error.get("ctx") or {}).get("error")
        message = str(cause) if cause is not None else message.removeprefix("Value error, ")
    return LineError(number, path, message)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


# --------------------------------------------------------------------------- Avro encodability


@lru_cache(maxsize=None)
def _named_types(type_name: str) -> NamedTypes:
    """Every named type defined in the schema of ``type_name`` (looked up by short or full name)."""
    return NamedTypes(_schema(type_name), schemas.NAMESPACE)


@lru_cache(maxsize=None)
def _schema(type_name: str) -> dict[str, Any]:
    """The schema of ``type_name`` as parsed JSON (cached; read only)."""
    return schemas.load_schema(type_name)


_HAS_INTS: dict[int, bool] = {}


def _needs_range_check(node: Any, named: NamedTypes) -> bool:
    """Memoised :func:`_has_ints` (schema nodes come from the cached schemas, so ids are stable)."""
    key = id(node)
    result = _HAS_INTS.get(key)
    if result is None:
        result = _HAS_INTS[key] = _has_ints(node, named)
    return result


def _has_ints(node: Any, named: NamedTypes, seen: frozenset[str] = frozenset()) -> bool:
    """True when ``node`` contains an Avro int/long that is not a logical type (needs a range check)."""
    if isinstance(node, str):
        if node in ("int", "long"):
            return True
        definition = named.lookup(node)
        if definition is not None and node not in seen:
            return _has_ints(definition, named, seen | {node})
        return False
    if isinstance(node, list):
        return any(_has_ints(branch, named, seen) for branch in node)
    kind = node.get("type")
    if isinstance(kind, (dict, list)):
        return _has_ints(kind, named, seen)
    if kind == "record":
        return any(_has_ints(child["type"], named, seen | {node["name"]}) for child in node["fields"])
    if kind == "array":
        return _has_ints(node["items"], named, seen)
    if kind in ("int", "long"):
        return not node.get("logicalType")
    return False


def _range_errors(node: Any, datum: Any, path: list[str], named: NamedTypes, out: list[tuple[str, str]]) -> None:
    """Append (path, message) for every int/long in ``datum`` (a model or value) out of Avro range."""
    if datum is None:
        return
    if isinstance(node, str):
        definition = named.lookup(node)
        if definition is not None:
            node = definition
        elif node in ("int", "long"):
            node = {"type": node}
        else:
            return
    if isinstance(node, list):  # ["null", T]
        for branch in node:
            if branch != "null":
                _range_errors(branch, datum, path, named, out)
        return
    kind = node.get("type")
    if isinstance(kind, (dict, list)):
        _range_errors(kind, datum, path, named, out)
    elif kind == "record":
        for child in node["fields"]:
            if _needs_range_check(child["type"], named):
                _range_errors(child["type"], getattr(datum, child["name"], None), [*path, child["name"]], named, out)
    elif kind == "array" and isinstance(datum, list):
        for index, item in enumerate(datum):
            _range_errors(node["items"], item, [*path, str(index)], named, out)
    elif kind in ("int", "long") and not node.get("logicalType"):
        if isinstance(datum, int) and not isinstance(datum, bool):
            low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
            if not low <= datum <= high:
                out.append((".".join(path), f"out of range of an Avro {kind} ({low} .. {high})"))


def _avro_errors(type_name: str, instance: BaseModel, number: int) -> list[LineError]:
    """Problems the Avro encoder would have with a model-valid record.

    The models are checked field by field against the schemas (types, optionality, enums,
    arrays), so the only constraint left is the range of Avro's 32/64-bit integers.
    """
    problems: list[tuple[str, str]] = []
    _range_errors(_schema(type_name), instance, [], _named_types(type_name), problems)
    return [LineError(number, path, message) for path, message in problems]


# --------------------------------------------------------------------------- encoded size

#: Magic byte and 4-byte schema id the publisher puts in front of the Avro body.
_FRAMING_BYTES = 5


@lru_cache(maxsize=None)
def _parsed_schema(type_name: str) -> Any:
    import fastavro

    return fastavro.parse_schema(_schema(type_name))


def encoded_size(type_name: str, instance: BaseModel) -> int:
    """Bytes of the framed Avro value the publisher would send for ``instance`` (a valid model)."""
    import io

    from fastavro import schemaless_writer

    buffer = io.BytesIO()
    schemaless_writer(buffer, _parsed_schema(type_name), to_avro(instance))
    return _FRAMING_BYTES + buffer.tell()


def _size_errors(type_name: str, instance: BaseModel, number: int) -> list[LineError]:
    """One error when the encoded record is above MAX_RECORD_BYTES, on its largest top-level field."""
    size = encoded_size(type_name, instance)
    if size <= MAX_RECORD_BYTES:
        return []
    # Which field makes it big: UTF-8 bytes of each top-level field's JSON (an estimate, only to name it).
    dumped = instance.model_dump(mode="json")
    largest = max(dumped, key=lambda name: len(json.dumps(dumped[name], ensure_ascii=False).encode("utf-8")))
    return [LineError(number, largest, f"record is {size} bytes once encoded, above the {MAX_RECORD_BYTES}-byte "
                                       f"bound (this is its largest field)")]

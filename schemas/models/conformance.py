"""The conformance check: every message model against its .avsc, recursively, so the two cannot drift apart.

:func:`compare_model_to_schema` compares a model with a record schema (field names and order,
optionality and defaults, arrays, nested records, enum symbols, primitive and logical types);
:func:`check_models_against_schemas` runs it for every message type (the unit tests do).
"""

from __future__ import annotations

import types
import typing
import uuid
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Union

from pydantic import BaseModel

from schemas import MESSAGE_TYPES, NAMESPACE, load_schema
from schemas.models.convert import avro_value
from schemas.models.messages import MODELS
from schemas.named import NamedTypes, UndefinedNamedType

__all__ = ["compare_model_to_schema", "check_models_against_schemas"]


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
                model_default = avro_value(info.get_default(call_default_factory=True))
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

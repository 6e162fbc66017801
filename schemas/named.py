"""Avro named types (record, enum, fixed): where a schema defines each one, and what a reference to one means.

The one resolver of named types for the project; everything that walks a schema (the model
conformance check, the NDJSON validator, the release engine's field tree, schema governance) uses it::

    named = NamedTypes(schema)                   # every definition in ``schema``
    named.resolve("Position", "liaison.bus")     # the definition of liaison.bus.Position
    named.resolve({"type": "array", ...}, ns)    # an inline type is returned as is

A table built empty, ``NamedTypes()``, learns each definition as :meth:`NamedTypes.resolve` meets
it, so a walker that visits a schema in order resolves exactly what Avro's define-before-use rule
allows. A definition registered twice under one full name keeps the first.
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["PRIMITIVES", "NAMED_KINDS", "UndefinedNamedType", "full_name", "NamedTypes"]

#: Avro's primitive type names (never names of named types).
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

#: The kinds of Avro type that have a name.
NAMED_KINDS = ("record", "enum", "fixed")


class UndefinedNamedType(ValueError):
    """A reference to a named type the schema does not define (before that point)."""

    def __init__(self, name: str):
        super().__init__(f"undefined named type {name!r}")
        self.name = name


def full_name(name: str, namespace: str) -> str:
    """The full name of ``name`` in ``namespace`` (a dotted name is already full)."""
    return name if "." in name or not namespace else f"{namespace}.{name}"


class NamedTypes:
    """The named types of a schema, by full name (and by short name), and the resolution of references."""

    def __init__(self, schema: Any = None, namespace: str = ""):
        self._by_full: dict[str, dict[str, Any]] = {}
        self._by_short: dict[str, dict[str, Any]] = {}
        if schema is not None:
            self.collect(schema, namespace)

    # ------------------------------------------------------------------ building

    def define(self, definition: dict[str, Any], namespace: str = "") -> str:
        """Register one named definition met in ``namespace``; returns its full name."""
        full = full_name(definition["name"], definition.get("namespace", namespace))
        self._by_full.setdefault(full, definition)
        self._by_short.setdefault(full.rsplit(".", 1)[-1], definition)
        return full

    def collect(self, avro_type: Any, namespace: str = "") -> None:
        """Register every named type defined inside ``avro_type`` (depth first, in schema order)."""
        if isinstance(avro_type, list):
            for branch in avro_type:
                self.collect(branch, namespace)
        elif isinstance(avro_type, dict):
            kind = avro_type.get("type")
            if kind in NAMED_KINDS:
                self.define(avro_type, namespace)
                inner = avro_type.get("namespace", namespace)
                for field in avro_type.get("fields", []):
                    self.collect(field["type"], inner)
            elif kind == "array":
                self.collect(avro_type["items"], namespace)
            elif kind == "map":
                self.collect(avro_type["values"], namespace)
            elif isinstance(kind, (dict, list)):  # {"type": {...}}: a wrapped type
                self.collect(kind, namespace)

    # ------------------------------------------------------------------ looking up

    def lookup(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The definition a reference to ``name`` means, or None.

        In ``namespace`` (``""``: the null namespace) ``name`` is resolved as Avro does, as the
        full name :func:`full_name` gives. With no namespace (for walkers that do not track
        one), ``name`` is looked up as a full name, then as a short name.
        """
        if namespace is not None:
            return self._by_full.get(full_name(name, namespace))
        found = self._by_full.get(name)
        if found is None and "." not in name:
            found = self._by_short.get(name)
        return found

    def resolve(self, avro_type: Any, namespace: str | None = None) -> Any:
        """The definition for a reference, or ``avro_type`` itself (a primitive name or an inline type).

        An inline named definition is registered on the way (see the module doc). Raises
        :class:`UndefinedNamedType` for a reference to a name that is not defined.
        """
        if isinstance(avro_type, str):
            if avro_type in PRIMITIVES:
                return avro_type
            found = self.lookup(avro_type, namespace)
            if found is None:
                raise UndefinedNamedType(avro_type)
            return found
        if isinstance(avro_type, dict) and avro_type.get("type") in NAMED_KINDS:
            self.define(avro_type, namespace or "")
        return avro_type

    # ------------------------------------------------------------------ as a mapping of full names

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Full name -> definition, in definition order (a fresh dict)."""
        return dict(self._by_full)

    def __contains__(self, name: object) -> bool:
        return name in self._by_full

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_full)

    def __len__(self) -> int:
        return len(self._by_full)

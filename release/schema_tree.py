"""A message schema (parsed .avsc JSON) as a tree of fields addressed by dotted paths.

Arrays of records and optional (``["null", T]``) records are transparent: their record's fields are
the node's children, so ``route.position`` is the position of every waypoint of ``route``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.named import PRIMITIVES, NamedTypes

__all__ = ["SchemaNode", "build_tree", "PRIMITIVES"]


@dataclass(eq=False)
class SchemaNode:
    """One field (or the message root, path ``""``) of a schema."""

    name: str
    path: str
    #: The field's declared Avro type, as in the .avsc (named references already resolved).
    avro_type: Any
    #: ``record`` | ``enum`` | ``primitive`` | ``other`` (maps, nested arrays, general unions).
    kind: str
    optional: bool = False          # ["null", T]
    array: bool = False             # an array of T
    prim: str | None = None         # primitive type of a primitive leaf
    logical: str | None = None      # logicalType of a primitive leaf
    symbols: tuple[str, ...] | None = None
    record_name: str | None = None
    #: Children of a record (in schema order); empty for leaves.
    children: dict[str, SchemaNode] = field(default_factory=dict)
    #: True when the path crosses an array (this node or an ancestor): several values per record.
    multi: bool = False
    has_default: bool = False

    # ------------------------------------------------------------------ descriptions

    @property
    def is_record(self) -> bool:
        return self.kind == "record"

    @property
    def is_position(self) -> bool:
        """A record of numeric ``lat`` and ``lon`` (the ``Position`` record)."""
        if self.kind != "record" or set(self.children) != {"lat", "lon"}:
            return False
        return all(c.kind == "primitive" and not c.array and not c.optional and c.prim in ("double", "float")
                   for c in self.children.values())

    @property
    def is_timestamp(self) -> bool:
        return (self.kind == "primitive" and not self.array and self.prim == "long"
                and self.logical in ("timestamp-millis", "timestamp-micros"))

    @property
    def is_plain_string(self) -> bool:
        return self.kind == "primitive" and not self.array and self.prim == "string" and self.logical is None

    @property
    def is_scalar(self) -> bool:
        return self.kind in ("primitive", "enum") and not self.array

    def type_label(self) -> str:
        if self.kind == "record":
            inner = f"record {self.record_name}"
        elif self.kind == "enum":
            inner = f"enum {self.record_name}"
        elif self.kind == "primitive":
            inner = f"{self.prim}/{self.logical}" if self.logical else str(self.prim)
        else:
            inner = "complex type"
        if self.array:
            inner = f"array of {inner}"
        if self.optional:
            inner = f"optional {inner}"
        return inner

    def find(self, path: str) -> SchemaNode | None:
        """The descendant at dotted ``path`` (relative to this node), or None."""
        node: SchemaNode | None = self
        for part in path.split("."):
            if node is None or not node.children:
                return None
            node = node.children.get(part)
        return node

    def walk(self):
        """This node and every descendant, depth first in schema order."""
        yield self
        for child in self.children.values():
            yield from child.walk()


def build_tree(schema: dict[str, Any]) -> SchemaNode:
    """The field tree of a top-level record schema (parsed .avsc JSON).

    Named types are learnt as the walk meets them (Avro's define-before-use); a reference to a
    name not defined before it raises :class:`schemas.named.UndefinedNamedType` (a ValueError).
    """
    named = NamedTypes()
    namespace = schema.get("namespace", "")
    root = SchemaNode(name=schema["name"], path="", avro_type=schema, kind="record")
    _fill(root, schema, namespace, named, multi=False)
    return root


def _fill(node: SchemaNode, record: dict[str, Any], namespace: str, named: NamedTypes, multi: bool) -> None:
    namespace = record.get("namespace", namespace)
    node.record_name = record["name"]
    for fdef in record.get("fields", []):
        name = fdef["name"]
        path = f"{node.path}.{name}" if node.path else name
        child = SchemaNode(name=name, path=path, avro_type=fdef["type"], kind="other",
                           has_default="default" in fdef)
        _classify(child, fdef["type"], namespace, named, multi)
        node.children[name] = child


def _classify(node: SchemaNode, avro_type: Any, namespace: str, named: NamedTypes, multi: bool) -> None:
    t = avro_type
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        if "null" in t and len(branches) == 1 and len(t) == 2:
            node.optional = True
            t = branches[0]
        else:
            node.kind = "other"
            node.multi = multi
            return
    t = named.resolve(t, namespace)
    if isinstance(t, dict) and t.get("type") == "array":
        node.array = True
        multi = True
        t = named.resolve(t["items"], namespace)
        if isinstance(t, list) or (isinstance(t, dict) and t.get("type") in ("array", "map")):
            node.kind = "other"
            node.multi = multi
            return
    node.multi = multi
    if isinstance(t, str):
        node.kind, node.prim = "primitive", t
        return
    kind = t.get("type")
    if kind == "record":
        node.kind = "record"
        _fill(node, t, t.get("namespace", namespace), named, multi)
    elif kind == "enum":
        node.kind = "enum"
        node.record_name = t["name"]
        node.symbols = tuple(t["symbols"])
    elif isinstance(kind, str) and kind in PRIMITIVES:
        node.kind, node.prim, node.logical = "primitive", kind, t.get("logicalType")
    else:
        node.kind = "other"

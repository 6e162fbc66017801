"""Derived partner schemas: the writer schema of a type reduced to the union of what its rules release.

The derived schema lives in the partner's namespace (``liaison.bus.partner.<partner>``), holds no
``doc`` attributes, and makes a field optional (``["null", T]``, default null) when not every rule
of the type releases it.
"""

from __future__ import annotations

from typing import Any

import schemas
from release.projection import UnionNode
from release.schema_tree import PRIMITIVES, SchemaNode

__all__ = ["derive_schema"]

_KEEP_ATTRS = ("type", "logicalType", "precision", "scale", "size")


def derive_schema(tree: SchemaNode, union: UnionNode, namespace: str) -> dict[str, Any]:
    """The Avro schema of the records the projections of ``union`` emit, in ``namespace``."""
    original = tree.avro_type
    registry = schemas.named_types(original, original.get("namespace", ""))
    emitted: dict[str, Any] = {}

    def named_def(kind_def: dict[str, Any]) -> Any:
        """Register a derived named type; a repeat of an identical definition becomes a reference."""
        name = kind_def["name"]
        base, n = name, 1
        while name in emitted:
            if emitted[name] == {**kind_def, "name": name}:
                return f"{namespace}.{name}"
            n += 1
            name = f"{base}{n}"
        kind_def = {**kind_def, "name": name}
        emitted[name] = kind_def
        return kind_def

    def rebuild(avro_type: Any, unode: UnionNode, ns: str) -> Any:
        if isinstance(avro_type, list):
            return [rebuild(b, unode, ns) for b in avro_type]
        if isinstance(avro_type, str):
            if avro_type in PRIMITIVES:
                return avro_type
            full = avro_type if "." in avro_type else f"{ns}.{avro_type}"
            return rebuild(registry[full], unode, ns)
        kind = avro_type.get("type")
        if kind == "record":
            inner_ns = avro_type.get("namespace", ns)
            fields = [field_def(unode.children[f["name"]], f, inner_ns)
                      for f in avro_type.get("fields", []) if f["name"] in unode.children]
            return named_def({"type": "record", "name": avro_type["name"], "namespace": namespace, "fields": fields})
        if kind == "enum":
            d = {"type": "enum", "name": avro_type["name"], "namespace": namespace, "symbols": list(avro_type["symbols"])}
            if "default" in avro_type:
                d["default"] = avro_type["default"]
            return named_def(d)
        if kind == "fixed":
            return named_def({"type": "fixed", "name": avro_type["name"], "namespace": namespace,
                              "size": avro_type["size"]})
        if kind == "array":
            return {"type": "array", "items": rebuild(avro_type["items"], unode, ns)}
        if kind == "map":
            return {"type": "map", "values": rebuild(avro_type["values"], unode, ns)}
        return {k: avro_type[k] for k in _KEEP_ATTRS if k in avro_type}

    def field_def(unode: UnionNode, original_field: dict[str, Any], ns: str) -> dict[str, Any]:
        t = rebuild(original_field["type"], unode, ns)
        out: dict[str, Any] = {"name": original_field["name"], "type": t}
        if unode.nullable:
            if isinstance(t, list):
                if "null" not in t:
                    t = ["null", *t]
                elif t[0] != "null":
                    t = ["null", *[b for b in t if b != "null"]]
                out["type"] = t
            else:
                out["type"] = ["null", t]
            out["default"] = None
        elif "default" in original_field and not unode.node.is_record:
            out["default"] = original_field["default"]
        return out

    fields = [field_def(union.children[f["name"]], f, original.get("namespace", ""))
              for f in original["fields"] if f["name"] in union.children]
    return {"type": "record", "name": original["name"], "namespace": namespace, "fields": fields}

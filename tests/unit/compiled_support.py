"""Shared by the compiled core's differential tests."""

from __future__ import annotations


def raw_schema(schema):
    """``schema`` without its logical types: times and dates as ints, uuids as text, as the compiled core reads
    them (and as edge values are written)."""
    if isinstance(schema, dict):
        return {k: raw_schema(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [raw_schema(s) for s in schema]
    return schema


def named_types(schema, named: dict | None = None) -> dict:
    """Every named type (record, enum, fixed) defined anywhere in ``schema``, by name and by full name: one defined
    in a union branch a generator did not take may be used by name later."""
    named = {} if named is None else named

    def walk(t):
        if isinstance(t, list):
            for branch in t:
                walk(branch)
        elif isinstance(t, dict):
            if t.get("type") in ("record", "enum", "fixed"):
                named[t["name"]] = t
                if "namespace" in t:
                    named[f"{t['namespace']}.{t['name']}"] = t
            for f in t.get("fields", ()):
                walk(f["type"])
            for k in ("items", "values", "type"):
                if isinstance(t.get(k), (dict, list)):
                    walk(t[k])

    walk(schema)
    return named

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

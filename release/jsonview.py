"""JSON form of record dicts (as fastavro reads them) for humans and tools."""

from __future__ import annotations

import base64
import uuid
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any

__all__ = ["to_json", "iso_z"]


def iso_z(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: seconds, plus milliseconds (or microseconds) when not zero."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}" if value.microsecond % 1000 == 0 else f".{value.microsecond:06d}"
    return text + "Z"


def to_json(value: Any) -> Any:
    """``value`` with datetimes, dates, UUIDs, enums and bytes made JSON-serialisable (recursively)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)

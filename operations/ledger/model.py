"""The ledger's vocabulary: a bucket key (partner, category, direction, hour), its figures, the windows.

Changelog record (topic liaison.ledger, compacted): one per bucket, the bucket's running totals.

    key    "<CODE>/<category>/<direction>/<hour_start_ms>"   e.g. "RUS/strike_results/given/1767225600000"
    value  JSON {"count": <records>, "bytes": <bytes>}       e.g. {"count":12,"bytes":4810}

``direction`` is ``given`` (we released to the partner) or ``received`` (the partner sent us and the ingress guard
accepted); ``hour_start_ms`` is the start of the UTC hour of the decision (``decided_at``), in ms since the epoch.
A value is the bucket's total so far, not an increment: the latest record of a key is the figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from schemas.agreement import CATEGORIES

__all__ = ["BucketKey", "DIRECTIONS", "Figures", "GIVEN", "HOUR_MS", "LedgerFormatError", "RECEIVED", "WINDOWS",
           "WINDOW_HOURS", "ZERO", "decode_key", "decode_value", "encode_key", "encode_value", "hour_of"]

GIVEN, RECEIVED = "given", "received"
DIRECTIONS: tuple[str, ...] = (GIVEN, RECEIVED)
HOUR_MS = 3_600_000
#: A window is the hour bucket that holds ``now`` and the ones before it: 24 buckets (day), 168 (week). So a
#: window covers between 23 and 24 hours (day) of decisions, depending on how far into its hour ``now`` is.
WINDOW_HOURS: dict[str, int] = {"day": 24, "week": 168}
WINDOWS: tuple[str, ...] = tuple(WINDOW_HOURS)


def hour_of(ms: int) -> int:
    """Start (ms) of the UTC hour holding ``ms``."""
    return ms - ms % HOUR_MS


class LedgerFormatError(ValueError):
    """A changelog key or value that is not the ledger's."""


class BucketKey(NamedTuple):
    partner: str
    category: str
    direction: str
    hour: int  # start of the hour, ms since the epoch

    def encode(self) -> bytes:
        return encode_key(self)


@dataclass(frozen=True, slots=True)
class Figures:
    count: int = 0
    bytes: int = 0

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(self.count + other.count, self.bytes + other.bytes)

    def to_dict(self) -> dict:
        return {"count": self.count, "bytes": self.bytes}


ZERO = Figures()


def encode_key(key: BucketKey) -> bytes:
    return f"{key.partner}/{key.category}/{key.direction}/{key.hour}".encode()


def decode_key(raw: bytes | str) -> BucketKey:
    text = raw.decode() if isinstance(raw, (bytes, bytearray, memoryview)) else raw
    parts = text.split("/")
    if len(parts) != 4:
        raise LedgerFormatError(f"ledger key {text!r} is not <CODE>/<category>/<direction>/<hour_start_ms>")
    partner, category, direction, hour = parts
    if category not in CATEGORIES or direction not in DIRECTIONS or not hour.isdigit() or int(hour) % HOUR_MS:
        raise LedgerFormatError(f"ledger key {text!r}: unknown category or direction, or not an hour start")
    return BucketKey(partner, category, direction, int(hour))


def encode_value(fig: Figures) -> bytes:
    return json.dumps(fig.to_dict(), separators=(",", ":")).encode()


def decode_value(raw: bytes | None) -> Figures | None:
    """Figures of a changelog value; None for a tombstone (the bucket forgotten)."""
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        count, size = d["count"], d["bytes"]
    except (ValueError, TypeError, KeyError) as e:
        raise LedgerFormatError(f"ledger value is not {{count, bytes}} JSON: {e}") from None
    if not (isinstance(count, int) and isinstance(size, int)) or count < 0 or size < 0:
        raise LedgerFormatError("ledger value: count and bytes must be non-negative integers")
    return Figures(count, size)

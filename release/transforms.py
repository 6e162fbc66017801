"""Value transforms of the field actions (pure functions, built once per policy)."""

from __future__ import annotations

import hmac
import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

__all__ = ["snap_down", "make_coarsen", "make_bucket", "make_pseudonymise", "PSEUDONYM_PREFIX"]

PSEUDONYM_PREFIX = "p-"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ON_LINE = 1 - 1e-9
#: pseudonyms remembered per key (partner): see make_pseudonymise
PSEUDONYM_CACHE = 16384


def snap_down(value: float, grid_deg: float) -> float:
    """``value`` snapped down to the grid: ``floor(value / grid) * grid``, rounded to 6 decimals.

    A quotient within 1e-9 below a whole number counts as that number, so that a value already on
    a grid line stays there despite binary floating point (0.3 / 0.1 is 2.9999999999999996, not 3).
    """
    q = value / grid_deg
    n = math.floor(q)
    if q - n > _ON_LINE:
        n += 1
    return round(n * grid_deg, 6)


def make_coarsen(grid_deg: float) -> Callable[[dict[str, Any]], dict[str, float]]:
    """Position ``{lat, lon}`` -> the south-west corner of its grid cell (a new dict)."""
    g = float(grid_deg)
    snap = snap_down

    def coarsen(position: dict[str, Any]) -> dict[str, float]:
        return {"lat": snap(position["lat"], g), "lon": snap(position["lon"], g)}

    return coarsen


def make_bucket(seconds: int, logical: str | None = "timestamp-millis") -> Callable[[Any], Any]:
    """Timestamp -> the start of its bucket of ``seconds`` (epoch aligned, UTC).

    Accepts aware datetimes (fastavro's reading of ``timestamp-*``; a naive one is taken as UTC)
    and raw integers (millis or micros, by ``logical``) and returns the same kind.
    """
    step = timedelta(seconds=seconds)
    raw_step = seconds * (1_000_000 if logical == "timestamp-micros" else 1000)

    def bucket(value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return _EPOCH + ((value - _EPOCH) // step) * step
        if isinstance(value, int) and not isinstance(value, bool):
            return value - value % raw_step
        raise TypeError("timestamp is neither a datetime nor an integer")

    return bucket


def make_pseudonymise(key: bytes) -> Callable[[str], str]:
    """String -> ``"p-"`` + the first 32 hex digits of HMAC-SHA256(key, utf-8 value).

    Stable for one key (one partner), unlinkable across keys.
    """
    digest = hmac.digest

    # Cached: identifiers repeat (many tracks per sortie), and an HMAC costs ~2 us. The cache holds
    # internal values in this process's memory only, like the records themselves. Bounded to the working
    # set, not to every id ever seen: an entry (value, pseudonym, LRU link) is ~200-240 B, and values that do
    # not repeat (report ids) fill any bound. The simulator's mix at 2,000 records/s brings ~73 new values/s
    # per key (sortie ids mostly); an LRU of 4,096 already hits as often as an unbounded one (89-92 %; 1,024:
    # 10-12 %), so 16,384 is 4x that working set, ~4 MiB per key, full after ~4 min at that rate. (65,536
    # took ~15 min and ~15 MiB per key to fill: the soak's RSS grew by ~25 MiB after its 5 min warm-up.)
    @lru_cache(maxsize=PSEUDONYM_CACHE)
    def pseudonymise(value: str) -> str:
        return PSEUDONYM_PREFIX + digest(key, value.encode("utf-8"), "sha256").hex()[:32]

    return pseudonymise

"""The shared basics of one simulated run: its random generators, clock, counters, message ids and sentinel marks."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

from producers.simulate.sentinels import SENTINEL_PREFIX

__all__ = ["Run"]


class Run:
    """What every generator of one run shares (one instance per :meth:`Simulator.stream` call).

    All randomness comes from :attr:`rng`; sentinels come from their own generator,
    :attr:`sentinel_rng` (None unless sentinel mode), so that sentinel mode changes nothing else.
    """

    def __init__(self, seed: int, start: datetime, sentinels: bool):
        self.rng = random.Random(seed)
        self.sentinel_rng = random.Random(f"liaison-sentinels:{seed}") if sentinels else None
        self.start = start
        self.counters: dict[str, int] = {}
        self._days: dict[int, str] = {}
        self.start_ms = (self.start - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)

    def dt(self, t_ms: int) -> datetime:
        return self.start + timedelta(milliseconds=t_ms)

    def day(self, t_ms: int) -> str:
        """``YYYYMMDD`` of ``start + t_ms`` (cached per day: strftime is slow)."""
        key = (self.start_ms + t_ms) // 86_400_000
        text = self._days.get(key)
        if text is None:
            text = self._days[key] = self.dt(t_ms).strftime("%Y%m%d")
        return text

    def next_id(self, prefix: str) -> int:
        value = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = value
        return value

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def sentinel(self, path: str) -> str:
        """A fresh sentinel for field ``path`` (sentinel mode only)."""
        assert self.sentinel_rng is not None
        return f"{SENTINEL_PREFIX}{path}-{self.sentinel_rng.getrandbits(32):08x}"

    def mark(self, path: str, text: str) -> str:
        """``text`` with a sentinel for field ``path`` appended, in sentinel mode."""
        if self.sentinel_rng is None:
            return text
        return f"{text} {self.sentinel(path)}"

"""Weighted random choice from fixed ``(value, weight)`` pairs, with a caller's random generator."""

from __future__ import annotations

import bisect
import random
from typing import Any, Sequence

__all__ = ["Weighted"]


def _cumulative(pairs: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    values = [value for value, _ in pairs]
    totals: list[float] = []
    running = 0.0
    for _, weight in pairs:
        running += weight
        totals.append(running)
    return values, totals


class Weighted:
    """Fast weighted choice with a given random generator."""

    __slots__ = ("values", "totals", "total")

    def __init__(self, pairs: Sequence[tuple[Any, float]]):
        self.values, self.totals = _cumulative(pairs)
        self.total = self.totals[-1]

    def pick(self, rng: random.Random) -> Any:
        index = bisect.bisect_right(self.totals, rng.random() * self.total)
        return self.values[min(index, len(self.values) - 1)]

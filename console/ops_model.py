"""What the operations view shows, kept as plain data over a window, the clock passed in. Pure.

* :class:`Outcomes`: released / withheld / held / released from the hold / dead-lettered (the decision audit,
  per recipient decision) and accepted / quarantined (the ingress audit), per partner and type, in one-minute
  buckets.
* :class:`LagHistory`: per consumer group, its status and lag at each poll of the lag monitor's evaluation.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["OUTCOME_OF_DECISION", "OUTCOME_OF_INGRESS", "OUTCOMES", "Outcomes", "LagHistory", "ms_of"]

MINUTE_MS = 60_000
OUTCOME_OF_DECISION = {"RELEASE": "released", "WITHHOLD": "withheld", "HELD": "held",
                       "RELEASED": "released_from_hold", "DEAD_LETTER": "dead_lettered"}
OUTCOME_OF_INGRESS = {"ACCEPT": "accepted", "QUARANTINE": "quarantined"}
OUTCOMES = (*OUTCOME_OF_DECISION.values(), *OUTCOME_OF_INGRESS.values())


def ms_of(value: Any) -> int | None:
    """A decoded timestamp (datetime or ms) in ms since the epoch."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    return int(value)


class Outcomes:
    """Counts per (minute, partner or component, type, outcome), forgetting minutes older than ``keep_minutes``."""

    def __init__(self, keep_minutes: int = 60):
        self.keep_minutes = keep_minutes
        self._buckets: Counter = Counter()
        self.totals: Counter = Counter()

    def add(self, at_ms: int | None, recipient: str | None, type_name: str | None, outcome: str | None) -> None:
        if at_ms is None or outcome is None:
            return
        key = (recipient or "?", (type_name or "?").rpartition("/")[2].rpartition(".")[2], outcome)
        self._buckets[(at_ms - at_ms % MINUTE_MS, *key)] += 1
        self.totals[key] += 1

    def add_decisions(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rows of :func:`core.audit.decisions_of` (one per recipient decision)."""
        for r in rows:
            self.add(ms_of(r.get("decided_at")), r.get("partner"), r.get("message_type"),
                     OUTCOME_OF_DECISION.get(r.get("decision")))

    def add_ingress(self, audit: Mapping[str, Any]) -> None:
        self.add(ms_of(audit.get("decided_at")), audit.get("partner"), audit.get("message_type"),
                 OUTCOME_OF_INGRESS.get(audit.get("decision")))

    def snapshot(self, now_ms: int, minutes: int = 30) -> dict:
        """The last ``minutes`` minutes per (recipient, outcome), summed over types, and the totals by type."""
        start = now_ms - now_ms % MINUTE_MS - (minutes - 1) * MINUTE_MS
        for key in [k for k in self._buckets if k[0] < now_ms - self.keep_minutes * MINUTE_MS]:
            del self._buckets[key]
        series: dict[tuple[str, str], list[int]] = {}
        for (minute, recipient, _type, outcome), n in self._buckets.items():
            if minute >= start:
                series.setdefault((recipient, outcome), [0] * minutes)[(minute - start) // MINUTE_MS] += n
        return {"start_ms": start, "minute_ms": MINUTE_MS,
                "series": [{"recipient": r, "outcome": o, "counts": c} for (r, o), c in sorted(series.items())],
                "totals": [{"recipient": r, "type": t, "outcome": o, "count": n}
                           for (r, t, o), n in sorted(self.totals.items())]}


class LagHistory:
    """The last ``points`` polls of each group: (time, status, lag in offsets, oldest unconsumed in seconds)."""

    def __init__(self, points: int = 120):
        self.points = points
        self._groups: dict[str, deque] = {}
        self._last: dict[str, dict] = {}

    def add(self, at_s: float, report: Any) -> None:
        """``report``: an operations.lag Report (its ``groups``: GroupReport)."""
        for g in report.groups:
            self._groups.setdefault(g.group, deque(maxlen=self.points)).append(
                [round(at_s, 3), g.status, g.lag_offsets, g.max_lag_seconds])
            self._last[g.group] = {"group": g.group, "status": g.status, "reason": g.reason, "state": g.state,
                                   "members": g.members, "lag_offsets": g.lag_offsets,
                                   "max_lag_seconds": g.max_lag_seconds}

    def snapshot(self) -> list[dict]:
        return [{**self._last[name], "history": list(self._groups[name])} for name in sorted(self._last)]

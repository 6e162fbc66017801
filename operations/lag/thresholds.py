"""When the lag evaluation judges a partition WARNING / STALLED / STOPPED: its thresholds (options of
`liaison lag`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.topics import HOLD_TOPIC

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """When a partition is judged WARNING / STALLED / STOPPED. Defaults suit a 5 s poll interval: a consumer
    killed while producers run is STALLED at the second poll after the kill (<= 2 intervals), STOPPED
    after `stop_seconds`, and OK again once it has caught up (lag 0) or commits again."""

    #: consecutive polls with lag > 0 and the same committed offset for STALLED (2 = one whole interval)
    stall_polls: int = 2
    #: ... and the time those polls must span at least (guards very short intervals)
    stall_min_seconds: float = 0.5
    #: stuck this long (or at all, in a group without active members) => STOPPED
    stop_seconds: float = 30.0
    #: polls over which a never-decreasing, growing lag means WARNING
    warn_polls: int = 5
    #: ... when the oldest unconsumed record is at least this old (a healthy consumer's is ~1 s)
    warn_min_lag_seconds: float = 10.0
    #: snapshots kept in the window (at least enough to span stop_seconds; see window_for)
    window: int = 12
    #: an offset lag up to this on an end offset that has not moved since the commit is a possible transaction
    #: marker (a read_committed consumer parked after the last transaction), not flagged; 0 flags it
    marker_offsets: int = 1
    #: topics whose records wait by design (the forwarder's held releases, paused until they fall due): their
    #: lag is reported but never judged WARNING/STALLED/STOPPED while the group has active members
    holding_topics: tuple[str, ...] = (HOLD_TOPIC,)

    def __post_init__(self) -> None:
        if self.stall_polls < 2:
            raise ValueError("stall_polls must be >= 2 (a stall is judged between two polls)")
        if self.warn_polls < 2:
            raise ValueError("warn_polls must be >= 2")
        if self.stop_seconds <= 0 or self.stall_min_seconds < 0 or self.warn_min_lag_seconds < 0:
            raise ValueError("thresholds in seconds must be positive")
        if self.marker_offsets < 0:
            raise ValueError("marker_offsets must be >= 0")

    def window_for(self, interval: float) -> int:
        """Snapshots to keep at this poll interval so that every rule can be reached."""
        need_stop = math.ceil(self.stop_seconds / max(interval, 1e-3)) + 2
        return max(self.window, self.stall_polls, self.warn_polls, need_stop)


# ---------------------------------------------------------------------------------------------- figures

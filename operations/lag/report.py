"""What the lag evaluation reports: per partition, per group, and the whole report (table, JSON, Prometheus
read these). Plain data; the rules that fill them are in :mod:`operations.lag.evaluate`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from operations.lag.samples import Age
from operations.lag.thresholds import Thresholds

__all__ = ["PartitionReport", "GroupReport", "Report"]


@dataclass(frozen=True)
class PartitionReport:
    topic: str
    partition: int
    committed: int | None
    end_offset: int | None
    high_watermark: int | None
    #: last stable offset - committed offset (clamped >= 0): data records, plus transaction markers and aborted
    #: records in between on transactional topics
    lag_offsets: int | None
    #: how long the oldest unconsumed record has waited (see lag_seconds_kind); None when unknown
    lag_seconds: float | None
    status: str
    reason: str
    #: committed offset was beyond the end offset; lag clamped to 0
    clamped: bool = False
    #: how long (lower bound, from the window) the committed offset has not changed
    committed_unchanged_s: float | None = None
    error: str | None = None
    #: why lag_seconds is unknown (lag > 0 but no sample dates the committed offset, or a possible marker)
    lag_seconds_note: str | None = None
    #: exact | interpolated | at_least | at_most (samples.AGE_KINDS); None when lag_seconds is None
    lag_seconds_kind: str | None = None
    #: lag_seconds is not a measurement: interpolated between samples, or only a bound
    estimated: bool = False
    #: certain bounds of lag_seconds (high None: unbounded)
    lag_seconds_low: float | None = None
    lag_seconds_high: float | None = None
    #: lag_offsets <= marker_offsets on an end that has not moved since the commit: maybe only a marker
    possible_marker: bool = False

    @property
    def lag_records(self) -> int | None:
        """Deprecated name of lag_offsets (offsets, not data records); liaison/demo.py still reads it."""
        return self.lag_offsets

    @property
    def lag_seconds_text(self) -> str:
        """`-`, `0.0`, `~12.3` (interpolated), `≥300.0` (at least), `≤40.0` (at most)."""
        if self.lag_seconds is None or self.lag_seconds_kind is None:
            return "-"
        return Age(self.lag_seconds, self.lag_seconds_low or 0.0, self.lag_seconds_high,
                   self.lag_seconds_kind).text()


@dataclass(frozen=True)
class GroupReport:
    group: str
    status: str
    reason: str
    state: str | None
    members: int | None
    #: sum over partitions with a known lag (never includes no-commit or unreadable partitions)
    lag_offsets: int
    #: oldest unconsumed record over the group's partitions; None when no partition has a known figure
    max_lag_seconds: float | None
    partitions: tuple[PartitionReport, ...] = ()
    partitions_without_commit: int = 0
    #: partitions with lag > 0 whose lag in seconds is unknown (possible markers not included)
    lag_seconds_unknown: int = 0
    error: str | None = None
    #: kind of max_lag_seconds: at_least when any partition's figure is only a lower bound
    max_lag_seconds_kind: str | None = None
    estimated: bool = False

    @property
    def lag_records(self) -> int:
        """Deprecated name of lag_offsets; liaison/demo.py still reads it."""
        return self.lag_offsets

    @property
    def max_lag_seconds_text(self) -> str:
        if self.max_lag_seconds is None or self.max_lag_seconds_kind is None:
            return "-"
        return Age(self.max_lag_seconds, 0.0, None, self.max_lag_seconds_kind).text()


@dataclass(frozen=True)
class Report:
    taken_at: float | None
    duration_s: float
    groups: tuple[GroupReport, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: snapshots in the window the statuses were judged on
    polls: int = 0
    error: str | None = None

    def group(self, name: str) -> GroupReport | None:
        return next((g for g in self.groups if g.group == name), None)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["taken_at_iso"] = (datetime.fromtimestamp(self.taken_at, timezone.utc).isoformat()
                               if self.taken_at is not None else None)
        for g, gr in zip(out["groups"], self.groups):
            g["partitions"] = list(g["partitions"])
            g["max_lag_seconds_text"] = gr.max_lag_seconds_text
            for p, pr in zip(g["partitions"], gr.partitions):
                p["lag_seconds_text"] = pr.lag_seconds_text
        out["groups"] = list(out["groups"])
        return out


# ---------------------------------------------------------------------------------------------- rules

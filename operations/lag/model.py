"""What one poll cycle observed: plain facts read from Kafka, no judgement (see `evaluate` for that).

One `Snapshot` per cycle; per group a `GroupObs`; per (group, topic, partition) a `PartitionObs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: How the first data record at or after the committed offset was looked up.
LOOKUP_SKIPPED = "skipped"  # not needed: no offset lag (end <= committed), or no commit / no end offset
LOOKUP_FOUND = "found"  # a committed data record at first_offset (< end), timestamp first_ts_ms
LOOKUP_EMPTY = "empty"  # no data record between committed and end: only transaction markers / aborted records
LOOKUP_UNKNOWN = "unknown"  # the read did not answer in time (lag in records is then the plain offset lag)


@dataclass(frozen=True)
class PartitionObs:
    topic: str
    partition: int
    #: The group's committed offset; None when the group has no commit for this partition (assigned only).
    committed: int | None
    #: End offset under read_committed: the last stable offset (LSO). None when it could not be read.
    end: int | None
    #: High watermark (read_uncommitted end), what Kafka's own consumer-group tool counts against.
    hwm: int | None = None
    lookup: str = LOOKUP_SKIPPED
    #: First committed data record at or after `committed` (only with lookup == found).
    first_offset: int | None = None
    first_ts_ms: int | None = None
    #: Why this partition could not be read (unknown topic, ...); None when fine.
    error: str | None = None
    #: Why the first record could not be read (lookup == unknown): not authorized, timed out, ...
    lookup_note: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class GroupObs:
    group: str
    #: Kafka's group state (STABLE, EMPTY, PREPARING_REBALANCE, DEAD, ...); None when not described.
    state: str | None = None
    #: Active members; None when unknown (describe failed).
    members: int | None = None
    partitions: dict[tuple[str, int], PartitionObs] = field(default_factory=dict)
    #: The group could not be read (describe / offset fetch failed, or it does not exist).
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    #: Epoch seconds at which end offsets were read (lag in seconds is measured against this instant).
    taken_at: float
    groups: dict[str, GroupObs] = field(default_factory=dict)
    #: The whole cycle failed (cluster unreachable, ...): no group could be read.
    error: str | None = None
    #: How long the cycle took, seconds.
    duration_s: float = 0.0

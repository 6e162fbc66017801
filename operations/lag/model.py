"""What one poll cycle observed: plain facts read from Kafka, no judgement (see `evaluate` for that).

One `Snapshot` per cycle; per group a `GroupObs`; per (group, topic, partition) a `PartitionObs`. Only
offsets and metadata: the monitor reads no record (its principal has no READ on any data topic).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    #: Why this partition could not be read (unknown topic, ...); None when fine.
    error: str | None = None
    #: The topic's id (changes when the topic is deleted and re-created); None when not described.
    topic_id: str | None = None

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


@dataclass(frozen=True)
class ConsumerMark:
    """A consumer's own figure for one partition (the forwarder may export it; nothing does yet): it committed
    `offset`, and the last record it processed before that offset has timestamp `last_record_ts_ms`. When
    `offset` equals the committed offset the monitor sees, now - that timestamp bounds from above how long the
    oldest unconsumed record has waited (it comes after the last processed one)."""

    offset: int
    last_record_ts_ms: int

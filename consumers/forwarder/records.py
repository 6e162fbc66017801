"""The records the pipeline takes in and gives out (no Kafka client: the service converts)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Headers", "InRecord", "OutRecord"]

Headers = list[tuple[str, bytes | None]]


@dataclass(slots=True)
class InRecord:
    """One consumed record, as the service read it from an internal topic or the hold topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    timestamp: int | None = None  # ms since the epoch; None when the broker gave none


@dataclass(slots=True)
class OutRecord:
    """One record to produce into the batch's transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    #: The record timestamp (ms): a partner record's is its envelope's; None: stamped by the producer when
    #: written (audits, dead letters, holds).
    timestamp: int | None = None

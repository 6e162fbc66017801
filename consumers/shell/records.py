"""The records the pipeline takes in and gives out (no Kafka client: the service converts)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError

from consumers.shell.faults import FATAL, ForwarderFault, classify, describe

__all__ = ["Headers", "InRecord", "OutRecord", "Poison", "PoisonSet", "in_records"]

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


@dataclass(frozen=True, slots=True)
class Poison:
    """An input (or hold record) whose outputs could not be produced: the service found it, the pipeline
    dead-letters it when the batch is done again. ``by_reference``: its dead letter with the original bytes
    failed too, so the next one carries their digest and size instead of the bytes."""

    stage: str  # encode | produce
    error: str
    by_reference: bool = False


#: (topic, partition, offset) of a consumed record -> why it cannot be produced
PoisonSet = dict[tuple[str, int, int], Poison]


def in_records(msgs: list, on_error=None) -> list[InRecord]:
    """Consumed messages -> the pipeline's InRecords; partition EOF events are skipped, other error events are
    passed to ``on_error(err)`` and skipped (librdkafka goes on by itself), a fatal one (``fatal()``, or the
    ``_FATAL`` event of a consumer that failed: see faults.classify) raises ForwarderFault."""
    out = []
    for m in msgs:
        err = m.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if err.fatal() or classify(err, "consumer") == FATAL:
                raise ForwarderFault(FATAL, "consumer", describe(err), err)
            if on_error is not None:
                on_error(err)
            continue
        ts_type, ts = m.timestamp()
        out.append(InRecord(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(),
                            ts if ts_type else None))
    return out

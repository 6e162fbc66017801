"""The changelog (liaison.ledger, compacted): the latest record of each key is that hour bucket's total.

Format (:mod:`operations.ledger.model`): key ``"<CODE>/<category>/<direction>/<hour_start_ms>"``, value JSON
``{"count": n, "bytes": b}``; a tombstone (null value) forgets the bucket. Written only by ``liaison ledger run``,
in transactions (read it ``read_committed``).

:func:`load_state` is what a reader needs (the ledger at its start, the forwarder for its pauses, ``liaison
ledger``): give it records, or a consumer of its own, and it returns the :class:`LedgerState`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from core.logs import get_logger
from core.topics import LEDGER_TOPIC
from operations.ledger.evaluate import LedgerState
from operations.ledger.model import LedgerFormatError

__all__ = ["apply_records", "load_state", "read_to_end"]

log = get_logger("operations.ledger")


def _kv(rec: Any) -> tuple[Any, Any] | None:
    """(key, value) of a consumed Message or a (key, value) pair; None for an error event."""
    if isinstance(rec, tuple):
        return rec
    if rec.error() is not None:
        return None
    return rec.key(), rec.value()


def apply_records(state: LedgerState, records: Iterable[Any]) -> int:
    """Apply changelog records (Messages or (key, value) pairs) to ``state`` in order; a record that is not
    the ledger's is logged and skipped. Returns the number applied. The forwarder may keep polling its
    changelog consumer and pass each batch here to follow the ledger."""
    n = 0
    for rec in records:
        kv = _kv(rec)
        if kv is None:
            continue
        key, value = kv
        if key is None:
            continue
        try:
            state.apply(key, value)
            n += 1
        except LedgerFormatError as e:
            log.warning("changelog record skipped", error=str(e))
    return n


def read_to_end(consumer, topic: str = LEDGER_TOPIC, timeout: float = 60.0,
                state: LedgerState | None = None) -> LedgerState:
    """Assign every partition of ``topic`` to ``consumer`` from the beginning and apply what it reads up to the
    end offsets taken now (the last stable offset: make the consumer ``read_committed``). The consumer is left
    assigned at the end, so the caller may keep polling it (and :func:`apply_records`) to follow the ledger.

    Use a consumer of its own, not one that is subscribed to a group's topics (its assignment is replaced).
    A partition counts as read when the consumer's position reaches its end or a partition EOF event comes
    (``enable.partition.eof``). Raises TimeoutError after ``timeout`` seconds."""
    state = state if state is not None else LedgerState()
    deadline = time.monotonic() + timeout
    md = consumer.list_topics(topic, timeout=max(1.0, min(10.0, timeout)))
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None:
        raise KafkaException(tmd.error if tmd is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    ends: dict[int, int] = {}
    for p in sorted(tmd.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        if high > low:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(tmd.partitions)])
    pending = set(ends)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: partitions {sorted(pending)} not read to their end in {timeout:.0f}s")
        msgs = consumer.consume(1000, 0.5)
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF and m.topic() == topic:
                    pending.discard(m.partition())
                elif err.fatal():
                    raise KafkaException(err)
                continue
            if m.topic() == topic and m.offset() >= ends.get(m.partition(), 0) - 1:
                pending.discard(m.partition())
        apply_records(state, msgs)
        if pending:
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
    return state


def load_state(source: Any, timeout: float = 60.0, topic: str = LEDGER_TOPIC) -> LedgerState:
    """The ledger's state from ``source``: a consumer (read from the beginning to the end, see
    :func:`read_to_end`) or an iterable of changelog records (Messages or (key, value) pairs, in offset order)."""
    if hasattr(source, "assign") and hasattr(source, "consume"):
        return read_to_end(source, topic, timeout)
    state = LedgerState()
    apply_records(state, source)
    return state

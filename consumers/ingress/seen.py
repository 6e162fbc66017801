"""The message ids the guard accepted from one partner: restored at start from liaison.ingress.seen, grown by
each committed batch.

liaison.ingress.seen is compacted and deleted after 8 days (deploy/topics.yaml): one record per accepted id, key
"<CODE>/<message id>", written in the transaction of the accepted record. At start the guard reads it from the
beginning to its end (read_committed; after init_transactions, so that a previous instance's open transaction is
aborted first and nothing committed is missed), keeping the keys of its partner. One guard per partner
(transactional.id liaison-ingress-<code>: a second instance fences the first) means no one else writes these
keys while it runs, so its set plus the ids it commits is exact.

Retention: a replay of an accepted record carries its label.created_at, which the time check refuses once it is
older than max_age_s (7 days by default, 30 at most); the seen id is kept 8 days after it was accepted, and it was
accepted at most max_future_s after its creation, so a replay is refused by one check or the other for ever when
max_age_s + max_future_s <= 8 days (the guard refuses to start otherwise: :func:`check_retention`). A message id
reused after 8 days with a new created_at is not detected.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from core import kafka
from core.topics import SEEN_TOPIC

__all__ = ["SEEN_RETENTION_S", "check_retention", "restore_seen"]

#: liaison.ingress.seen's retention.ms (deploy/topics.yaml), in seconds
SEEN_RETENTION_S = 8 * 86_400


def check_retention(max_age_s: int, max_future_s: int, retention_s: int = SEEN_RETENTION_S) -> None:
    if max_age_s + max_future_s > retention_s:
        raise ValueError(f"inbound max_age_s + max_future_s ({max_age_s + max_future_s} s) exceed the retention of "
                         f"{SEEN_TOPIC} ({retention_s} s): a replay could pass both the time and the replay check")


def restore_seen(partner: str, settings=None, principal: str | None = None, timeout: float = 120.0,
                 conf: dict | None = None) -> set[str]:
    """Every message id of ``partner`` on liaison.ingress.seen up to its end now (tombstones remove one)."""
    prefix = f"{partner.upper()}/"
    c = kafka.consumer(f"liaison-ingress-{partner.lower()}-seen", {
        "isolation.level": "read_committed", "enable.partition.eof": True, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", **(conf or {})}, settings, principal=principal)
    ids: set[str] = set()
    try:
        md = c.list_topics(SEEN_TOPIC, timeout=30)
        meta = md.topics.get(SEEN_TOPIC)
        if meta is None or meta.error is not None:
            raise RuntimeError(f"{SEEN_TOPIC} is not readable: {meta.error if meta else 'no such topic'}")
        parts = sorted(meta.partitions)
        c.assign([TopicPartition(SEEN_TOPIC, p, OFFSET_BEGINNING) for p in parts])  # no group offsets: all of it
        left = set(parts)
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{SEEN_TOPIC}: {len(left)} partition(s) not read to the end in {timeout:.0f} s")
            for m in c.consume(1000, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        left.discard(m.partition())
                        continue
                    if err.fatal():
                        raise RuntimeError(f"{SEEN_TOPIC}: {err.name()}: {err.str()}")
                    continue
                key = (m.key() or b"").decode(errors="replace")
                if not key.startswith(prefix):
                    continue
                mid = key[len(prefix):]
                if m.value() is None:
                    ids.discard(mid)
                    continue
                try:
                    ids.add(str(uuid.UUID(mid)))
                except ValueError:
                    continue
    finally:
        c.close()
    return ids

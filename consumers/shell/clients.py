"""What every consumer service does with its two clients besides the batch: rewind the consumer to a batch it
must consume again, and close both, bounded (a consumer whose brokers are gone may take long to close)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from confluent_kafka import TopicPartition

__all__ = ["CONSUMER_CLOSE_S", "INIT_TRANSACTIONS_S", "close_clients", "rewind"]

#: seconds init_transactions() may take at start (a coordinator loading after a broker restart), and the
#: consumer's close at stop
INIT_TRANSACTIONS_S, CONSUMER_CLOSE_S = 60.0, 15.0


def rewind(consumer, msgs: Iterable) -> None:
    """Seek each partition of ``msgs`` (error events aside) back to its first offset among them."""
    first: dict[tuple[str, int], int] = {}
    for m in msgs:
        if m.error() is None:
            k = (m.topic(), m.partition())
            first[k] = min(first.get(k, m.offset()), m.offset())
    for (t, p), o in first.items():
        consumer.seek(TopicPartition(t, p, o))


def close_clients(closers: dict[str, Callable[[], None]], producer, producer_stuck: bool, log) -> None:
    """Run ``closers`` (name -> close(): the consumer first, then any other consumer the service keeps) on a
    thread given CONSUMER_CLOSE_S, then flush the producer unless one of its calls never returned (leave it
    alone: the next instance's init_transactions fences it). A close or flush that fails (a client in a fatal
    state refuses it) is logged, never raised: there is nothing more to send anyway."""

    def close_all() -> None:
        for name, close in closers.items():
            try:
                close()
            except Exception as e:  # noqa: BLE001 - a fatally failed consumer refuses its close
                log.warning(f"{name} close failed", error=str(e))

    closing = threading.Thread(target=close_all, daemon=True)
    closing.start()
    closing.join(CONSUMER_CLOSE_S)
    if producer_stuck:
        return
    try:
        producer.flush(10)
    except Exception as e:  # noqa: BLE001 - a producer in a fatal state
        log.warning("producer flush at close failed", error=str(e))

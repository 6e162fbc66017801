"""Signing in against the broker, and one reader per session. Kafka I/O.

:func:`sign_in` opens a consumer with the credentials the user typed and asks the broker for metadata: the broker
refuses a wrong password (SASL authentication failure), so the console never checks a password itself and holds
no password list. The consumer that signed in is the session's reader: :class:`FeedReader` for an officer or a
component (the principal's feed topics, read_committed, positioned by time, never committing: the console is a
viewer), :class:`~console.operations.OperationsReader` for operations.

A reader keeps its items in its own ring buffer, numbered from 1; the page asks for the items after the last
number it has. No reader is shared between sessions, and no record read by one principal's consumer is put in
another's buffer.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext

from core import kafka, serde
from core.logs import get_logger
from core.settings import Settings
from console.principals import Principal
from console.precision import Grids
from console.view import item_of

__all__ = ["SignInFailed", "SignedIn", "sign_in", "FeedReader", "Buffer"]

log = get_logger("console")
_AUTH = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


class SignInFailed(Exception):
    """The broker refused the credentials, or could not be asked (the message says which)."""


class SignedIn:
    """A principal's connection: the settings that authenticate as it and its signed-in consumer."""

    def __init__(self, principal: Principal, settings: Settings, consumer: Consumer):
        self.principal = principal
        self.settings = settings
        self.consumer = consumer

    def registry(self) -> SchemaRegistryClient:
        """A registry client with the principal's own credentials (the registry gateway checks them too)."""
        return SchemaRegistryClient(self.settings.registry_client_config(self.principal.name))


def sign_in(settings: Settings, principal: Principal, password: str, timeout: float = 15.0) -> SignedIn:
    """Authenticate ``principal`` with ``password`` at the broker; raises :class:`SignInFailed`."""
    sec = settings.security()
    if sec is None or "SASL" not in sec.protocol:
        raise SignInFailed("the servers are not secured (no SASL): the console signs nobody in to them")
    own = settings.model_copy(update={"sasl_username": principal.name, "sasl_password": password})
    failure: list[KafkaError] = []

    def on_error(err: KafkaError) -> None:
        if err.code() in _AUTH:
            failure.append(err)

    conf = kafka.client_config({**kafka.CONSUMER_DEFAULTS, "group.id": principal.client_group,
                                "isolation.level": "read_committed", "enable.auto.commit": False,
                                "enable.partition.eof": False, "error_cb": on_error, "log_level": 0},
                               settings=own, principal=principal.name)
    consumer = Consumer(conf)

    def refused() -> None:
        if failure:
            raise SignInFailed(f"the broker refused the credentials of {principal.name}")

    try:
        kafka.log_in(consumer, timeout, refused)
        consumer.poll(0)  # an authentication failure reported with the first answer
        refused()
    except SignInFailed:
        consumer.close()
        raise
    except KafkaException as e:
        consumer.close()
        raise SignInFailed(f"cannot reach Kafka as {principal.name}: {e.args[0].str()}") from None
    log.info("signed in", principal=principal.name)
    return SignedIn(principal, own, consumer)


class Buffer:
    """The last ``capacity`` items of one session, numbered from 1 in arrival order (thread-safe)."""

    def __init__(self, capacity: int):
        self._items: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.last = 0

    def append(self, item: Any) -> int:
        with self._lock:
            self.last += 1
            self._items.append((self.last, item))
            return self.last

    def after(self, seq: int, limit: int = 500) -> list[tuple[int, Any]]:
        with self._lock:
            if not self._items or self._items[-1][0] <= seq:
                return []
            start = max(0, seq + 1 - self._items[0][0])  # numbers are consecutive: its index, no comparison
            return list(itertools.islice(self._items, start, start + limit))


def position_by_time(consumer: Consumer, parts: list[TopicPartition], since_ms: int | None) -> list[TopicPartition]:
    if since_ms is None:
        return [TopicPartition(p.topic, p.partition, OFFSET_BEGINNING) for p in parts]
    return kafka.offsets_at(consumer, parts, since_ms)


class FeedReader:
    """An officer's or a component's records: every topic of its feed prefix the broker lets it see, from
    ``since_s`` seconds ago, decoded with the principal's registry credentials, as :func:`console.view.item_of`
    items. Topics that appear later are read from their beginning (checked every ``refresh_s``)."""

    def __init__(self, signed: SignedIn, grids: Grids, since_s: float, capacity: int = 5000,
                 refresh_s: float = 15.0, clock: Callable[[], float] = time.time):
        self.signed = signed
        self.principal = signed.principal
        self.grids = grids
        self.since_s = since_s
        self.refresh_s = refresh_s
        self.clock = clock
        self.buffer = Buffer(capacity)
        self.topics: set[str] = set()
        self.errors = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"console-feed-{self.principal.name}", daemon=True)

    def start(self) -> FeedReader:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(10)

    def _assign_new(self, consumer: Consumer, first: bool) -> None:
        md = consumer.list_topics(timeout=10)
        prefix = self.principal.feed_prefix or "\0"
        fresh = sorted(t for t, tm in md.topics.items() if t.startswith(prefix) and tm.error is None
                       and t not in self.topics)
        if not fresh:
            return
        parts = [TopicPartition(t, p) for t in fresh for p in md.topics[t].partitions]
        since = int((self.clock() - self.since_s) * 1000) if first else None
        consumer.incremental_assign(position_by_time(consumer, parts, since))
        self.topics.update(fresh)
        log.info("console feed assigned", principal=self.principal.name, topics=len(self.topics),
                 partitions=len(parts))

    def _run(self) -> None:
        consumer = self.signed.consumer
        deser = serde.avro_deserializer(client=self.signed.registry())
        refreshed = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - refreshed >= self.refresh_s:
                    try:
                        self._assign_new(consumer, first=refreshed == 0.0)
                        refreshed = now
                    except KafkaException as e:
                        self.error = e.args[0].str()
                        refreshed = now - self.refresh_s + 2
                for msg in consumer.consume(200, 0.25):
                    self._take(msg, deser)
        except Exception as e:  # noqa: BLE001 - the session shows the error; the server goes on
            self.error = f"{type(e).__name__}: {e}"
            log.error("console feed stopped", principal=self.principal.name, error=self.error)
        finally:
            consumer.close()

    def _take(self, msg, deser) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                self.error = err.str()
                log.warning("console feed error", principal=self.principal.name, topic=msg.topic(), error=err.str())
            return
        try:
            value = deser(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            item = item_of(msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1], msg.key(), msg.headers(),
                           value, self.grids)
        except Exception as e:  # noqa: BLE001 - one bad record is shown as such, the feed goes on
            self.errors += 1
            item = {"id": f"{msg.topic()}/{msg.partition()}/{msg.offset()}", "topic": msg.topic(),
                    "partition": msg.partition(), "offset": msg.offset(), "timestamp": msg.timestamp()[1],
                    "type": "?", "error": f"undecodable record: {type(e).__name__}: {e}"[:300], "shapes": []}
            log.warning("console undecodable record", principal=self.principal.name, topic=msg.topic(),
                        partition=msg.partition(), offset=msg.offset(), error=item["error"])
        self.buffer.append(item)

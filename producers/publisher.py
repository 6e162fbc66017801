"""Publish typed liaison messages: topic from the type, key from the entity, headers, registry framing.

    with Publisher() as pub:
        pub.publish(model)          # raises on a full-queue timeout or a broken producer
    # leaving the block flushes and raises PublishError if any record was not delivered

    with Publisher(transactional=True) as pub:   # `liaison publish`: all or nothing
        for model in models:
            pub.publish(model)
    # leaving the block flushes and commits; any failure (or an exception in the block) aborts: nothing is
    # visible to read_committed consumers (the forwarder)

Idempotent producer with acks=all (core.kafka); delivery failures are collected from the delivery
callbacks and surfaced by `flush()`, never swallowed. Only failed deliveries are reported
(``delivery.report.only.error``: no Python call per delivered record); `delivered` counts, per type, what a flush
that emptied the queue confirmed: every record produced since the last flush but those reported failed. A record whose framed value is above
:data:`schemas.models.MAX_RECORD_BYTES` (64 KiB) is refused before it is produced.

Each component publishes as its own principal (producer-naval, producer-air, producer-intel: the component is
the one of the record's internal topic), one producer per principal, created on first use; `principal=` makes
every record go through one principal instead. Against PLAINTEXT servers one producer serves every component.
An internal domain a service owns is published as that service (:data:`SERVICE_DOMAINS`): deconfliction alerts
(liaison.internal.deconfliction.*, whatever label.originator says, e.g. air.deconfliction) as `deconflict`, under
its transactional ids (liaison-deconflict-publish-<12 hex>); producer-air's prefix never covers them.

Transactional mode (`transactional=True`): each producer gets its own transactional id,
``liaison-publish-<component>-<12 hex>`` (:data:`TRANSACTIONAL_ID_PREFIX`; the component of the first topic
it serves; deploy/acls.yaml lets producer-<component> use the prefix ``liaison-publish-<component>-``), a
fresh one per Publisher so concurrent publishes never fence each other. A transaction begins on a producer's
first record; :meth:`Publisher.commit` flushes and commits, :meth:`Publisher.abort` aborts. With one
producer (one component, or PLAINTEXT servers) commit is atomic. With several, the commits are sequential,
not atomic across producers: a failure before the first commit aborts them all (nothing published), a
failure after some committed aborts the rest and the error names which committed. A process killed
mid-transaction leaves it to the coordinator, which aborts it after ``transaction.timeout.ms``
(:data:`TRANSACTION_TIMEOUT_MS`); until then read_committed readers of those partitions wait.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from confluent_kafka import KafkaError, KafkaException
from pydantic import BaseModel

import schemas

from core.topics import TOPIC_PREFIX, topic_for
from core import kafka, serde
from core.settings import Settings
from schemas.models import MAX_RECORD_BYTES, MODELS, model_name

_NAMES = {cls: name for name, cls in MODELS.items()}

#: Transactional ids of `liaison publish`: liaison-publish-<component>-<12 hex>.
TRANSACTIONAL_ID_PREFIX = "liaison-publish-"
#: How long a transaction may stay open before the coordinator aborts it (librdkafka's default is 60 s; the
#: broker caps it at transaction.max.timeout.ms, 15 min by default).
TRANSACTION_TIMEOUT_MS = 120_000
#: Seconds to wait for init_transactions / commit / abort.
TXN_CALL_TIMEOUT = 60.0


#: Internal domains published by a service, not by a component's producer: domain of the topic
#: (liaison.internal.<domain>.<type>) -> (principal, its transactional id prefix in deploy/acls.yaml).
SERVICE_DOMAINS: dict[str, tuple[str, str]] = {"deconfliction": ("deconflict", "liaison-deconflict-")}


def producer_principal_of(component: str) -> str:
    """The principal that publishes on liaison.internal.<component>.*: producer-<component>, or the service's."""
    service = SERVICE_DOMAINS.get(component)
    return service[0] if service else kafka.producer_principal(component)


def transactional_id(component: str | None) -> str:
    """A fresh transactional id for a component's producer: liaison-publish-air-3fa2c1d09b7e (a service's domain:
    liaison-deconflict-publish-3fa2c1d09b7e)."""
    service = SERVICE_DOMAINS.get(component or "")
    if service:
        return f"{service[1]}publish-{uuid.uuid4().hex[:12]}"
    return f"{TRANSACTIONAL_ID_PREFIX}{component or 'any'}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class DeliveryFailure:
    topic: str
    key: str
    message_id: str
    error: str

    def __str__(self) -> str:
        if self.topic == "*":  # not about one record (a transaction, the flush)
            return self.error
        return f"{self.topic} key={self.key} message_id={self.message_id}: {self.error}"


class PublishError(RuntimeError):
    def __init__(self, failures: list[DeliveryFailure]):
        self.failures = failures
        head = "; ".join(str(f) for f in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} record(s) not delivered: {head}{more}")


def component_of(topic: str, type_name: str | None = None) -> str | None:
    """naval / air / intel from liaison.internal.<component>.<type> (or from the type's own topic)."""
    if not topic.startswith(TOPIC_PREFIX + ".") and type_name in schemas.MESSAGE_TYPES:
        topic = topic_for(type_name)
    parts = topic.split(".")
    return parts[2] if topic.startswith(TOPIC_PREFIX + ".") and len(parts) > 3 else None


ProducerFactory = Callable[[dict, "str | None"], Any]


class Publisher:
    """`transactional=True`: everything published goes into one transaction per producer (see the module doc).
    `producer_factory(overrides, principal)` makes the producers (default :func:`core.kafka.producer`)."""

    def __init__(self, settings: Settings | None = None, producer_conf: dict | None = None, client=None,
                 principal: str | None = None, transactional: bool = False,
                 producer_factory: ProducerFactory | None = None):
        self._settings = settings
        self._producer_conf = producer_conf
        self._principal = principal
        self._transactional = transactional
        self._factory = producer_factory or (
            lambda overrides, who: kafka.producer(overrides, self._settings, principal=who))
        self._producers: dict[str | None, object] = {}  # effective principal -> Producer
        self._txn_ids: dict[str | None, str] = {}  # effective principal -> transactional id
        self._open: set[str | None] = set()  # effective principals with an open transaction
        self._by_topic: dict[str, object] = {}  # topic -> Producer (in transactional mode: with an open one)
        self._types: dict[str, str] = {}  # topic -> the message type its records are counted as
        self.committed: Counter[str] = Counter()
        self._client = client or serde.registry_client(settings)
        self._encoders: dict[str, serde.Encoder] = {}
        self._failures: list[DeliveryFailure] = []
        self.sent: Counter[str] = Counter()
        self._since_poll = 0
        self._sent_at_flush: Counter[str] = Counter()  # `sent` when the last flush emptied the queue
        self.delivered: Counter[str] = Counter()
        #: per message class: (type name, encoder, topic, key path, ("type", name) header)
        self._by_class: dict[type, tuple[str, serde.Encoder, str, tuple[str, ...], tuple[str, bytes]]] = {}

    def encoder(self, name: str) -> serde.Encoder:
        enc = self._encoders.get(name)
        if enc is None:
            enc = serde.lookup_encoder(serde.value_subject(topic_for(name)), schemas.schema_str(name),
                                      self._client)
            self._encoders[name] = enc
        return enc

    def publish(self, model: BaseModel) -> None:
        known = self._by_class.get(type(model))
        if known is None:
            known = self._class_of(model)
        name, enc, topic, path, type_header = known
        label = model.label
        mid = str(label.message_id)
        headers = [("message_id", mid.encode()), type_header, ("originator", label.originator.encode()),
                   ("schema_id", enc.schema_id_bytes)]
        key = model
        try:  # the key field, as schemas.key_of finds it, without its checks when it is a non-empty string
            for part in path:
                key = getattr(key, part)
        except AttributeError:
            key = None
        if key.__class__ is not str or not key:
            key = schemas.key_of(name, model)  # formats a UUID; names what is wrong (missing, null, empty)
        self.produce_raw(topic, key, enc.encode_model(model), headers, name, mid)

    def _class_of(self, model: BaseModel) -> tuple:
        """What every record of the model's class shares, found once (the type's first record)."""
        name = _NAMES.get(type(model)) or model_name(model)
        schemas.key_of(name, model)  # a key field the model does not have fails here, by name
        known = (name, self.encoder(name), topic_for(name), tuple(schemas.key_field(name).split(".")),
                 ("type", name.encode()))
        if type(model) in _NAMES:
            self._by_class[type(model)] = known
        return known

    def _producer_for(self, topic: str, type_name: str | None = None):
        """The producer of the component principal that owns `topic` (created on first use)."""
        component = component_of(topic, type_name)
        principal = self._principal or (producer_principal_of(component) if component else None)
        who = kafka.effective_principal(principal, self._settings)
        p = self._producers.get(who)
        if p is None:
            conf = {"delivery.report.only.error": True, **(self._producer_conf or {})}
            if self._transactional:
                txn_id = self._txn_ids[who] = transactional_id(component)
                conf = {"transaction.timeout.ms": TRANSACTION_TIMEOUT_MS, **conf, "transactional.id": txn_id}
            p = self._factory(conf, principal)
            if self._transactional:
                self._txn_call(who, "init_transactions", p.init_transactions, TXN_CALL_TIMEOUT)
            self._producers[who] = p
        if self._transactional and who not in self._open:
            self._txn_call(who, "begin_transaction", p.begin_transaction)
            self._open.add(who)
        self._by_topic[topic] = p
        return p

    def _txn_call(self, who: str | None, what: str, call, *args) -> None:
        try:
            call(*args)
        except KafkaException as e:
            err: KafkaError = e.args[0]
            raise PublishError([DeliveryFailure("*", "*", "*", f"{what} as {who or 'the client'} "
                                                               f"(transactional id {self._txn_ids.get(who)}) "
                                                               f"failed: {err.str()}")]) from e

    def _on_delivery(self, err, msg) -> None:
        """A failed delivery's report (one bound method for every record: no closure per record); its key and
        message id from the message itself. Delivered records are counted by :meth:`flush`."""
        if err is None:
            return
        mid = next((v.decode(errors="replace") for k, v in msg.headers() or () if k == "message_id"), "?")
        self._failures.append(DeliveryFailure(msg.topic(), (msg.key() or b"").decode(errors="replace"), mid,
                                              str(err)))

    def produce_raw(self, topic: str, key: str, value: bytes, headers, type_name: str, message_id: str) -> None:
        """``headers`` must carry the record's ``message_id`` (delivery failures name it)."""
        if len(value) > MAX_RECORD_BYTES:
            raise PublishError([DeliveryFailure(topic, key, message_id, f"record is {len(value)} bytes encoded, "
                                                                        f"above the {MAX_RECORD_BYTES}-byte bound")])
        producer = self._by_topic.get(topic)
        if producer is None:
            producer = self._producer_for(topic, type_name)
            self._types[topic] = type_name
        while True:
            try:
                producer.produce(topic, value=value, key=key.encode(), headers=headers, on_delivery=self._on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: serve callbacks, then retry
            except KafkaException as e:
                err: KafkaError = e.args[0]
                raise PublishError([DeliveryFailure(topic, key, message_id, err.str())]) from e
        self.sent[type_name] += 1
        self._since_poll += 1
        if self._since_poll >= 256:  # serve delivery callbacks regularly, not per record
            self._since_poll = 0
            producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = sum(p.flush(timeout) for p in self._producers.values())
        if remaining:
            self._failures.append(DeliveryFailure("*", "*", "*", f"{remaining} record(s) still queued after "
                                                                  f"{timeout:.0f}s flush"))
        else:  # every record produced since the last such flush was delivered, but those reported failed
            done = self.sent - self._sent_at_flush
            done.subtract(self._types.get(f.topic, "?") for f in self._failures)
            self.delivered.update(+done)
            self._sent_at_flush = self.sent.copy()
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError(failures)

    def commit(self, timeout: float = 60.0) -> None:
        """Transactional mode: flush, then commit every open transaction; any failure aborts what is not
        committed yet and raises PublishError (naming what was committed, if anything). Non-transactional:
        :meth:`flush`. `committed` counts, per type, the records of the committed transactions."""
        if not self._transactional:
            self.flush(timeout)
            return
        try:
            self.flush(timeout)
        except PublishError:
            self.abort()
            raise
        done: list[str] = []
        for who in list(self._open):
            try:
                self._commit_one(who, timeout)
            except PublishError as e:
                self.abort()
                if done:
                    e.failures.append(DeliveryFailure("*", "*", "*", "NOT ATOMIC: already committed as "
                                                                      + ", ".join(map(str, done))))
                    e.args = (f"{e.args[0]}; already committed as {', '.join(map(str, done))}",)
                raise
            self._open.discard(who)
            done.append(str(who))
        self._by_topic.clear()  # the next record begins a new transaction
        self.committed.update(self.delivered)
        self.delivered.clear()

    def _commit_one(self, who: str | None, timeout: float) -> None:
        producer = self._producers[who]
        for attempt in range(3):
            try:
                producer.commit_transaction(timeout)
                return
            except KafkaException as e:
                err: KafkaError = e.args[0]
                if err.retriable() and attempt < 2:
                    continue
                raise PublishError([DeliveryFailure("*", "*", "*", f"commit as {who or 'the client'} (transactional "
                                                                   f"id {self._txn_ids.get(who)}) failed: "
                                                                   f"{err.str()}")]) from e

    def abort(self, timeout: float = TXN_CALL_TIMEOUT) -> None:
        """Abort every open transaction (errors while aborting are ignored: an unfinished transaction is
        aborted by the coordinator after transaction.timeout.ms, and never becomes visible)."""
        for who in list(self._open):
            try:
                self._producers[who].abort_transaction(timeout)
            except KafkaException:
                pass
            self._open.discard(who)
        self._by_topic.clear()
        self._failures.clear()
        self.delivered.clear()
        self._sent_at_flush = self.sent.copy()  # what was aborted is never counted delivered by a later flush

    def close(self) -> None:
        self.commit() if self._transactional else self.flush()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._transactional:
            self.abort()
        else:
            for p in self._producers.values():
                p.flush(10)

"""Publish typed liaison messages: topic from the type, key from the entity, headers, registry framing.

    with Publisher() as pub:
        pub.publish(model)          # raises on a full-queue timeout or a broken producer
    # leaving the block flushes and raises PublishError if any record was not delivered

Idempotent producer with acks=all (core.kafka); delivery failures are collected from the delivery
callbacks and surfaced by `flush()`, never swallowed.

Each component publishes as its own principal (producer-naval, producer-air, producer-intel: the component is
the one of the record's internal topic), one producer per principal, created on first use; `principal=` makes
every record go through one principal instead. Against PLAINTEXT servers one producer serves every component.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from pydantic import BaseModel

import schemas

from core.topics import TOPIC_PREFIX, topic_for
from core import kafka, serde
from core.settings import Settings
from schemas.models import MODELS, model_name, to_avro

_NAMES = {cls: name for name, cls in MODELS.items()}


@dataclass(frozen=True)
class DeliveryFailure:
    topic: str
    key: str
    message_id: str
    error: str

    def __str__(self) -> str:
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


class Publisher:
    def __init__(self, settings: Settings | None = None, producer_conf: dict | None = None, client=None,
                 principal: str | None = None):
        self._settings = settings
        self._producer_conf = producer_conf
        self._principal = principal
        self._producers: dict[str | None, object] = {}  # effective principal -> Producer
        self._by_topic: dict[str, object] = {}  # topic -> Producer
        self._client = client or serde.registry_client(settings)
        self._encoders: dict[str, serde.Encoder] = {}
        self._failures: list[DeliveryFailure] = []
        self.sent: Counter[str] = Counter()
        self._since_poll = 0
        self.delivered: Counter[str] = Counter()

    def encoder(self, name: str) -> serde.Encoder:
        enc = self._encoders.get(name)
        if enc is None:
            enc = serde.lookup_encoder(serde.value_subject(topic_for(name)), schemas.schema_str(name),
                                      self._client)
            self._encoders[name] = enc
        return enc

    def publish(self, model: BaseModel) -> None:
        cls = type(model)
        name = _NAMES.get(cls) or model_name(model)
        enc = self._encoders.get(name) or self.encoder(name)
        label = model.label
        mid = str(label.message_id)
        headers = [("message_id", mid.encode()), ("type", name.encode()), ("originator", label.originator.encode()),
                   ("schema_id", enc.schema_id_bytes)]
        self.produce_raw(topic_for(name), schemas.key_of(name, model), enc.encode(to_avro(model)), headers,
                         name, mid)

    def _producer_for(self, topic: str, type_name: str | None = None):
        """The producer of the component principal that owns `topic` (created on first use)."""
        component = component_of(topic, type_name)
        principal = self._principal or (kafka.producer_principal(component) if component else None)
        who = kafka.effective_principal(principal, self._settings)
        p = self._producers.get(who)
        if p is None:
            p = self._producers[who] = kafka.producer(self._producer_conf, self._settings, principal=principal)
        self._by_topic[topic] = p
        return p

    def produce_raw(self, topic: str, key: str, value: bytes, headers, type_name: str, message_id: str) -> None:
        failures, delivered = self._failures, self.delivered
        producer = self._by_topic.get(topic) or self._producer_for(topic, type_name)

        def on_delivery(err, msg):
            if err is not None:
                failures.append(DeliveryFailure(topic, key, message_id, str(err)))
            else:
                delivered[type_name] += 1

        while True:
            try:
                producer.produce(topic, value=value, key=key.encode(), headers=headers, on_delivery=on_delivery)
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
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError(failures)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
        else:
            for p in self._producers.values():
                p.flush(10)

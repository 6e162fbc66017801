"""Kafka client construction, config as plain dicts in librdkafka's vocabulary.

Every client of the project is made here, so connection and security settings live in one place.

Principals: each client authenticates as one principal (a SASL/SCRAM user of the broker) when the servers are
secured. Callers name it (`principal="forwarder"`); otherwise LIAISON_PRINCIPAL, default `admin` (tooling).
The services use theirs: the forwarder `forwarder`, each component's publisher `producer-<component>`
(:func:`producer_principal`), the lag monitor `lag-monitor`, a liaison officer `partner-<code>`
(:func:`partner_principal`). Against PLAINTEXT servers the principal is ignored.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable

from confluent_kafka import OFFSET_END, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from core.settings import Settings, get_settings

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.size": 262144,
}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "isolation.level": "read_committed",
}


class _QuietRdkafkaLogger(logging.Logger):
    """librdkafka's own log lines, each distinct message at most once a minute (a down broker otherwise
    prints a line every 50 ms)."""

    def __init__(self) -> None:
        super().__init__("librdkafka", logging.WARNING)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.addHandler(handler)
        self._seen: dict[str, float] = {}

    def log(self, level, msg, *args, **kwargs):  # noqa: D401 - librdkafka calls log(level, msg)
        text = (msg % args) if args else str(msg)
        key = text.split("]: ", 1)[-1][:120]
        now = time.monotonic()
        if now - self._seen.get(key, -1e9) < 60:
            return
        self._seen[key] = now
        super().log(level, text)


_RDKAFKA_LOGGER = _QuietRdkafkaLogger()


#: Principals of the services (SCRAM users created by `liaison infra up`, ACLs in deploy/acls.yaml).
ADMIN = "admin"
FORWARDER = "forwarder"
LAG_MONITOR = "lag-monitor"
COMPONENTS = ("naval", "air", "intel")


def producer_principal(component: str) -> str:
    """The principal a component's producer publishes as: producer-naval, producer-air, producer-intel."""
    return f"producer-{component}"


def partner_principal(partner: str) -> str:
    """The principal of a partner's liaison officers: partner-rus, partner-usa."""
    return f"partner-{partner.lower()}"


def component_principal(component: str) -> str:
    """The principal of one of our components as a recipient: component-naval, component-air, component-intel."""
    return f"component-{component.lower()}"


def effective_principal(principal: str | None = None, settings: Settings | None = None) -> str | None:
    """The principal a client would authenticate as, or None when the connection is not authenticated."""
    settings = settings or get_settings()
    sec = settings.security()
    if sec is None or "SASL" not in sec.protocol:
        return None
    return sec.username if (sec.username and sec.password) else (principal or settings.principal)


def security_config(principal: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """security.protocol, sasl.* and ssl.ca.location for `principal` (empty against PLAINTEXT servers)."""
    settings = settings or get_settings()
    sec = settings.security()
    return sec.client_config(principal or settings.principal) if sec else {}


def client_config(overrides: dict[str, Any] | None = None, settings: Settings | None = None,
                  principal: str | None = None) -> dict[str, Any]:
    """bootstrap.servers, the security settings for `principal` (default LIAISON_PRINCIPAL, `admin`), the quiet
    logger, then `overrides`."""
    settings = settings or get_settings()
    return {"bootstrap.servers": settings.kafka_bootstrap(), "logger": _RDKAFKA_LOGGER,
            **security_config(principal, settings), **(overrides or {})}


def admin(overrides: dict[str, Any] | None = None, settings: Settings | None = None,
          principal: str | None = None) -> AdminClient:
    return AdminClient(client_config(overrides, settings, principal))


def producer(overrides: dict[str, Any] | None = None, settings: Settings | None = None,
             principal: str | None = None) -> Producer:
    """Idempotent, acks=all, lz4, batched; `overrides` wins."""
    return Producer(client_config({**PRODUCER_DEFAULTS, **(overrides or {})}, settings, principal))


def consumer(group_id: str, overrides: dict[str, Any] | None = None, settings: Settings | None = None,
             principal: str | None = None) -> Consumer:
    """Manual commits, read_committed, earliest; `overrides` wins."""
    return Consumer(client_config({**CONSUMER_DEFAULTS, "group.id": group_id, **(overrides or {})}, settings,
                                  principal))


#: Seconds a batch of a consume-transform-produce service waits for more records after its first one (Kafka
#: Streams' exactly-once commit.interval.ms is 100 ms). Behind, a batch fills at once; at a paced input this bounds
#: what a record waits before its batch (and transaction) begins.
BATCH_LINGER_S = 0.02


def consume_batch(consumer: Consumer, max_records: int, timeout: float, linger: float = BATCH_LINGER_S) -> list:
    """Up to `max_records` messages: the first waited for up to `timeout`, the rest for up to `linger` after it.
    librdkafka's consume(n, t) waits for all n or for t: at a low rate each record would wait the whole `timeout`
    for its batch. Behind, both calls return at once with what is already fetched."""
    msgs = consumer.consume(1, timeout)
    if msgs and max_records > 1:
        msgs += consumer.consume(max_records - 1, linger)
    return msgs


def log_in(client: Consumer | Producer, timeout: float, refused: Callable[[], None]) -> None:
    """Ask for metadata until the broker answers; ``refused`` raises once the client's ``error_cb`` has seen an
    authentication failure (served by the poll between two tries), so a wrong password is reported within a second
    or two instead of after ``timeout``. Past ``timeout`` the last KafkaException is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_topics(timeout=1)
            return
        except KafkaException:
            client.poll(0)
            refused()
            if time.monotonic() >= deadline:
                raise


def offsets_at(consumer: Consumer, parts: list[TopicPartition], at_ms: int, timeout: float = 15.0
               ) -> list[TopicPartition]:
    """``parts`` positioned at the first record whose timestamp is >= ``at_ms`` (the broker's time index), or at
    the end where no record is that recent."""
    found = consumer.offsets_for_times([TopicPartition(p.topic, p.partition, at_ms) for p in parts], timeout=timeout)
    return [TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else OFFSET_END) for p in found]

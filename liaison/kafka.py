"""Kafka client construction, config as plain dicts in librdkafka's vocabulary.

Every client of the project is made here, so connection and security settings live in one place.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from liaison.settings import Settings, get_settings

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


def client_config(overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    return {"bootstrap.servers": settings.kafka_bootstrap(), "logger": _RDKAFKA_LOGGER, **(overrides or {})}


def admin(overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> AdminClient:
    return AdminClient(client_config(overrides, settings))


def producer(overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> Producer:
    """Idempotent, acks=all, lz4, batched; `overrides` wins."""
    return Producer(client_config({**PRODUCER_DEFAULTS, **(overrides or {})}, settings))


def consumer(group_id: str, overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> Consumer:
    """Manual commits, read_committed, earliest; `overrides` wins."""
    return Consumer(client_config({**CONSUMER_DEFAULTS, "group.id": group_id, **(overrides or {})}, settings))

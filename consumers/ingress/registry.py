"""The writer schemas a partner may use: the versions registered under each inbound subject, and no other id.

    load(subjects)        at start: every version of every inbound subject of the partner (ids and schema texts);
                          a subject with no version is a configuration error (``liaison schemas register``)
    writer(subject, id)   the parsed writer of ``id`` when it is a version of ``subject``; an id not cached makes
                          the subject's version list be asked again (a version registered since the start), at
                          most once per NEGATIVE_TTL for the same id; then an id that is not a version of the
                          subject is refused (:class:`SchemaRefused`: the ``schema`` check), whatever the registry
                          holds under other subjects
    no answer             :class:`~consumers.shell.codec.RegistryUnavailable` (the partition waits, with the
                          forwarder's backoff; a record is never quarantined because the registry is away)

Message ids are ``{"type": "string", "logicalType": "uuid"}`` on the wire; the guard reads them as plain strings
(:func:`plain_uuids` on writer and reader) so that the ``label`` check, not the decoder, says what is wrong with
one. No Kafka; the registry client is handed in (a fake in the unit tests).
"""

from __future__ import annotations

import json
import time
from typing import Any

import fastavro
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers.shell.codec import RegistryBackoff, RegistryUnavailable

__all__ = ["InboundSchemas", "MissingSubject", "SchemaRefused", "parse", "plain_uuids"]


class SchemaRefused(ValueError):
    """A schema id that is not a version of the topic's inbound subject (or does not parse)."""


class MissingSubject(LookupError):
    """An inbound subject with no registered version: the guard cannot start."""


def plain_uuids(node: Any) -> Any:
    """A schema with every ``logicalType: uuid`` removed (read as a plain string)."""
    if isinstance(node, dict):
        out = {k: plain_uuids(v) for k, v in node.items()}
        if out.get("logicalType") == "uuid":
            del out["logicalType"]
        return out
    if isinstance(node, list):
        return [plain_uuids(v) for v in node]
    return node


def parse(schema: dict | str):
    doc = json.loads(schema) if isinstance(schema, str) else schema
    return fastavro.parse_schema(plain_uuids(doc))


def _why(e: Exception) -> str:
    if isinstance(e, SchemaRegistryError):
        return f"registry answered {e.http_status_code} ({e.error_code}): {e.error_message}"[:300]
    return f"registry unreachable: {type(e).__name__}: {e}"[:300]


class InboundSchemas(RegistryBackoff):
    NEGATIVE_TTL = 60.0

    def __init__(self, client, clock=None):
        self._client = client
        self._clock = clock or time.monotonic
        self._ids: dict[str, dict[int, Any]] = {}  # subject -> schema id -> parsed writer
        self._versions: dict[str, set[int]] = {}  # subject -> versions read
        self._asked: dict[tuple[str, int], float] = {}  # (subject, id) not a version when last asked -> when
        self._failures = 0
        self._retry_at = 0.0
        self.last_error: str | None = None

    @property
    def available(self) -> bool:
        return self._failures == 0

    def ids(self, subject: str) -> set[int]:
        return set(self._ids.get(subject, {}))

    def load(self, subjects) -> None:
        """Every version of each subject, now (at start). RegistryUnavailable, or MissingSubject."""
        for subject in subjects:
            self._refresh(subject)
            if not self._ids.get(subject):
                raise MissingSubject(f"{subject} has no registered version: register the inbound schemas first "
                                     f"(liaison schemas register)")

    def _refresh(self, subject: str) -> None:
        try:
            versions = self._client.get_versions(subject)
            for v in versions:
                if v in self._versions.get(subject, ()):
                    continue
                registered = self._client.get_version(subject, v)
                try:
                    writer = parse(registered.schema.schema_str)
                except Exception:  # noqa: BLE001 - a version that does not parse is never a writer
                    writer = None
                if writer is not None:
                    self._ids.setdefault(subject, {})[int(registered.schema_id)] = writer
                self._versions.setdefault(subject, set()).add(v)
        except SchemaRegistryError as e:
            if e.http_status_code == 404 and not self._ids.get(subject):
                return  # no such subject (load() says so); once known, a 404 is a registry not ready yet
            raise self._failed(f"{subject}: {_why(e)}") from None
        except Exception as e:  # noqa: BLE001 - connection errors, timeouts, TLS: no answer
            raise self._failed(f"{subject}: {_why(e)}") from None
        self._failures, self.last_error = 0, None


    def writer(self, subject: str, schema_id: int):
        hit = self._ids.get(subject, {}).get(schema_id)
        if hit is not None:
            return hit
        now = self._clock()
        asked = self._asked.get((subject, schema_id))
        if asked is None or now - asked >= self.NEGATIVE_TTL:
            if self._failures and now < self._retry_at:
                raise RegistryUnavailable(f"schema id {schema_id} not known for {subject}; {self.last_error}",
                                          max(1, int((self._retry_at - now) * 1000)))
            self._refresh(subject)
            self._asked[(subject, schema_id)] = self._clock()
            if len(self._asked) > 10000:
                self._asked.clear()
            hit = self._ids.get(subject, {}).get(schema_id)
            if hit is not None:
                return hit
        known = ", ".join(str(i) for i in sorted(self._ids.get(subject, {}))) or "none"
        raise SchemaRefused(f"schema id {schema_id} is not a version of {subject} (its ids: {known})")

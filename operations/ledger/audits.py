"""The two audit topics' records -> dicts, and the bucket each counts in.

A record is Confluent-framed Avro (magic 0, schema id, body). The writer schema comes from the registry by id
(cached: ids never change); the reader schema is the working tree's (schemas/audit/*.avsc), so audits written
with an older version read with its defaults (DecisionAudit v1/v2 have no ``bytes``: null, 0 bytes; v1-v3 carry
one decision in the top-level fields, v4 every recipient's in ``decisions``).

A record that cannot be read (bad framing, an id the registry does not know, a body that does not decode) is
:class:`Unreadable`: the service counts and skips it (the audits are written by our own services only, in the
same transactions as what they audit). A registry that does not answer is :class:`RegistryAway`: the service
consumes the batch again later.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import fastavro

import schemas
from core import serde
from core.audit import decisions_of
from core.topics import AUDIT_TOPIC, INGRESS_AUDIT_TOPIC
from operations.ledger.evaluate import Entry, entry_of_decision, entry_of_ingress

__all__ = ["AUDIT_TOPICS", "AuditDecoder", "RegistryAway", "Unreadable", "entries_of"]

#: What the ledger consumes: the forwarder's decisions (given), the ingress guard's (received).
AUDIT_TOPICS: tuple[str, ...] = (AUDIT_TOPIC, INGRESS_AUDIT_TOPIC)
_READER_FILES = {AUDIT_TOPIC: "DecisionAudit.avsc", INGRESS_AUDIT_TOPIC: "IngressAudit.avsc"}


class Unreadable(ValueError):
    """An audit record that cannot be read: skipped and counted."""


class RegistryAway(RuntimeError):
    """The registry did not answer for a writer schema: try the batch again later."""


def entries_of(topic: str, audit: Mapping[str, Any]) -> list[Entry | None]:
    """What one audit record counts: per recipient decision it carries (a decision audit, any version: see
    core.audit) or its one ingress decision, the bucket it counts in or None."""
    if topic == AUDIT_TOPIC:
        return [entry_of_decision(row) for row in decisions_of(audit)]
    return [entry_of_ingress(audit)]


def reader_schema(topic: str) -> dict:
    return json.loads((schemas.SCHEMA_DIR / "audit" / _READER_FILES[topic]).read_text(encoding="utf-8"))


class AuditDecoder:
    """``fetch(schema_id) -> schema text`` asks the registry (default: :func:`core.serde.fetch_schema_text`)."""

    def __init__(self, client=None, fetch=None):
        self._fetch = fetch or (lambda sid: serde.fetch_schema_text(client, sid))
        self._readers = {t: fastavro.parse_schema(reader_schema(t)) for t in AUDIT_TOPICS}
        self._writers: dict[int, Any] = {}

    def _writer(self, schema_id: int):
        parsed = self._writers.get(schema_id)
        if parsed is not None:
            return parsed
        try:
            text = self._fetch(schema_id)
        except Exception as e:  # noqa: BLE001 - SchemaRegistryError (an answer) or the transport's error
            status = getattr(e, "http_status_code", None)
            if status is not None and 400 <= status < 500 and status not in (401, 403, 408, 429):
                raise Unreadable(f"schema id {schema_id}: the registry answered {status}") from None
            raise RegistryAway(f"schema id {schema_id}: {e}") from None
        try:
            parsed = fastavro.parse_schema(json.loads(text))
        except Exception as e:  # noqa: BLE001 - not an Avro schema
            raise Unreadable(f"schema id {schema_id} is not an Avro schema: {e}") from None
        self._writers[schema_id] = parsed
        return parsed

    def decode(self, topic: str, value: bytes | None) -> dict:
        try:
            schema_id, body = serde.unframe(value)
        except serde.FramingError as e:
            raise Unreadable(str(e)) from None
        writer = self._writer(schema_id)
        try:
            return fastavro.schemaless_reader(io.BytesIO(body), writer, self._readers[topic])
        except Exception as e:  # noqa: BLE001 - truncated body, resolution failure
            raise Unreadable(f"schema id {schema_id}: body does not decode: {type(e).__name__}: {e}") from None

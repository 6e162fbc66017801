"""Decode internal records once (registry ids + fastavro) and encode audit records; partner views use
core.serde.Encoder.

Kafka-free except for the registry client handed in; the forwarder owns the I/O.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import schemaless_reader

import schemas

from consumers.shell.schema_cache import canonical
from core import serde
from core.topics import ORIGIN_PREFIX, is_partner_code, origin_source, source_of_topic, topic_for

from release.exchange import ORIGIN_NAMESPACE_PREFIX as ORIGIN_NAMESPACE
from schemas.models import from_avro

AUDIT_SCHEMA_PATH = Path(schemas.SCHEMA_DIR) / "audit" / "DecisionAudit.avsc"


class DecodeError(ValueError):
    """An input record that cannot be decoded or fails validation; `stage` says where it failed."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


class RegistryUnavailable(Exception):
    """The registry gave no definitive answer about a schema id (unreachable, timeout, 5xx, 401/403 from the
    gateway, or a 404 while it cannot find an id it is known to hold: not ready). Never a dead letter: the
    record waits; ``retry_ms`` is when to ask again (exponential backoff over consecutive failures)."""

    def __init__(self, message: str, retry_ms: int):
        super().__init__(message)
        self.retry_ms = retry_ms


#: Backoff of lookups while the registry is away: 0.5 s doubling per consecutive failure, at most 30 s.
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0


def _transient(e: Exception) -> str:
    if isinstance(e, SchemaRegistryError):
        return f"registry answered {e.http_status_code} ({e.error_code}): {e.error_message}"[:300]
    return f"registry unreachable: {type(e).__name__}: {e}"[:300]


class RegistryBackoff:
    """Transient registry failures of a registry reader (``_failures``, ``_retry_at``, ``last_error``,
    ``_clock``): each one counted, the next attempt backed off exponentially, the last error kept."""

    def _failed(self, message: str) -> RegistryUnavailable:
        self._failures += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._failures - 1))
        self._retry_at = self._clock() + delay
        self.last_error = message
        return RegistryUnavailable(message, int(delay * 1000))


class InputDecoder(RegistryBackoff):
    """Framed Avro bytes of an internal topic -> (type name, record dict valid for our reader schema).

    Writer schemas are fetched from the registry by id once and cached (``cache``: a
    :class:`~consumers.shell.schema_cache.SchemaCache` that keeps them on disk too). Only a definitive
    answer makes an id unknown (404: the registry holds no such id, confirmed by its answering for an id it
    does hold); unknown ids are remembered for a minute so a stream of poison pills does not hammer the
    registry. Any other failure raises :class:`RegistryUnavailable` and is never remembered as unknown; while
    it lasts, lookups of ids not cached fail at once until the backoff's next retry time.
    """

    NEGATIVE_TTL = 60.0

    def __init__(self, client: SchemaRegistryClient, validate: bool = True, cache=None, clock=None):
        self._client = client
        self._validate = validate
        self._cache = cache
        self._clock = clock or (lambda: time.monotonic())  # looked up per call: tests patch it
        self._by_id: dict[int, tuple[str, Any, Any]] = {}
        self._unknown: dict[int, tuple[float, str]] = {}
        self._expected = {topic_for(t): t for t in schemas.MESSAGE_TYPES}
        #: source "<PARTNER>/<Type>" -> its partner-origin schema in force (release.exchange.origin_schema): the
        #: reader of partner-origin records (the service sets it from the policies, at start and at reload)
        self.origin_schemas: dict[str, dict] = {}
        #: ids the registry is known to hold (registered by this forwarder): the readiness probe of a 404
        self.known_ids: set[int] = set()
        self._failures = 0
        self._retry_at = 0.0
        self.last_error: str | None = None
        self._unverified: set[int] = set()
        if cache is not None:
            for schema_id, text in sorted(cache.schemas.items()):
                try:
                    self._by_id[schema_id] = self._entry(schema_id, text)
                    self._unverified.add(schema_id)
                except DecodeError:
                    continue

    # ------------------------------------------------------------------ registry state

    @property
    def available(self) -> bool:
        """False from a transient failure until the next successful answer."""
        return self._failures == 0


    def _answered(self) -> None:
        self._failures, self.last_error = 0, None
        if self._unverified:
            self.verify()

    def _fetch(self, schema_id: int) -> str:
        return serde.fetch_schema_text(self._client, schema_id)

    def _known_answers(self, unknown_id: int) -> bool:
        """Does the registry answer for an id it holds? (A 404 is definitive only then: a registry replaying
        its journal answers 404 for ids it holds.)"""
        # the highest id: the last a replaying registry gets back to (ids grow with time)
        probe = max(self.known_ids - {unknown_id}, default=None)
        if probe is None:
            probe = max(set(self._by_id) - {unknown_id}, default=None)
        if probe is None:
            return True  # nothing to compare with: take the registry's word
        try:
            self._fetch(probe)
            return True
        except Exception:  # noqa: BLE001 - any failure of the probe: no definitive answer
            return False

    def verify(self) -> None:
        """Check the ids cached on disk against the registry (once it answers): an id it lost or holds with
        another schema is dropped (an id of a wiped registry would decode with the wrong schema)."""
        for schema_id in sorted(self._unverified):
            try:
                text = self._fetch(schema_id)
            except SchemaRegistryError as e:
                if e.http_status_code != 404 or not self._known_answers(schema_id):
                    return
                text = None
            except Exception:  # noqa: BLE001 - unreachable again: verify on the next answer
                return
            self._unverified.discard(schema_id)
            cached = self._cache.schemas.get(schema_id) if self._cache is not None else None
            if text is None or (cached is not None and canonical(text) != canonical(cached)):
                self._by_id.pop(schema_id, None)
                if self._cache is not None:
                    self._cache.schema_dropped(schema_id)

    # ------------------------------------------------------------------ lookups

    def _writer(self, schema_id: int) -> tuple[str, Any, Any]:
        hit = self._by_id.get(schema_id)
        if hit is not None:
            return hit
        now = self._clock()
        bad = self._unknown.get(schema_id)
        if bad and now - bad[0] < self.NEGATIVE_TTL:
            raise DecodeError("schema", bad[1])
        if self._failures and now < self._retry_at:
            raise RegistryUnavailable(f"schema id {schema_id} not cached; {self.last_error}",
                                      max(1, int((self._retry_at - now) * 1000)))
        try:
            text = self._fetch(schema_id)
        except SchemaRegistryError as e:
            if e.http_status_code == 404 and e.error_code in (40403, -1, None) and self._known_answers(schema_id):
                self._answered()
                msg = f"schema id {schema_id} unknown to the registry ({e.http_status_code})"
                self._unknown[schema_id] = (self._clock(), msg)
                raise DecodeError("schema", msg) from None
            if e.http_status_code == 404:
                raise self._failed(f"schema id {schema_id}: registry answered 404 for an id it holds too "
                                   f"(not ready)") from None
            raise self._failed(f"schema id {schema_id}: {_transient(e)}") from None
        except Exception as e:  # noqa: BLE001 - connection errors, timeouts, TLS: all mean "no answer"
            raise self._failed(f"schema id {schema_id}: {_transient(e)}") from None
        self._answered()
        try:
            entry = self._entry(schema_id, text)
        except DecodeError as e:
            self._unknown[schema_id] = (self._clock(), str(e))
            raise
        self._by_id[schema_id] = entry
        if self._cache is not None:
            self._cache.schema_learnt(schema_id, text)
        return entry

    def _entry(self, schema_id: int, text: str) -> tuple[str, Any, Any]:
        try:
            doc = json.loads(text)
        except ValueError:
            raise DecodeError("schema", f"schema id {schema_id} is not JSON") from None
        name = doc.get("name", "") if isinstance(doc, dict) else ""
        type_name = name.rsplit(".", 1)[-1]
        namespace = doc.get("namespace", "liaison.bus") if isinstance(doc, dict) else ""
        origin = namespace.removeprefix(ORIGIN_NAMESPACE + ".") if namespace.startswith(ORIGIN_NAMESPACE + ".") else None
        if type_name not in schemas.MESSAGE_TYPES or (namespace != schemas.NAMESPACE and not (
                origin and is_partner_code(origin.upper()) and origin.islower())):
            raise DecodeError("schema", f"schema id {schema_id} is {name or 'not a record'}, not a liaison message "
                                        f"type")
        try:
            writer = fastavro.parse_schema(doc)
        except Exception as e:  # noqa: BLE001 - fastavro raises many kinds on a schema it cannot parse
            raise DecodeError("schema", f"schema id {schema_id} does not parse ({type(e).__name__}: {e})"[:300]) \
                from None
        if origin is not None:  # a partner's record as the ingress guard wrote it: its partner-origin schema
            source = origin_source(origin.upper(), type_name)
            reader_doc = self.origin_schemas.get(source)
            if reader_doc is None or _shape(doc) == _shape(reader_doc):
                return source, writer, None
            return source, writer, fastavro.parse_schema(reader_doc)
        reader = schemas.parsed_schema(type_name)
        # Registries may return the schema compacted (no docs, another layout): decode with the writer alone
        # when it is our reader schema up to docs; otherwise let fastavro resolve writer -> reader.
        same = _shape(doc) == _shape(schemas.load_schema(type_name))
        return type_name, writer, None if same else reader

    def compiled_source(self, topic: str, value: bytes | None) -> tuple[str, memoryview] | None:
        """(source, Avro body) when ``value`` is a record the compiled core can decode as it is: well framed, its
        writer schema known and the reader schema in force (up to docs), of the type ``topic`` carries. Else None
        (every error, and every other writer, is :meth:`decode`'s to tell)."""
        try:
            schema_id, body = serde.unframe(value)
            type_name, _writer, reader = self._writer(schema_id)
        except Exception:  # noqa: BLE001 - DecodeError, RegistryUnavailable: decode says which
            return None
        expected = self._expected.get(topic)
        if reader is not None or (expected is not None and expected != type_name) or (
                expected is None and not topic.startswith(ORIGIN_PREFIX)):
            return None
        if expected is None:
            try:
                if source_of_topic(topic) != type_name:
                    return None
            except schemas.UnknownMessageType:
                return None
        return type_name, body

    def decode(self, topic: str, value: bytes | None) -> tuple[str, dict]:
        try:
            schema_id, body = serde.unframe(value)
        except serde.FramingError as e:
            raise DecodeError("framing", str(e)) from None
        type_name, writer, reader = self._writer(schema_id)
        expected = self._expected.get(topic)
        if expected is None and topic.startswith(ORIGIN_PREFIX):
            try:
                expected = source_of_topic(topic)
            except schemas.UnknownMessageType:
                raise DecodeError("schema", f"{topic} is not a partner-origin topic of a known type") from None
        if expected is not None and expected != type_name:
            raise DecodeError("schema", f"{type_name} record on {topic}, which carries {expected}")
        buf = io.BytesIO(body)
        try:
            record = schemaless_reader(buf, writer, reader) if reader is not None else schemaless_reader(buf, writer)
        except Exception as e:  # noqa: BLE001 - fastavro raises many kinds on corrupt bodies
            raise DecodeError("avro", f"Avro body does not decode with schema id {schema_id} "
                                      f"({type(e).__name__}: {e})"[:300]) from None
        rest = len(body) - buf.tell()
        if rest:
            raise DecodeError("avro", f"{rest} trailing byte(s) after the Avro record (schema id {schema_id})")
        if self._validate and "/" not in type_name:  # partner-origin records: the ingress guard validated them
            try:
                from_avro(type_name, record)
            except ValueError as e:  # pydantic.ValidationError is a ValueError
                raise DecodeError("validation", _short_validation(e)) from None
        return type_name, record


def _shape(schema) -> str:
    """A schema with names fully qualified, without docs, keys sorted: equal shapes decode identically."""
    ignore = {"doc", "namespace", "__fastavro_parsed", "__named_schemas", "aliases"}

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ignore}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(fastavro.parse_schema(schema)), sort_keys=True, separators=(",", ":"))


def _short_validation(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        parts = [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in errors()[:3]]
        return "invalid record: " + "; ".join(parts)
    return f"invalid record: {e}"[:300]


def audit_schema() -> dict:
    return json.loads(AUDIT_SCHEMA_PATH.read_text())


def _zigzag(n: int) -> bytes:
    """Avro int/long: zig-zag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return _zigzag(len(b)) + b


def _opt_string(s: str | None) -> bytes:
    return b"\x00" if s is None else b"\x02" + _string(s)


class AuditEncoder:
    """Framed Avro for DecisionAudit v4 records, byte-identical to fastavro's writer (a unit test checks it),
    built from cached pieces: one audit per input on the hot path, carrying every recipient's decision."""

    FIELDS = ("input_topic", "input_partition", "input_offset", "message_id", "message_type", "partner", "decision",
              "rule", "reason", "policy_version", "output_topic", "decided_at", "forwarder", "due_at", "bytes",
              "decisions")
    DECISION_FIELDS = ("partner", "decision", "rule", "reason", "policy_version", "output_topic", "due_at", "bytes")
    #: the v1-v3 per-recipient top-level fields, null in v4 (before and after decided_at, forwarder)
    _LEGACY_HEAD = b"\x00" * 6
    _LEGACY_TAIL = b"\x00" * 2
    MAX_CACHE = 20000

    def __init__(self, schema_id: int, schema: dict):
        names = tuple(f["name"] for f in schema["fields"])
        items = next((f["type"].get("items", {}) for f in schema["fields"] if f["name"] == "decisions"), {})
        inner = tuple(f["name"] for f in items.get("fields", ()))
        if names != self.FIELDS or inner != self.DECISION_FIELDS:
            raise ValueError(f"DecisionAudit schema fields changed ({names}, decisions: {inner}); update AuditEncoder")
        self.schema_id = schema_id
        self._symbols = next(f for f in schema["fields"] if f["name"] == "decision")["type"][1]["symbols"]
        self._header = serde.HEADER.pack(serde.MAGIC, schema_id)
        self._heads: dict[str, bytes] = {}
        self._types: dict[str | None, bytes] = {}
        self._items: dict[tuple, bytes] = {}
        self._end_key: tuple | None = None
        self._end = b""

    def encode(self, topic: str, partition: int, offset: int, message_id: str | None, message_type: str | None,
               decided_at: int, forwarder: str, decisions: list[tuple]) -> bytes:
        """``decisions``: (partner, decision, rule, reason, policy_version, output_topic, due_at, bytes) per
        recipient, in recipient order."""
        head = self._heads.get(topic)
        if head is None:
            head = self._heads[topic] = self._header + _string(topic)
        mtype = self._types.get(message_type)
        if mtype is None:
            mtype = self._types[message_type] = _opt_string(message_type)
        if self._end_key != (decided_at, forwarder):
            self._end_key = (decided_at, forwarder)
            self._end = _zigzag(decided_at) + _string(forwarder) + self._LEGACY_TAIL
        parts = [head, _zigzag(partition), _zigzag(offset), _opt_string(message_id), mtype, self._LEGACY_HEAD,
                 self._end]
        if decisions:
            parts.append(_zigzag(len(decisions)))
            items = self._items
            for partner, decision, rule, reason, version, out_topic, due_at, size in decisions:
                key = (partner, decision, rule, reason, version, out_topic)
                item = items.get(key)
                if item is None:
                    if len(items) >= self.MAX_CACHE:
                        items.clear()
                    item = items[key] = (_string(partner) + _zigzag(self._symbols.index(decision)) + _string(rule)
                                         + _string(reason) + _string(version) + _opt_string(out_topic))
                parts.append(item)
                parts.append(b"\x00" if due_at is None else b"\x02" + _zigzag(due_at))
                parts.append(b"\x00" if size is None else b"\x02" + _zigzag(size))
        parts.append(b"\x00")
        return b"".join(parts)

"""Schema registry access and Avro serdes (Confluent framing: magic byte 0 + 4-byte schema id + Avro body).

Only confluent-kafka's SchemaRegistryClient / AvroSerializer / AvroDeserializer talk to the registry, so
any Confluent-compatible registry (Apicurio ccompat, Confluent, Karapace, Redpanda) works by URL.

The local servers' registry URL is the registry gateway (deploy.infra.gateway): HTTPS, and HTTP basic auth with
the credentials of the process's principal - the same lookup as its Kafka SASL credentials (core.settings
`registry_client_config`). A partner principal reads only its own derived subjects there; services read and
write everything. An external registry (LIAISON_SCHEMA_REGISTRY_URL) gets no credentials unless
LIAISON_REGISTRY_AUTH=basic.
"""

from __future__ import annotations

import io
import json
import struct
from functools import lru_cache

from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from fastavro import schemaless_writer
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

from core.settings import Settings, get_settings

MAGIC = 0
HEADER = struct.Struct(">bI")

#: Serializer config shared by every producer of the project: schemas are registered by
#: `liaison schemas register` (governance), never implicitly by a producer; the subject is
#: always `<topic>-value` (set explicitly, so the client skips the association lookup that
#: Apicurio does not implement).
SERIALIZER_CONF = {
    "auto.register.schemas": False,
    "normalize.schemas": True,
    "subject.name.strategy": topic_subject_name_strategy,
}


class FramingError(ValueError):
    """Bytes that are not a Confluent-framed Avro value."""


def value_subject(topic: str) -> str:
    return f"{topic}-value"


def registry_client(settings: Settings | None = None, principal: str | None = None, timeout: float | None = None,
                    retries: int | None = None) -> SchemaRegistryClient:
    """The registry client of `principal` (default LIAISON_PRINCIPAL, `admin` for tooling): one per URL,
    identity and timeouts, cached. `timeout`: seconds per HTTP call (default :data:`REGISTRY_TIMEOUT`);
    `retries`: the client's own retries of a failed call (default 3: a service that retries by itself, the
    forwarder, asks for fewer so a registry outage never blocks it for minutes)."""
    settings = settings or get_settings()
    return _client(tuple(sorted(settings.registry_client_config(principal).items())),
                   REGISTRY_TIMEOUT if timeout is None else timeout, retries)


#: Seconds an HTTP call to the registry may take: a stuck registry is an error, not a hang.
REGISTRY_TIMEOUT = 30


@lru_cache(maxsize=16)
def _client(conf: tuple[tuple[str, str], ...], timeout: float = REGISTRY_TIMEOUT,
            retries: int | None = None) -> SchemaRegistryClient:
    extra = {} if retries is None else {"max.retries": retries, "retries.wait.ms": 200, "retries.max.wait.ms": 1000}
    return SchemaRegistryClient({**dict(conf), "timeout": timeout, **extra})


def fetch_schema_text(client, schema_id: int) -> str:
    """The schema text of `schema_id`, asked of the registry itself: SchemaRegistryClient.get_schema answers
    from its own cache once it has seen an id, which says nothing about whether the registry answers now.
    Raises SchemaRegistryError (an HTTP answer) or the transport's error (no answer). A client without a REST
    layer (a test double) is asked through get_schema."""
    rest = getattr(client, "_rest_client", None)
    if rest is None:
        return client.get_schema(schema_id).schema_str
    return rest.get(f"schemas/ids/{int(schema_id)}")["schema"]


def avro_serializer(schema_str: str, client: SchemaRegistryClient | None = None,
                    conf: dict | None = None, principal: str | None = None) -> AvroSerializer:
    return AvroSerializer(client or registry_client(principal=principal), schema_str,
                          conf={**SERIALIZER_CONF, **(conf or {})})


def avro_deserializer(client: SchemaRegistryClient | None = None, reader_schema: str | None = None,
                      principal: str | None = None) -> AvroDeserializer:
    """`principal`: whose registry credentials a client made here uses (a liaison officer: partner-<code>)."""
    # subject strategy set explicitly, as for the serializer: no association lookup (Apicurio lacks the API)
    return AvroDeserializer(client or registry_client(principal=principal), reader_schema,
                            conf={"subject.name.strategy": topic_subject_name_strategy})


def frame(schema_id: int, body: bytes) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + body


def unframe(data: bytes | None) -> tuple[int, memoryview]:
    """Split a framed value into (schema id, Avro body). Raises FramingError naming what is wrong."""
    if data is None:
        raise FramingError("value is null (tombstone), not a framed Avro record")
    if len(data) < HEADER.size:
        raise FramingError(f"value has {len(data)} bytes, fewer than the 5-byte Confluent header")
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FramingError(f"magic byte is {magic & 0xFF:#04x}, expected 0x00 (Confluent framing)")
    return schema_id, memoryview(data)[HEADER.size:]


class Encoder:
    """dict -> framed Avro for one registered schema: header with the registry's id + fastavro's schemaless
    writer. The bytes are exactly what confluent-kafka's AvroSerializer writes (a test checks it), at a
    fraction of the per-record cost."""

    __slots__ = ("schema_id", "schema_id_bytes", "_parsed", "header", "_schema", "_model")

    def __init__(self, schema_id: int, schema: dict):
        import fastavro

        self.schema_id = schema_id
        self.schema_id_bytes = str(schema_id).encode()
        self._parsed = fastavro.parse_schema(schema)
        self.header = HEADER.pack(MAGIC, schema_id)
        self._schema = schema
        self._model = None  # the compiled core's ModelEncoder, built on first encode_model

    def encode(self, record: dict) -> bytes:
        """fastavro's bytes for a record dict (plain values, as :func:`schemas.models.to_avro` gives)."""
        buf = io.BytesIO()
        buf.write(self.header)
        schemaless_writer(buf, self._parsed, record)
        return buf.getvalue()

    def encode_model(self, model) -> bytes:
        """The same bytes as ``encode(to_avro(model))``, written by the compiled core straight from the model's
        attributes (liaison_compiled.ModelEncoder: no model_dump, no dict; tests/unit/test_compiled_encoder.py
        checks it byte for byte). A schema the core does not take (a union other than [null, X], a logical type
        it does not know) is written by fastavro."""
        enc = self._model
        if enc is None:
            enc = self._model = _model_encoder(self._schema, self.schema_id) or False
        if enc is False:
            from schemas.models import to_avro

            return self.encode(to_avro(model))
        return enc.encode(model)


def _model_encoder(schema: dict, schema_id: int):
    import liaison_compiled

    try:
        return liaison_compiled.ModelEncoder(json.dumps(schema), schema_id)
    except ValueError:
        return None


def lookup_encoder(subject: str, schema_str: str, client: SchemaRegistryClient | None = None) -> Encoder:
    """An Encoder for a schema already registered under `subject` (looked up, never auto-registered)."""
    from confluent_kafka.schema_registry import Schema

    client = client or registry_client()
    registered = client.lookup_schema(subject, Schema(schema_str, "AVRO"), normalize_schemas=True)
    return Encoder(registered.schema_id, json.loads(schema_str))


def register_encoder(client: SchemaRegistryClient, subject: str, schema: dict, level: str = "BACKWARD_TRANSITIVE") -> Encoder:
    """Register `schema` under `subject` (idempotent) with an explicit compatibility level; its Encoder."""
    from confluent_kafka.schema_registry import Schema

    client.set_compatibility(subject, level)
    sid = client.register_schema(subject, Schema(json.dumps(schema), "AVRO"), normalize_schemas=True)
    return Encoder(sid, schema)

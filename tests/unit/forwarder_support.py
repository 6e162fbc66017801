"""Shared by the forwarder's pipeline tests: an in-memory registry, the partner plans of deploy/policies, framed
batches from the simulator, and the expected outputs built independently (fastavro's writer, release.decide,
release.envelope)."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import dataclass

import fastavro
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from consumers.shell.codec import AuditEncoder, InputDecoder, audit_schema
from consumers.forwarder.pipeline import BatchResult, InRecord, OutRecord, Pipeline, build_plans
from core import REPO_ROOT, serde
from core.audit import decisions_of
from core.topics import AUDIT_TOPIC, is_partner_code, recipient_topic, topic_for
from producers.simulate import Simulator
from release import SecretStore, decide, envelope, load_policies, released_key
from schemas.examples import BASE_TIME
from schemas.models import model_name, to_avro

POLICIES = REPO_ROOT / "deploy" / "policies"
NOW = 1_795_454_354_805
FORWARDER = "liaison-forwarder-unit"
AUDIT = fastavro.parse_schema(audit_schema())


class FakeRegistry:
    """Subjects and ids in memory; ``get_schema(id).schema_str`` as InputDecoder asks a registry client."""

    class _Schema:
        def __init__(self, text: str):
            self.schema_str = text

    def __init__(self):
        self.texts: dict[int, str] = {}
        self.subjects: dict[tuple[str, str], int] = {}

    def register(self, subject: str, schema: str | dict) -> int:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        if (subject, text) not in self.subjects:
            self.subjects[(subject, text)] = 1 + len(self.texts)
            self.texts[1 + len(self.texts)] = text
        return self.subjects[(subject, text)]

    def get_schema(self, schema_id: int):
        if schema_id not in self.texts:
            raise SchemaRegistryError(404, 40403, f"Schema {schema_id} not found")
        return self._Schema(self.texts[schema_id])

    def encoder_for(self, topic: str, schema: dict) -> serde.Encoder:
        """The pipeline's encoder factory, as the service's (register under <topic>-value), in memory."""
        return serde.Encoder(self.register(serde.value_subject(topic), schema), schema)


@dataclass
class Env:
    registry: FakeRegistry
    secrets: SecretStore
    policies: dict
    plans: dict
    audit: AuditEncoder

    def pipeline(self) -> Pipeline:
        return Pipeline(InputDecoder(self.registry), self.audit, self.plans, FORWARDER)

    def decoded(self, rec: InRecord) -> dict:
        """The input record as the pipeline decodes it (fastavro, the reader schema of its type)."""
        type_name = json.loads(self.registry.texts[value_id(rec.value)])["name"]
        return fastavro.schemaless_reader(io.BytesIO(rec.value[5:]), schemas.parsed_schema(type_name))

    def frame(self, type_name: str, record: dict) -> bytes:
        sid = self.registry.register(serde.value_subject(topic_for(type_name)), schemas.schema_str(type_name))
        return serde.frame(sid, write(schemas.load_schema(type_name), record))


def make_env(secrets_dir, policies_dir=POLICIES) -> Env:
    secrets = SecretStore(secrets_dir)
    for path in policies_dir.glob("*.yaml"):
        if is_partner_code(path.stem):  # components pseudonymise nothing: no key
            secrets.ensure(path.stem)
    registry = FakeRegistry()
    for t in schemas.MESSAGE_TYPES:  # the producers' schemas come first, as on the bus
        registry.register(serde.value_subject(topic_for(t)), schemas.schema_str(t))
    policies = load_policies(policies_dir, secrets)
    plans = build_plans(policies, registry.encoder_for)
    audit = AuditEncoder(registry.register(serde.value_subject(AUDIT_TOPIC), audit_schema()), audit_schema())
    return Env(registry, secrets, policies, plans, audit)


def write(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def read_audits(value: bytes) -> list[dict]:
    """One audit record's recipient decisions, one flat row each (core.audit), times in ms."""
    assert value[:5] == serde.HEADER.pack(0, value_id(value))
    audit = fastavro.schemaless_reader(io.BytesIO(value[5:]), AUDIT)
    rows = decisions_of(audit)
    for row in rows:
        row["decided_at"] = int(row["decided_at"].timestamp() * 1000)
        if row.get("due_at") is not None:
            row["due_at"] = int(row["due_at"].timestamp() * 1000)
    return rows


def value_id(value: bytes) -> int:
    return serde.HEADER.unpack_from(value)[1]


# ---------------------------------------------------------------------------------------------- batches


def records_of(env: Env, models, partitions: int = 3, seed: int = 1) -> list[InRecord]:
    """InRecords as the publisher writes them, spread over partitions; offsets have gaps (commit markers)."""
    rng = random.Random(seed)
    next_offset: dict[tuple[str, int], int] = {}
    out = []
    for m in models:
        name = model_name(m)
        topic, part = topic_for(name), rng.randrange(partitions)
        off = next_offset.get((topic, part), 1000 * part) + rng.choice((0, 0, 0, 1))
        next_offset[(topic, part)] = off + 1
        mid = str(m.label.message_id).encode()
        out.append(InRecord(topic, part, off, schemas.key_of(name, m).encode(), env.frame(name, to_avro(m)),
                            [("message_id", mid), ("type", name.encode())], 1_700_000_000_000 + off))
    return out


def simulated(n_seconds: float = 4.0, seed: int = 11) -> list:
    sim = Simulator({"naval", "air", "intel"}, seed=seed, start=BASE_TIME)
    return [m for _, m in sim.events(200.0, n_seconds)]


# ---------------------------------------------------------------------------------------------- expectations


def expected_outputs(env: Env, rec: InRecord) -> list[OutRecord]:
    """What the forwarder produces for one good input: per partner (in code order) its view if released,
    then the input's one audit with every partner's decision (DecisionAudit v4). Built from the input bytes with fastavro and decide(), not with the pipeline's encoders."""
    sid = value_id(rec.value)
    type_name = json.loads(env.registry.texts[sid])["name"]
    record = fastavro.schemaless_reader(io.BytesIO(rec.value[5:]), schemas.parsed_schema(type_name))
    mid = str(record["label"]["message_id"])
    out, decisions = [], []
    for code in sorted(env.policies):
        policy = env.policies[code]
        d = decide(type_name, record, policy)
        out_topic, size = None, None
        if d.released is not None:
            out_topic = recipient_topic(code, type_name)
            schema = policy.derived_schema(type_name)
            view_id = env.registry.subjects[(serde.value_subject(out_topic), json.dumps(schema))]
            key = released_key(type_name, d.released)
            # the envelope, spelled out: no rule, message_id only when the view keeps it, the view's own time
            headers = [("liaison.policy.version", policy.version.encode())]
            if "message_id" in d.released["label"]:
                headers.append(("message_id", mid.encode()))
            headers.append(("type", type_name.encode()))
            value = serde.frame(view_id, write(schema, d.released))
            size = len(value)
            out.append(OutRecord(out_topic, key.encode() if key else None, value, headers,
                                 envelope(type_name, d, policy).timestamp_ms))
        decisions.append(dict(partner=code, decision=d.decision, rule=d.rule, reason=d.reason,
                              policy_version=policy.version, output_topic=out_topic, due_at=None, bytes=size))
    audit = dict(input_topic=rec.topic, input_partition=rec.partition, input_offset=rec.offset, message_id=mid,
                 message_type=type_name, decided_at=NOW, forwarder=FORWARDER, decisions=decisions)
    out.append(OutRecord(AUDIT_TOPIC, mid.encode(), serde.frame(env.audit.schema_id, write(audit_schema(), audit)),
                         None))
    return out


def per_partner(result: BatchResult) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for (code, _type, decision), n in result.stats.counts.items():
        out.setdefault(code, Counter())[decision] += n
    return out

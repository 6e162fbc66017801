"""The forwarder's pipeline: a consumed batch in, everything to produce out. No Kafka client in here.

Read top to bottom; each step is one small unit with one interface:

    InRecord   ->  decode once              InputDecoder.decode(topic, value) -> (type, record) | DecodeError
               ->  for every partner:       decide(type, record, policy)      (release, pure)
                     released view          OutRecord to liaison.partner.<code>.<domain>.<type>
                     audit                  OutRecord to liaison.audit.decisions, one per (input, partner)
               or  undecodable / invalid:   dead letter (original bytes and headers + liaison.dlq.*)
                                            and a DEAD_LETTER audit per partner
    BatchResult:   the outputs in produce order, the next offset per (topic, partition), the stats

The service (:mod:`consumers.forwarder.service`) owns the clients and the transaction: it turns consumed
messages into InRecords, hands them in with the clock (``now_ms``), and produces what comes out. Partner
plans are built by :func:`build_plans` from compiled policies and an injected encoder factory (registry-backed
in the service, an in-memory registry in the unit tests), the same way at start and at every reload.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import schemas

from consumers.forwarder.codec import AuditEncoder, DecodeError, InputDecoder
from core.serde import Encoder
from core.topics import AUDIT_TOPIC, DEADLETTER_TOPIC, PARTNER_PREFIX, partner_topic, topic_for
from release import CompiledPolicy, decide, released_key

__all__ = ["BatchResult", "BatchStats", "EncoderFactory", "InRecord", "OutRecord", "PartnerPlan", "Pipeline",
           "build_plans"]

VERSION_HEADER = "liaison.policy.version"
_TYPE_HEADERS = {t: ("type", t.encode()) for t in schemas.MESSAGE_TYPES}

Headers = list[tuple[str, bytes | None]]


# ---------------------------------------------------------------------------------------------- records


@dataclass(slots=True)
class InRecord:
    """One consumed record, as the service read it from an internal topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    timestamp: int | None = None  # ms since the epoch; None when the broker gave none


@dataclass(slots=True)
class OutRecord:
    """One record to produce into the batch's transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    timestamp: int | None = None  # None: the producer stamps it at produce time (what the forwarder always did)


@dataclass
class BatchStats:
    records: int = 0
    dead_lettered: int = 0
    counts: Counter = field(default_factory=Counter)  # (partner, type, decision) -> n; type "?" for dead letters

    def add(self, other: BatchStats) -> None:
        self.records += other.records
        self.dead_lettered += other.dead_lettered
        self.counts.update(other.counts)


@dataclass
class BatchResult:
    """What one batch comes to: produce ``outputs`` in order, then commit ``offsets`` with them."""

    outputs: list[OutRecord] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> next offset
    stats: BatchStats = field(default_factory=BatchStats)

    @property
    def views(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic.startswith(PARTNER_PREFIX)]

    @property
    def audits(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == AUDIT_TOPIC]

    @property
    def dead_letters(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == DEADLETTER_TOPIC]


# ---------------------------------------------------------------------------------------------- plans


@dataclass
class PartnerPlan:
    """One partner's compiled policy, its topics and the encoders of its derived schemas."""

    policy: CompiledPolicy
    topics: dict[str, str]
    encoders: dict[str, Encoder]
    version_header: tuple[str, bytes]


#: (partner topic, derived schema) -> the Encoder of that schema as registered for the topic
EncoderFactory = Callable[[str, dict], Encoder]


def build_plans(policies: dict[str, CompiledPolicy], encoder_for: EncoderFactory) -> dict[str, PartnerPlan]:
    """Partner code -> plan, in partner order; at start and at reload alike."""
    plans = {}
    for code, policy in sorted(policies.items()):
        topics, encoders = {}, {}
        for type_name in policy.types:
            topic = partner_topic(code, topic_for(type_name))
            topics[type_name] = topic
            encoders[type_name] = encoder_for(topic, policy.derived_schema(type_name))
        plans[code] = PartnerPlan(policy, topics, encoders, (VERSION_HEADER, policy.version.encode()))
    return plans


# ---------------------------------------------------------------------------------------------- pipeline


class Pipeline:
    """InRecords -> BatchResult for the plans in force. ``forwarder`` names this instance in audits and
    dead letters (the service's transactional.id). Swap ``plans`` between batches to reload."""

    def __init__(self, decoder: InputDecoder, audit: AuditEncoder, plans: dict[str, PartnerPlan], forwarder: str):
        self.decoder = decoder
        self.audit = audit
        self.plans = plans
        self.forwarder = forwarder

    def process(self, batch: Iterable[InRecord], now_ms: int) -> BatchResult:
        result = BatchResult()
        partners = list(self.plans.items())  # one set of plans for the whole batch
        decode = self.decoder.decode
        offsets, stats = result.offsets, result.stats
        for rec in batch:
            offsets[(rec.topic, rec.partition)] = rec.offset + 1
            stats.records += 1
            try:
                type_name, record = decode(rec.topic, rec.value)
            except DecodeError as e:
                self._dead_letter(rec, e, partners, now_ms, result)
                continue
            self._release(rec, type_name, record, partners, now_ms, result)
        return result

    def _release(self, rec: InRecord, type_name: str, record: dict, partners: list[tuple[str, PartnerPlan]],
                 now_ms: int, result: BatchResult) -> None:
        """Every partner's decision on one decoded record: its view (if released) and its audit."""
        message_id = str(record["label"]["message_id"])
        mid = message_id.encode()
        emit = result.outputs.append
        counts = result.stats.counts
        audit = self.audit.encode
        for code, plan in partners:
            d = decide(type_name, record, plan.policy)
            out_topic = None
            if d.released is not None:
                out_topic = plan.topics[type_name]
                key = released_key(type_name, d.released)
                emit(OutRecord(out_topic, key.encode() if key else None, plan.encoders[type_name].encode(d.released),
                               [plan.version_header, ("message_id", mid), _TYPE_HEADERS[type_name],
                                ("rule", d.rule.encode())]))
            counts[(code, type_name, d.decision)] += 1
            emit(OutRecord(AUDIT_TOPIC, mid, audit(rec.topic, rec.partition, rec.offset, message_id, type_name, code,
                                                   d.decision, d.rule, d.reason, plan.policy.version, out_topic,
                                                   now_ms, self.forwarder), None))

    def _dead_letter(self, rec: InRecord, error: DecodeError, partners: list[tuple[str, PartnerPlan]],
                     now_ms: int, result: BatchResult) -> None:
        """The original bytes and headers to the dead-letter topic, and a DEAD_LETTER audit per partner."""
        topic, part, off = rec.topic, rec.partition, rec.offset
        headers = list(rec.headers or []) + [
            ("liaison.dlq.error", str(error).encode()), ("liaison.dlq.stage", error.stage.encode()),
            ("liaison.dlq.source.topic", topic.encode()), ("liaison.dlq.source.partition", str(part).encode()),
            ("liaison.dlq.source.offset", str(off).encode()), ("liaison.dlq.forwarder", self.forwarder.encode())]
        result.outputs.append(OutRecord(DEADLETTER_TOPIC, rec.key, rec.value, headers))
        result.stats.dead_lettered += 1
        coord = f"{topic}/{part}/{off}".encode()
        for code, plan in partners:
            result.stats.counts[(code, "?", "DEAD_LETTER")] += 1
            result.outputs.append(OutRecord(AUDIT_TOPIC, coord, self.audit.encode(
                topic, part, off, None, None, code, "DEAD_LETTER", "dead-letter", f"{error.stage}: {error}"[:500],
                plan.policy.version, DEADLETTER_TOPIC, now_ms, self.forwarder), None))

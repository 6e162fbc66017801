"""The need-to-know forwarder: internal topics -> per-partner filtered topics, exactly once.

Read top to bottom:

    consume a batch  ->  decode each record once (InputDecoder)
                     ->  for every partner: decide() (pure, release)
                     ->  produce released views, one audit record per (input, partner), dead letters
                     ->  commit outputs + consumed offsets in ONE Kafka transaction

SIGTERM/SIGINT: the current batch's transaction is finished (committed, or aborted on error) and the
process exits. SIGHUP: policies are reloaded at the next batch boundary; an invalid policy is refused with
a logged error and the old one stays in force. One stable transactional.id per instance; more instances in
the same group split the partitions.
"""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, TopicPartition

import schemas

from core.topics import AUDIT_TOPIC, DEADLETTER_TOPIC, INTERNAL_TOPICS, partner_topic, topic_for
from consumers.forwarder.codec import AuditEncoder, DecodeError, InputDecoder, audit_schema
from release import CompiledPolicy, SecretStore, decide, load_policies, released_key
from core import kafka, serde
from core.serde import Encoder, register_encoder
from core.logs import get_logger
from core.settings import Settings, get_settings

log = get_logger("liaison.forwarder")

_TYPE_HEADERS = {t: ("type", t.encode()) for t in schemas.MESSAGE_TYPES}


def ensure_partner_keys(policies_dir: Path, secrets: SecretStore) -> None:
    """Generate a pseudonymisation key for each partner that has none yet (setup; never committed)."""
    for path in sorted(Path(policies_dir).glob("*.yaml")):
        secrets.ensure(path.stem)


@dataclass
class PartnerPlan:
    """One partner's compiled policy, its topics and its registered derived schemas."""

    policy: CompiledPolicy
    topics: dict[str, str]
    encoders: dict[str, Encoder]
    version_header: tuple[str, bytes]


@dataclass
class BatchStats:
    records: int = 0
    dead_lettered: int = 0
    counts: Counter = field(default_factory=Counter)  # (partner, type, decision) -> n

    def add(self, other: BatchStats) -> None:
        self.records += other.records
        self.dead_lettered += other.dead_lettered
        self.counts.update(other.counts)


class Forwarder:
    def __init__(self, settings: Settings | None = None, policies_dir: Path | None = None,
                 instance: str | None = None, group_id: str = "liaison-forwarder", batch_size: int = 1000,
                 secrets: SecretStore | None = None, validate: bool = True, consumer_conf: dict | None = None,
                 producer_conf: dict | None = None, principal: str = kafka.FORWARDER):
        self.settings = settings or get_settings()
        self.policies_dir = policies_dir or self.settings.deploy_dir / "policies"
        self.instance = instance or socket.gethostname()
        self.transactional_id = f"liaison-forwarder-{self.instance}"
        self.group_id = group_id
        self.batch_size = batch_size
        self.secrets = secrets or SecretStore()
        self.client = serde.registry_client(self.settings)
        self.decoder = InputDecoder(self.client, validate=validate)
        ensure_partner_keys(self.policies_dir, self.secrets)
        # Fail before touching Kafka if a policy is invalid (PolicyError names file, line, field).
        self.partners = self._plans(load_policies(self.policies_dir, self.secrets))
        registered = register_encoder(self.client, serde.value_subject(AUDIT_TOPIC), audit_schema(), "BACKWARD_TRANSITIVE")
        self.audit = AuditEncoder(registered.schema_id, audit_schema())
        self.totals = BatchStats()
        self._stop = False
        self._reload = False
        self.listeners: list = []  # called with each committed batch's BatchStats
        self.first_batch_at: float | None = None  # perf_counter() of the first non-empty batch
        self.consumer = kafka.consumer(self.group_id, {
            "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest",
            # static membership: a restarted instance takes its partitions back at once (no rebalance wait)
            "group.instance.id": self.transactional_id, "session.timeout.ms": 30000,
            "fetch.min.bytes": 1, "max.partition.fetch.bytes": 1048576, **(consumer_conf or {})},
            self.settings, principal=principal)
        self.producer = kafka.producer({
            "transactional.id": self.transactional_id, "linger.ms": 5, "batch.size": 524288,
            "queue.buffering.max.messages": 1000000, "transaction.timeout.ms": 60000, **(producer_conf or {})},
            self.settings, principal=principal)
        self.producer.init_transactions(60)

    # ------------------------------------------------------------------ policies

    def _plans(self, policies: dict[str, CompiledPolicy]) -> dict[str, PartnerPlan]:
        plans = {}
        for code, policy in sorted(policies.items()):
            topics, encoders = {}, {}
            for type_name in policy.types:
                topic = partner_topic(code, topic_for(type_name))
                topics[type_name] = topic
                encoders[type_name] = register_encoder(self.client, serde.value_subject(topic),
                                               policy.derived_schema(type_name))
            plans[code] = PartnerPlan(policy, topics, encoders, ("liaison.policy.version", policy.version.encode()))
        return plans

    def reload_policies(self) -> bool:
        """Swap in freshly loaded policies; on any error keep the ones in force."""
        try:
            plans = self._plans(load_policies(self.policies_dir, self.secrets))
        except Exception as e:  # noqa: BLE001 - PolicyError, registry refusal: all mean "refuse"
            log.error("policy reload refused", error=str(e), policies_dir=str(self.policies_dir),
                      in_force={c: p.policy.version for c, p in self.partners.items()})
            return False
        self.partners = plans
        log.info("policies reloaded", versions={c: p.policy.version for c, p in plans.items()})
        return True

    # ------------------------------------------------------------------ one batch

    def process(self, msgs: list) -> tuple[BatchStats, dict[tuple[str, int], int]]:
        """Produce everything for `msgs` into the open transaction; returns stats and next offsets."""
        stats = BatchStats()
        offsets: dict[tuple[str, int], int] = {}
        produce = self._produce
        now_ms = int(time.time() * 1000)
        decode = self.decoder.decode
        partners = list(self.partners.items())
        audit_encode = self.audit.encode
        tid = self.transactional_id
        counts = stats.counts
        type_headers = _TYPE_HEADERS
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            topic, part, off = msg.topic(), msg.partition(), msg.offset()
            offsets[(topic, part)] = off + 1
            stats.records += 1
            try:
                type_name, record = decode(topic, msg.value())
            except DecodeError as e:
                self._dead_letter(msg, e, now_ms, stats)
                continue
            label = record["label"]
            message_id = str(label["message_id"])
            mid = message_id.encode()
            for code, plan in partners:
                d = decide(type_name, record, plan.policy)
                out_topic = None
                if d.released is not None:
                    out_topic = plan.topics[type_name]
                    key = released_key(type_name, d.released)
                    produce(out_topic, plan.encoders[type_name].encode(d.released), key.encode() if key else None,
                            [plan.version_header, ("message_id", mid), type_headers[type_name],
                             ("rule", d.rule.encode())])
                counts[(code, type_name, d.decision)] += 1
                produce(AUDIT_TOPIC, audit_encode(topic, part, off, message_id, type_name, code, d.decision, d.rule,
                                                  d.reason, plan.policy.version, out_topic, now_ms, tid), mid, None)
        return stats, offsets

    def _dead_letter(self, msg, error: DecodeError, now_ms: int, stats: BatchStats) -> None:
        topic, part, off = msg.topic(), msg.partition(), msg.offset()
        headers = list(msg.headers() or []) + [
            ("liaison.dlq.error", str(error).encode()), ("liaison.dlq.stage", error.stage.encode()),
            ("liaison.dlq.source.topic", topic.encode()), ("liaison.dlq.source.partition", str(part).encode()),
            ("liaison.dlq.source.offset", str(off).encode()), ("liaison.dlq.forwarder", self.transactional_id.encode())]
        self._produce(DEADLETTER_TOPIC, msg.value(), msg.key(), headers)
        stats.dead_lettered += 1
        coord = f"{topic}/{part}/{off}".encode()
        for code, plan in self.partners.items():
            stats.counts[(code, "?", "DEAD_LETTER")] += 1
            self._produce(AUDIT_TOPIC, self.audit.encode(
                topic, part, off, None, None, code, "DEAD_LETTER", "dead-letter", f"{error.stage}: {error}"[:500],
                plan.policy.version, DEADLETTER_TOPIC, now_ms, self.transactional_id), coord, None)

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, headers) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.05)

    # ------------------------------------------------------------------ transactions

    def _commit(self, msgs: list, stats: BatchStats, offsets: dict[tuple[str, int], int]) -> bool:
        """Commit the open transaction with the batch's offsets; on an abortable error abort and rewind."""
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if tps:
                self.producer.send_offsets_to_transaction(tps, self.consumer.consumer_group_metadata(), 30)
            for attempt in range(1, 6):
                try:
                    self.producer.commit_transaction(60)
                    return True
                except KafkaException as e:
                    if not e.args[0].retriable() or attempt == 5:
                        raise
                    log.warning("transaction commit retried", error=e.args[0].str(), attempt=attempt)
        except KafkaException as e:
            err = e.args[0]
            if err.fatal() or not (err.txn_requires_abort() or err.retriable()):
                raise
            log.warning("transaction aborted, batch will be reprocessed", error=err.str(), records=stats.records)
            self.producer.abort_transaction(30)
            self._rewind(msgs)
            return False

    def _rewind(self, msgs: list) -> None:
        first: dict[tuple[str, int], int] = {}
        for m in msgs:
            if m.error() is None:
                k = (m.topic(), m.partition())
                first[k] = min(first.get(k, m.offset()), m.offset())
        for (t, p), o in first.items():
            self.consumer.seek(TopicPartition(t, p, o))

    # ------------------------------------------------------------------ main loop

    def install_signal_handlers(self) -> None:
        def stop(signum, frame):
            self._stop = True

        def reload(signum, frame):
            self._reload = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def stop(self) -> None:
        self._stop = True

    def run(self, max_idle: float | None = None, duration: float | None = None,
            poll_timeout: float = 0.5) -> BatchStats:
        self.consumer.subscribe(list(INTERNAL_TOPICS))
        log.info("forwarder started", transactional_id=self.transactional_id, group=self.group_id,
                 partners={c: p.policy.version for c, p in self.partners.items()})
        started = last_data = time.monotonic()
        try:
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self.reload_policies()
                msgs = self.consumer.consume(self.batch_size, poll_timeout)
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    self._stop = True
                if not msgs:
                    if max_idle is not None and now - last_data >= max_idle:
                        break
                    continue
                last_data = now
                if self.first_batch_at is None:
                    self.first_batch_at = time.perf_counter()
                self.producer.begin_transaction()
                try:
                    stats, offsets = self.process(msgs)
                except BaseException:
                    self.producer.abort_transaction(30)
                    self._rewind(msgs)
                    raise
                if self._commit(msgs, stats, offsets):
                    self.totals.add(stats)
                    self._log_batch(stats)
                    for listener in self.listeners:
                        listener(stats)
        finally:
            self.close()
        return self.totals

    def _log_batch(self, stats: BatchStats) -> None:
        per_partner: dict[str, dict[str, int]] = {}
        for (code, _type, decision), n in stats.counts.items():
            per_partner.setdefault(code, {"released": 0, "withheld": 0, "dead_lettered": 0})
            key = {"RELEASE": "released", "WITHHOLD": "withheld"}.get(decision, "dead_lettered")
            per_partner[code][key] += n
        log.info("batch committed", records=stats.records, dead_lettered=stats.dead_lettered, partners=per_partner)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.producer.flush(10)
        log.info("forwarder stopped", records=self.totals.records, dead_lettered=self.totals.dead_lettered)

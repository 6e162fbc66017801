"""The need-to-know forwarder: internal topics -> per-partner filtered topics, exactly once.

A thin Kafka service around the pure pipeline (:mod:`consumers.forwarder.pipeline`). Read top to bottom:

    consume a batch  ->  InRecords (a consumer error stops the service)
                     ->  pipeline.process(batch, now_ms): decode, decide per partner, views, holds, audits,
                         dead letters; releases of held records that fell due
                     ->  begin the transaction, produce the outputs in order, send the consumed offsets, commit
                         (an abortable error: abort, rewind to the batch's first offsets, consume it again)
                     ->  pause each hold partition whose first record is not yet due, seek it back to that
                         record; resume it once the clock passes its due time

The service consumes the hold topic (liaison.hold) in the same group and the same transactions as the internal
topics: a held record is written in its input's transaction and released, with its hold offset committed, in
a later one, so a release from the hold is exactly once too.

SIGTERM/SIGINT: the current batch's transaction is finished (committed, or aborted on error) and the
process exits. SIGHUP: policies are reloaded at the next batch boundary; an invalid policy is refused with
a logged error and the old one stays in force. One stable transactional.id per instance; more instances in
the same group split the partitions. The service owns the registry too: partner and audit schemas are
registered at start (and partner schemas at reload), and the pipeline gets their encoders.
"""

from __future__ import annotations

import gc
import signal
import socket
import time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumers.forwarder.codec import AuditEncoder, InputDecoder, audit_schema
from consumers.forwarder.pipeline import BatchResult, BatchStats, InRecord, OutRecord, PartnerPlan, Pipeline, build_plans
from core import kafka, serde
from core.logs import get_logger
from core.serde import Encoder, register_encoder
from core.settings import Settings, get_settings
from core.topics import AUDIT_TOPIC, HOLD_TOPIC, INTERNAL_TOPICS
from release import SecretStore, load_policies

__all__ = ["BatchStats", "Forwarder", "PartnerPlan", "ensure_partner_keys", "in_records"]

log = get_logger("liaison.forwarder")


def ensure_partner_keys(policies_dir: Path, secrets: SecretStore) -> None:
    """Generate a pseudonymisation key for each partner that has none yet (setup; never committed)."""
    for path in sorted(Path(policies_dir).glob("*.yaml")):
        secrets.ensure(path.stem)


def in_records(msgs: list) -> list[InRecord]:
    """Consumed messages -> the pipeline's InRecords; partition EOF events are skipped, any other error raised."""
    out = []
    for m in msgs:
        err = m.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(err)
        ts_type, ts = m.timestamp()
        out.append(InRecord(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(),
                            ts if ts_type else None))
    return out


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
        plans = self._plans()
        registered = register_encoder(self.client, serde.value_subject(AUDIT_TOPIC), audit_schema(), "BACKWARD_TRANSITIVE")
        self.audit = AuditEncoder(registered.schema_id, audit_schema())
        self.pipeline = Pipeline(self.decoder, self.audit, plans, self.transactional_id, group=self.group_id)
        self.totals = BatchStats()
        self._stop = False
        self._reload = False
        self._paused: dict[tuple[str, int], int] = {}  # hold (topic, partition) -> due ms: resume after
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

    @property
    def partners(self) -> dict[str, PartnerPlan]:
        return self.pipeline.plans

    def _plans(self) -> dict[str, PartnerPlan]:
        return build_plans(load_policies(self.policies_dir, self.secrets), self._registered_encoder)

    def _registered_encoder(self, topic: str, schema: dict) -> Encoder:
        """The pipeline's encoder factory: register a partner's derived schema for its topic (idempotent)."""
        return register_encoder(self.client, serde.value_subject(topic), schema)

    def reload_policies(self) -> bool:
        """Swap in freshly loaded policies; on any error keep the ones in force."""
        try:
            plans = self._plans()
        except Exception as e:  # noqa: BLE001 - PolicyError, registry refusal: all mean "refuse"
            log.error("policy reload refused", error=str(e), policies_dir=str(self.policies_dir),
                      in_force={c: p.policy.version for c, p in self.partners.items()})
            return False
        self.pipeline.plans = plans
        log.info("policies reloaded", versions={c: p.policy.version for c, p in plans.items()})
        return True

    # ------------------------------------------------------------------ one batch

    def _forward(self, msgs: list) -> None:
        """One batch: the pipeline's outputs and the consumed offsets in one transaction."""
        try:
            batch = in_records(msgs)
            result = self.pipeline.process(batch, int(time.time() * 1000))
        except BaseException:
            self._rewind(msgs)
            raise
        if not result.outputs and not result.offsets:  # nothing to produce or commit (partition EOF events)
            self._hold_back(result.pauses)
            return
        self.producer.begin_transaction()
        try:
            log.info("batch begun", records=result.stats.records, outputs=len(result.outputs),
                     released_from_hold=result.stats.released_from_hold, transactional_id=self.transactional_id)
            self._produce(result.outputs)
        except BaseException:
            self.producer.abort_transaction(30)
            self._rewind(msgs)
            raise
        if self._commit(msgs, result):
            self._hold_back(result.pauses)
            self.totals.add(result.stats)
            self._log_batch(result.stats)
            for listener in self.listeners:
                listener(result.stats)

    def _produce(self, outputs: list[OutRecord]) -> None:
        """Into the open transaction, in order; a full local queue is drained, never an error."""
        produce = self.producer.produce
        for out in outputs:
            while True:
                try:
                    # a partner record's timestamp is its envelope's; 0 (None): the producer stamps it
                    produce(out.topic, out.value, out.key, headers=out.headers, timestamp=out.timestamp or 0)
                    break
                except BufferError:
                    self.producer.poll(0.05)

    # ------------------------------------------------------------------ holds

    def _hold_back(self, pauses: dict[tuple[str, int], tuple[int, int]]) -> None:
        """Stop each hold partition at its first record not yet due (its offset is not committed past it)."""
        for (topic, part), (offset, due_ms) in pauses.items():
            tp = TopicPartition(topic, part, offset)
            self.consumer.pause([tp])
            self.consumer.seek(tp)  # drops what was fetched after it: it comes again on resume
            self._paused[(topic, part)] = due_ms
        if pauses:
            log.info("hold paused", partitions={f"{t}/{p}": due for (t, p), (_o, due) in pauses.items()})

    def _resume_due(self) -> None:
        if not self._paused:
            return
        now_ms = int(time.time() * 1000)
        due = [tp for tp, due_ms in self._paused.items() if due_ms <= now_ms]
        if due:
            self.consumer.resume([TopicPartition(t, p) for t, p in due])
            for tp in due:
                del self._paused[tp]

    def _revoked(self, consumer, partitions) -> None:
        for tp in partitions:
            self._paused.pop((tp.topic, tp.partition), None)

    @property
    def paused(self) -> dict[tuple[str, int], int]:
        """Hold partitions waiting for a record to fall due -> its due time (ms)."""
        return dict(self._paused)

    # ------------------------------------------------------------------ transactions

    def _commit(self, msgs: list, result: BatchResult) -> bool:
        """Commit the open transaction with the batch's offsets; on an abortable error abort and rewind."""
        tps = [TopicPartition(t, p, o) for (t, p), o in result.offsets.items()]
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
            log.warning("transaction aborted, batch will be reprocessed", error=err.str(),
                        records=result.stats.records)
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
        self.consumer.subscribe(list(INTERNAL_TOPICS) + [HOLD_TOPIC], on_revoke=self._revoked, on_lost=self._revoked)
        log.info("forwarder started", transactional_id=self.transactional_id, group=self.group_id,
                 partners={c: p.policy.version for c, p in self.partners.items()})
        # Start-up objects (schemas, policies, clients) live as long as the process: keep the collections that
        # each batch's outputs trigger from walking them again and again.
        gc.freeze()
        started = last_data = time.monotonic()
        try:
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self.reload_policies()
                self._resume_due()
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
                self._forward(msgs)
        finally:
            self.close()
        return self.totals

    def _log_batch(self, stats: BatchStats) -> None:
        log.info("batch committed", records=stats.records, dead_lettered=stats.dead_lettered, held=stats.held,
                 released_from_hold=stats.released_from_hold, partners=stats.per_partner(),
                 **{k: n for k, n in (("hold_dead_lettered", stats.hold_dead_lettered),
                                      ("hold_skipped", stats.hold_skipped)) if n})

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.producer.flush(10)
        log.info("forwarder stopped", records=self.totals.records, dead_lettered=self.totals.dead_lettered,
                 held=self.totals.held, released_from_hold=self.totals.released_from_hold,
                 still_paused={f"{t}/{p}": due for (t, p), due in self._paused.items()})

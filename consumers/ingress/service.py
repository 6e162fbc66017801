"""The ingress guard of one partner: its inbound topics -> partner-origin topics or its quarantine, exactly once.

A thin Kafka service around the pure pipeline (:mod:`consumers.ingress.pipeline`), in the forwarder's shape and
with its parts (:mod:`consumers.shell.txn`, :mod:`~consumers.shell.faults`, ``in_records``). Read top to
bottom:

    start            ->  the partner's policy: the checks' configuration (``inbound:``) and one plan per inbound
                         topic; the inbound subjects' versions from the registry (the only writer ids accepted);
                         the partner-origin and audit schemas registered (from the schema cache while the
                         registry is away, when registered before)
                     ->  consumer (read_committed, group liaison-ingress-<code>, static member) and transactional
                         producer (transactional.id liaison-ingress-<code>); init_transactions fences a previous
                         instance of the partner and aborts its open transaction
                     ->  the seen ids of the partner restored: liaison.ingress.seen read to its end
    consume a batch  ->  pipeline.process(batch, now_ms, seen, poison): checks, accepted or quarantined
                     ->  one transaction (:class:`~consumers.shell.txn.Transactions`): the outputs in order
                         (origin record + seen id + ACCEPT audit, or quarantine + QUARANTINE audit), the consumed
                         offsets (send_offsets_to_transaction), commit; then the accepted ids join ``seen``.
                         A record refused by the broker: abort, its input marked poison and quarantined when the
                         batch is done again; transient: abort, rewind, again after a backoff
                     ->  pause each partition the registry stopped (a schema id not yet known), resume it later

Client errors are sorted by :mod:`consumers.shell.faults` (a fatal one raises ForwarderFault out of
:meth:`Guard.run`; ``liaison ingress --supervise`` builds a new Guard; fenced is final). SIGTERM/SIGINT finish the
current batch's transaction. A policy change takes effect at the next start (restart the guard).
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import TopicPartition

from consumers.shell.faults import FATAL, Backoff, ClientErrors, ForwarderFault, describe, sleep_unless
from consumers.forwarder.plans import PlanSource
from consumers.shell.clients import INIT_TRANSACTIONS_S, close_clients, rewind
from consumers.shell.records import Poison
from consumers.shell.schema_cache import SchemaCache
from consumers.shell.records import in_records
from consumers.shell.txn import Transactions
from consumers.ingress.checks import CHECKS, build_checks
from consumers.ingress.compiled import ENGINES, GuardCore
from consumers.ingress.pipeline import BatchResult, IngressStats, Pipeline
from consumers.ingress.plans import guard_config, type_plans
from consumers.ingress.registry import InboundSchemas
from consumers.ingress.seen import check_retention, restore_seen
from core import kafka, serde
from core.logs import get_logger
from core.settings import Settings, get_settings
from core.topics import INGRESS_AUDIT_TOPIC, is_partner_code, quarantine_topic
from release import SecretStore, load_policies
from schemas import SCHEMA_DIR

__all__ = ["Guard", "INGRESS", "MAX_RECORD_BYTES"]

log = get_logger("liaison.ingress")

#: The ingress guard's principal (deploy/acls.yaml).
INGRESS = "ingress"
#: The producer's message.max.bytes: an inbound record (at most 131,072 bytes, the inbound topics' bound) with the
#: quarantine headers fits.
MAX_RECORD_BYTES = 1_000_000
REGISTRY_TIMEOUT_S, REGISTRY_RETRIES = 5.0, 1
AUDIT_SCHEMA_PATH = Path(SCHEMA_DIR) / "audit" / "IngressAudit.avsc"


def _audit_schema() -> dict:
    import json

    return json.loads(AUDIT_SCHEMA_PATH.read_text())


class Guard:
    def __init__(self, partner: str, settings: Settings | None = None, policies_dir: Path | None = None,
                 batch_size: int = 500, checks: tuple[str, ...] = CHECKS, consumer_conf: dict | None = None,
                 producer_conf: dict | None = None, principal: str = INGRESS, cache_path: Path | None = None,
                 engine: str | None = None):
        code = partner.upper()
        if not is_partner_code(code):
            raise ValueError(f"{partner!r} is not a partner code (three letters, e.g. RUS)")
        self.partner = code
        self.settings = settings or get_settings()
        self.policies_dir = Path(policies_dir or self.settings.deploy_dir / "policies")
        self.transactional_id = f"liaison-ingress-{code.lower()}"
        self.group_id = self.transactional_id
        self.batch_size = batch_size
        # Fail before touching Kafka: an invalid policy (PolicyError), a partner with no policy or a bad check list
        # (ValueError), an inbound subject not registered (MissingSubject), the registry away (RegistryUnavailable).
        policies = load_policies(self.policies_dir)
        policy = policies.get(code)
        if policy is None or not policy.is_partner:
            raise ValueError(f"no partner policy for {code} in {self.policies_dir}")
        self.config = guard_config(policy, tuple(checks))
        build_checks(self.config, None)  # unknown or misordered check names: refused before any connection
        check_retention(self.config.inbound.max_age_s, self.config.inbound.max_future_s)
        self.client = serde.registry_client(self.settings, principal=principal, timeout=REGISTRY_TIMEOUT_S,
                                            retries=REGISTRY_RETRIES)
        self.cache = SchemaCache(cache_path or Path(self.settings.state_dir) / "ingress-cache" / f"{code}.json",
                                 self.settings.registry_url())
        source = PlanSource(self.client, self.policies_dir, SecretStore(), self.cache, log)
        self.plans = type_plans(policy, source.encoder_for)
        audit_schema = _audit_schema()
        self.audit = serde.Encoder(source.register(serde.value_subject(INGRESS_AUDIT_TOPIC), audit_schema),
                                   audit_schema)
        source.report()
        self.decoder = InboundSchemas(self.client)  # `decoder`: the name the forwarder's status() reads
        self.decoder.load(p.subject for p in self.plans.values())
        #: "compiled" (the compiled core accepts what it takes, the reference checks the rest) or "reference"
        self.engine = engine or self.settings.guard_engine
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        core = GuardCore(self.config, self.plans, self.decoder) if self.engine == "compiled" else None
        if core is not None and core.refused:
            log.warning("compiled core: inbound topics left to the reference", topics=core.refused)
        self.pipeline = Pipeline(self.config, self.plans, self.decoder, self.audit, self.transactional_id,
                                 compiled=core)
        self.totals = IngressStats()
        self.seen: set[str] = set()
        self._stop = False
        self._abort_backoff = Backoff(0.5, 30.0)
        self._paused: dict[tuple[str, int], int] = {}
        self.poison: dict[tuple[str, int, int], Poison] = {}
        self.listeners: list = []
        self.assigned: set[tuple[str, int]] = set()
        self.loop_at = self.last_progress = time.monotonic()
        self.last_commit: float | None = None
        self.client_errors = ClientErrors(log, self.transactional_id)
        self.error_listeners = self.client_errors.listeners
        self.consumer = kafka_consumer(self, consumer_conf, principal)
        self.txn = Transactions(None, self.consumer.consumer_group_metadata, stopping=lambda: self._stop,
                                transactional_id=self.transactional_id)
        self.producer = kafka_producer(self, producer_conf, principal)
        self.txn.producer = self.producer
        try:
            self.producer.init_transactions(INIT_TRANSACTIONS_S)
        except Exception as e:  # noqa: BLE001 - KafkaException: brokers away (timeout) or fatal
            err = e.args[0] if e.args and hasattr(e.args[0], "code") else None
            self._close_clients()
            raise ForwarderFault(FATAL, "producer", f"init_transactions: {describe(err) if err else e}", err) from None
        # after init_transactions: a fenced predecessor's open transaction is aborted, its commits are all there
        started = time.monotonic()
        try:
            self.seen = restore_seen(code, self.settings, principal=principal)
        except Exception as e:  # noqa: BLE001 - unreadable topic, timeout: the replay check cannot be exact
            self._close_clients()
            raise ForwarderFault(FATAL, "consumer", f"seen ids not restored: {e}") from None
        log.info("seen ids restored", partner=code, seen_ids=len(self.seen),
                 took_s=round(time.monotonic() - started, 2), transactional_id=self.transactional_id)

    # ------------------------------------------------------------------ one batch

    def _guard(self, msgs: list) -> None:
        try:
            batch = in_records(msgs, self.client_errors.event)
        except BaseException:
            self._rewind(msgs)
            raise
        for _attempt in range(2 * len(batch) + 2):
            try:
                result = self.pipeline.process(batch, int(time.time() * 1000), self.seen, self.poison)
            except BaseException:
                self._rewind(msgs)
                raise
            if not result.outputs and not result.offsets:
                self._hold_back(result)
                return
            outcome = self.txn.run(result)
            if outcome.committed:
                self._committed(result)
                return
            if not outcome.refused:
                delay = self._abort_backoff.next()
                log.warning("transaction aborted, batch will be reprocessed", error=outcome.retry,
                            records=result.stats.records, retry_in_s=delay, partner=self.partner)
                self._rewind(msgs)
                sleep_unless(lambda: self._stop, delay)
                return
            for index, err in outcome.refused:
                self._mark_poison(result, index, err)
        raise ForwarderFault(FATAL, "producer", "a batch could not be produced even without its refused records")

    def _mark_poison(self, result: BatchResult, index: int, err) -> None:
        coord, out = result.source_of(index), result.outputs[index]
        if out.topic == quarantine_topic(self.partner):
            raise ForwarderFault(FATAL, "producer", f"the quarantine record of {coord} was refused: {describe(err)}",
                                 err)
        self.poison[coord] = Poison("produce", f"{out.topic} refused the record: {describe(err)}"[:900])
        log.warning("record could not be produced, batch done again with it quarantined", partner=self.partner,
                    topic=coord[0], partition=coord[1], offset=coord[2], output_topic=out.topic, code=err.name())

    def _committed(self, result: BatchResult) -> None:
        self._abort_backoff.reset()
        self.last_commit = self.last_progress = time.monotonic()
        self.seen.update(result.accepted_ids)
        for coord in [c for c in self.poison if result.offsets.get((c[0], c[1]), -1) > c[2]]:
            del self.poison[coord]
        self._hold_back(result)
        self.totals.add(result.stats)
        for topic, part, off, mid, decision, check in result.decisions:
            if decision == "QUARANTINE":
                log.warning("record quarantined", partner=self.partner, topic=topic, partition=part, offset=off,
                            message_id=mid, check=check)
        s = result.stats
        log.info("batch committed", partner=self.partner, records=s.records, accepted=s.accepted,
                 quarantined=s.quarantined, checks=s.checks(), seen_ids=len(self.seen))
        for listener in self.listeners:
            listener(self.partner, s)

    # ------------------------------------------------------------------ registry pauses

    def _hold_back(self, result: BatchResult) -> None:
        for (topic, part), (offset, at_ms) in result.pauses.items():
            tp = TopicPartition(topic, part, offset)
            self.consumer.pause([tp])
            self.consumer.seek(tp)
            self._paused[(topic, part)] = at_ms
        if result.pauses:
            log.warning("registry unavailable, partitions paused", partner=self.partner, error=result.registry_error,
                        partitions={f"{t}/{p}": o for (t, p), (o, _a) in result.pauses.items()})

    def _resume_due(self) -> None:
        if not self._paused:
            return
        now_ms = int(time.time() * 1000)
        due = [tp for tp, at_ms in self._paused.items() if at_ms <= now_ms]
        if due:
            self.consumer.resume([TopicPartition(t, p) for t, p in due])
            for tp in due:
                del self._paused[tp]

    @property
    def registry_paused(self) -> dict[tuple[str, int], int]:
        return dict(self._paused)

    @property
    def paused(self) -> dict:
        """Hold partitions (the forwarder's status() reads it): the guard holds nothing."""
        return {}

    @property
    def fault(self) -> ForwarderFault | None:
        return self.client_errors.fault

    def _assigned(self, consumer, partitions) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}

    def _revoked(self, consumer, partitions) -> None:
        for tp in partitions:
            self._paused.pop((tp.topic, tp.partition), None)
            self.assigned.discard((tp.topic, tp.partition))

    def _rewind(self, msgs: list) -> None:
        rewind(self.consumer, msgs)

    # ------------------------------------------------------------------ main loop

    def stop(self) -> None:
        self._stop = True

    def run(self, max_idle: float | None = None, duration: float | None = None,
            poll_timeout: float = 0.5) -> IngressStats:
        topics = sorted(self.plans)
        self.consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked)
        log.info("ingress guard started", partner=self.partner, transactional_id=self.transactional_id, engine=self.engine,
                 group=self.group_id, topics=topics, checks=list(self.config.checks),
                 classification_ceiling=self.config.inbound.classification_ceiling,
                 max_future_s=self.config.inbound.max_future_s, max_age_s=self.config.inbound.max_age_s,
                 max_bytes=self.config.max_bytes, seen_ids=len(self.seen))
        started = last_data = time.monotonic()
        try:
            while not self._stop:
                self.loop_at = now = time.monotonic()
                self._resume_due()
                msgs = kafka.consume_batch(self.consumer, self.batch_size, poll_timeout)
                if self.client_errors.fault is not None:
                    raise self.client_errors.fault
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    self._stop = True
                if not msgs:
                    self.last_progress = now
                    if max_idle is not None and now - last_data >= max_idle:
                        break
                    continue
                last_data = now
                self._guard(msgs)
        except ForwarderFault as f:
            self.client_errors.fault = f
            raise
        finally:
            self.close()
        return self.totals

    def _close_clients(self) -> None:
        close_clients({"consumer": self.consumer.close}, self.producer, self.txn.stuck, log)

    def close(self) -> None:
        self._close_clients()
        log.info("ingress guard stopped", partner=self.partner, records=self.totals.records,
                 accepted=self.totals.accepted, quarantined=self.totals.quarantined)


def kafka_consumer(guard: Guard, conf: dict | None, principal: str):
    return kafka.consumer(guard.group_id, {
        "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "group.instance.id": guard.transactional_id, "session.timeout.ms": 30000,
        "error_cb": guard.client_errors.callback("consumer"), **(conf or {})}, guard.settings, principal=principal)


def kafka_producer(guard: Guard, conf: dict | None, principal: str):
    return kafka.producer({
        "transactional.id": guard.transactional_id, "linger.ms": 5, "transaction.timeout.ms": 60000,
        "message.max.bytes": MAX_RECORD_BYTES, "on_delivery": guard.txn.delivery_failed,
        "delivery.report.only.error": True, "error_cb": guard.client_errors.callback("producer"), **(conf or {})},
        guard.settings, principal=principal)

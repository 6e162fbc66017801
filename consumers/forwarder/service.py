"""The need-to-know forwarder: internal topics -> per-partner filtered topics, exactly once.

A thin Kafka service around the pure pipeline (:mod:`consumers.forwarder.pipeline`). Read top to bottom:

    start            ->  partner plans (:class:`~consumers.forwarder.plans.PlanSource`: keys, policies, derived
                         schemas checked and registered; from the schema cache while the registry is away)
    consume a batch  ->  InRecords (a consumer error event is logged and skipped; a fatal one stops the clients)
                     ->  pipeline.process(batch, now_ms, poison): decode, decide per partner, views, holds, audits,
                         dead letters; releases of held records that fell due
                     ->  one transaction (:class:`~consumers.shell.txn.Transactions`): the outputs in order,
                         the consumed offsets, commit. A record refused (too large, invalid): abort, its input
                         marked poison (in memory, by topic/partition/offset), the batch done again at once
                         without it (dead-lettered instead, in the new transaction). Transient: abort, rewind,
                         consume the batch again after a backoff
                     ->  pause each partition the pipeline stopped (a hold record not yet due; the registry away
                         for a schema id not cached), seek it back to that record, resume it at its time

The hold topic (liaison.hold) is consumed in the same group and transactions: a held record is written in its
input's transaction and released, with its hold offset committed, in a later one (exactly once too).

Errors of the clients (``error_cb``, consumer error events, transaction calls) are sorted by
:mod:`consumers.shell.faults` and logged (event ``kafka client error``: client, kind, code, error). A fatal
one raises ForwarderFault out of :meth:`Forwarder.run` (``liaison forward --supervise`` builds a new Forwarder).

SIGTERM/SIGINT: the current batch's transaction is finished (committed, or aborted on error) and the
process exits. SIGHUP: policies are reloaded at the next batch boundary, by the code path of the start (new
partners get keys and registered schemas); an invalid policy or an incompatible derived schema is refused with a
logged error and the old plans stay in force; a reload the registry cannot serve yet is retried with backoff.
"""

from __future__ import annotations

import gc
import signal
import socket
import time
from pathlib import Path

from confluent_kafka import TopicPartition

from consumers.shell.codec import InputDecoder, RegistryUnavailable
from consumers.shell.faults import FATAL, Backoff, ClientErrors, ForwarderFault, describe, sleep_unless
from consumers.forwarder.pipeline import BatchResult, BatchStats, PartnerPlan, Pipeline, Poison
from consumers.forwarder.plans import PlanSource, ensure_partner_keys
from consumers.forwarder.reciprocity import ReciprocityPauses
from consumers.shell.clients import INIT_TRANSACTIONS_S, close_clients, rewind
from consumers.shell.records import in_records
from consumers.shell.schema_cache import SchemaCache, default_cache_path
from consumers.shell.txn import Transactions
from core import kafka, serde
from core.logs import get_logger
from core.settings import Settings, get_settings
from core.topics import DEADLETTER_TOPIC, HOLD_TOPIC, INTERNAL_TOPICS, ORIGIN_PREFIX
from release import SecretStore
from release.exchange import origin_schemas
from consumers.forwarder.compiled import ENGINES, CompiledRoutes, compiled_audit

__all__ = ["BatchStats", "Forwarder", "MAX_RECORD_BYTES", "PartnerPlan", "ensure_partner_keys"]

#: librdkafka regex subscription (a leading ^) of every partner-origin topic
ORIGIN_PATTERN = "^" + ORIGIN_PREFIX.replace(".", "\\.") + ".*"

log = get_logger("liaison.forwarder")

#: The producer's message.max.bytes: the dead-letter topic's max.message.bytes (deploy/topics.yaml), which takes
#: the largest record the internal topics accept (1,000,000) plus the dead-letter headers.
MAX_RECORD_BYTES = 1_200_000
#: Registry calls of the forwarder: a short timeout and one retry; the forwarder backs off by itself.
REGISTRY_TIMEOUT_S, REGISTRY_RETRIES = 5.0, 1
#: init_transactions at start (it fences a previous producer of the same transactional.id, aborting its
#: transaction); the consumer's close at the end (a consumer whose brokers are gone may take long): bounds, s




class Forwarder:
    def __init__(self, settings: Settings | None = None, policies_dir: Path | None = None,
                 instance: str | None = None, group_id: str = "liaison-forwarder", batch_size: int = 1000,
                 secrets: SecretStore | None = None, validate: bool = True, consumer_conf: dict | None = None,
                 producer_conf: dict | None = None, principal: str = kafka.FORWARDER, cache_path: Path | None = None,
                 engine: str | None = None, batch_linger: float = kafka.BATCH_LINGER_S):
        self.settings = settings or get_settings()
        self.policies_dir = policies_dir or self.settings.deploy_dir / "policies"
        self.instance = instance or socket.gethostname()
        self.transactional_id = f"liaison-forwarder-{self.instance}"
        self.group_id = group_id
        self.batch_size = batch_size
        #: seconds a batch waits for more records after its first (the latency a transaction adds at a low rate)
        self.batch_linger = batch_linger
        self._process_ms = 0.0  # the last batch's pipeline time (logged with its transaction's phases)
        self.secrets = secrets or SecretStore()
        # as its own principal at the registry gateway too (a service principal: the whole API)
        self.client = serde.registry_client(self.settings, principal=principal, timeout=REGISTRY_TIMEOUT_S,
                                            retries=REGISTRY_RETRIES)
        self.cache = SchemaCache(cache_path or default_cache_path(self.settings.state_dir, self.instance),
                                 self.settings.registry_url())
        self.decoder = InputDecoder(self.client, validate=validate, cache=self.cache)
        # Fail before touching Kafka if a policy is invalid (PolicyError names file, line, field), a derived schema
        # is incompatible (IncompatibleSchema), or the registry is away with a schema never registered
        # (RegistryUnavailable).
        self.source = PlanSource(self.client, self.policies_dir, self.secrets, self.cache, log)
        plans = self.source.build()
        self.audit = self.source.audit_encoder()
        self.source.report()
        self.decoder.known_ids |= self.source.ids
        self.decoder.verify()  # ids cached on disk, against the registry when it answers
        self.decoder.origin_schemas = origin_schemas(p.policy for p in plans.values())
        #: "compiled" (the compiled core decides what it takes, the reference the rest) or "reference"
        self.engine = engine or self.settings.forwarder_engine
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        self._validate = validate
        if self.engine == "compiled":  # the same bytes, written by the core
            self.audit = compiled_audit(self.audit)
        self.pipeline = Pipeline(self.decoder, self.audit, plans, self.transactional_id, group=self.group_id,
                                 compiled=self._routes(plans))
        self.totals = BatchStats()
        self._stop = self._reload = False
        self._reload_at: float | None = None  # a reload the registry could not serve: retried then
        self._reload_backoff = Backoff(1.0, 30.0)
        self._abort_backoff = Backoff(0.5, 30.0)
        self._paused: dict[tuple[str, int], int] = {}  # (topic, partition) -> resume at (ms)
        self.poison: dict[tuple[str, int, int], Poison] = {}
        self.listeners: list = []  # called with each committed batch's BatchStats
        self.first_batch_at: float | None = None  # perf_counter() of the first non-empty batch
        self.assigned: set[tuple[str, int]] = set()
        self.loop_at = self.last_progress = time.monotonic()
        self.last_commit: float | None = None
        #: every client error: counted, logged, listeners told (error_listeners); a fatal error_cb kept as fault
        self.client_errors = ClientErrors(log, self.transactional_id)
        self.error_listeners = self.client_errors.listeners
        self.consumer = kafka.consumer(self.group_id, {
            "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest",
            # static membership: a restarted instance takes its partitions back at once (no rebalance wait)
            "group.instance.id": self.transactional_id, "session.timeout.ms": 30000,
            "fetch.min.bytes": 1, "max.partition.fetch.bytes": 1048576, "error_cb": self.client_errors.callback("consumer"),
            # The prefetch queue, bounded to a few batches. librdkafka's defaults (100,000 messages per partition,
            # 64 MiB of payload for the queue) let a forwarder that is behind hold ~100,000 fetched records and
            # their fetch buffers: the soak measured RSS 460+ MiB (glibc heap 57 -> 367 MiB, Python's 38 -> 49)
            # with 300,000 records behind. Most of that is not the payload (the capped queue held 2-5 MiB of it)
            # but, it seems, the fetch responses queued records keep alive: fetch.max.bytes follows
            # queued.max.messages.kbytes (librdkafka lowers it to that when not set), so 2 MiB (~10,000 records
            # of the simulator's mix, ~200 B each; > 1 s of work at the forwarder's best rate) also makes each
            # fetch at most 2 MiB. Measured 650,000-800,000 behind:
            # RSS ~150 MiB with 2 MiB, ~197 with 8 MiB; bench_forwarder's 100,000-record backlog: peak RSS 221-225
            # (defaults) -> 166-177 (8 MiB) -> 131-135 MiB (2 MiB), same records/s. queued.min.messages 2,000
            # instead of 10,000 cost ~20 % of that rate (the queue ran dry between fetches).
            "queued.min.messages": 10000, "queued.max.messages.kbytes": 2048,
            **(consumer_conf or {})}, self.settings, principal=principal)
        # the reciprocity ledger, followed by a consumer of its own (assigned, no group), only if a policy pauses
        self.reciprocity = ReciprocityPauses(lambda: kafka.consumer(f"{self.group_id}-ledger-{self.instance}", {
            "enable.partition.eof": True, "error_cb": self.client_errors.callback("ledger"), **(consumer_conf or {})},
            self.settings, principal=principal), log)
        self.txn = Transactions(None, self.consumer.consumer_group_metadata, stopping=lambda: self._stop,
                                transactional_id=self.transactional_id)
        self.producer = kafka.producer({
            "transactional.id": self.transactional_id, "linger.ms": 5, "batch.size": 524288,
            "queue.buffering.max.messages": 1000000, "transaction.timeout.ms": 60000,
            "message.max.bytes": MAX_RECORD_BYTES, "on_delivery": self.txn.delivery_failed,
            "delivery.report.only.error": True, "error_cb": self.client_errors.callback("producer"), **(producer_conf or {})},
            self.settings, principal=principal)
        self.txn.producer = self.producer
        try:
            self.producer.init_transactions(INIT_TRANSACTIONS_S)
        except Exception as e:  # noqa: BLE001 - KafkaException: brokers away (timeout) or fatal
            err = e.args[0] if e.args and hasattr(e.args[0], "code") else None
            self._close_clients()
            raise ForwarderFault(FATAL, "producer", f"init_transactions: {describe(err) if err else e}", err) from None

    # ------------------------------------------------------------------ policies

    @property
    def partners(self) -> dict[str, PartnerPlan]:
        return self.pipeline.plans

    def reload_policies(self) -> bool:
        """Plans built again as at start; on any error keep the ones in force."""
        self._reload_at = None
        try:
            plans = self.source.build()
        except RegistryUnavailable as e:
            delay = self._reload_backoff.next()
            self._reload_at = time.monotonic() + delay
            log.error("policy reload postponed: registry unavailable", error=str(e), retry_in_s=delay,
                      in_force={c: p.policy.version for c, p in self.partners.items()})
            return False
        except Exception as e:  # noqa: BLE001 - PolicyError, IncompatibleSchema, registry refusal: all mean "refuse"
            log.error("policy reload refused", error=str(e), policies_dir=str(self.policies_dir),
                      in_force={c: p.policy.version for c, p in self.partners.items()})
            return False
        self._reload_backoff.reset()
        self.source.report()
        self.decoder.known_ids |= self.source.ids
        self.decoder.origin_schemas = origin_schemas(p.policy for p in plans.values())
        self.pipeline.compiled = self._routes(plans)
        self.pipeline.plans = plans
        log.info("policies reloaded", versions={c: p.policy.version for c, p in plans.items()})
        return True

    def _routes(self, plans) -> CompiledRoutes | None:
        """The compiled core's routes for ``plans`` (engine "compiled"); a source it does not take is logged and
        decided by the reference."""
        if self.engine != "compiled":
            return None
        routes = CompiledRoutes(plans, self.secrets, self.decoder, validate=self._validate)
        if routes.refused:
            log.warning("compiled core: sources left to the reference", sources=routes.refused)
        return routes

    # ------------------------------------------------------------------ one batch

    def _forward(self, msgs: list) -> None:
        """One batch: the pipeline's outputs and the consumed offsets in one transaction; done again without
        the records that could not be produced."""
        try:
            batch = in_records(msgs, self.client_errors.event)
        except BaseException:
            self._rewind(msgs)
            raise
        for _attempt in range(2 * len(batch) + 2):
            try:
                now_ms = int(time.time() * 1000)
                paused = self.reciprocity.current({c: p.policy for c, p in self.partners.items()}, now_ms)
                t0 = time.perf_counter()
                result = self.pipeline.process(batch, now_ms, self.poison, paused)
                self._process_ms = round((time.perf_counter() - t0) * 1000, 1)
            except BaseException:
                self._rewind(msgs)
                raise
            if not result.outputs and not result.offsets:  # nothing to produce or commit (partition EOF events)
                self._hold_back(result)
                return
            outcome = self.txn.run(result)
            if outcome.committed:
                self._committed(result)
                return
            if not outcome.refused:
                delay = self._abort_backoff.next()
                log.warning("transaction aborted, batch will be reprocessed", error=outcome.retry,
                            records=result.stats.records, retry_in_s=delay)
                self._rewind(msgs)
                sleep_unless(lambda: self._stop, delay)
                return
            for index, err in outcome.refused:
                self._mark_poison(result, index, err)
        raise ForwarderFault(FATAL, "producer", "a batch could not be produced even without its refused records")

    def _mark_poison(self, result: BatchResult, index: int, err) -> None:
        """The input of refused output ``index`` is dead-lettered when the batch is done again; a refused dead
        letter is sent again by reference (digest and size, no bytes); a refused one of those is the end."""
        coord, out = result.source_of(index), result.outputs[index]
        before = self.poison.get(coord)
        why = f"{out.topic} refused the record: {describe(err)}"
        if out.topic == DEADLETTER_TOPIC:
            if before is not None and before.by_reference:
                raise ForwarderFault(FATAL, "producer", f"the dead letter of {coord} was refused even by reference: "
                                                        f"{describe(err)}", err)
            h = {k: (v or b"").decode(errors="replace") for k, v in out.headers or []}
            poison = Poison(h.get("liaison.dlq.stage", "produce"), f"{h.get('liaison.dlq.error', '')}; {why}"[:900],
                            by_reference=True)
        else:
            poison = Poison("produce", why[:900])
        self.poison[coord] = poison
        log.warning("record could not be produced, batch done again without it", source=f"{coord[0]}/{coord[1]}/"
                    f"{coord[2]}", output_topic=out.topic, code=err.name(), error=err.str(), stage=poison.stage,
                    by_reference=poison.by_reference)

    def _committed(self, result: BatchResult) -> None:
        self._abort_backoff.reset()
        self.last_commit = self.last_progress = time.monotonic()
        for coord in [c for c in self.poison if result.offsets.get((c[0], c[1]), -1) > c[2]]:
            del self.poison[coord]
        self._hold_back(result)
        self.totals.add(result.stats)
        self._log_batch(result.stats)
        for listener in self.listeners:
            listener(result.stats)

    # ------------------------------------------------------------------ pauses (holds, registry)

    def _hold_back(self, result: BatchResult) -> None:
        """Stop each partition at its first record not done (its offset is not committed past it) until its
        time: a hold record's due time, the registry's next retry."""
        for (topic, part), (offset, at_ms) in result.pauses.items():
            tp = TopicPartition(topic, part, offset)
            self.consumer.pause([tp])
            self.consumer.seek(tp)  # drops what was fetched after it: it comes again on resume
            self._paused[(topic, part)] = at_ms
        if result.hold_paused:
            log.info("hold paused", partitions={f"{t}/{p}": due for (t, p), (_o, due) in result.hold_paused.items()})
        if result.registry_paused:
            log.warning("registry unavailable, partitions paused", error=result.registry_error,
                        partitions={f"{t}/{p}": o for (t, p), (o, _a) in result.registry_paused.items()},
                        retry_in_ms=min(a for _o, a in result.registry_paused.values()) - int(time.time() * 1000))

    def _resume_due(self) -> None:
        if not self._paused:
            return
        now_ms = int(time.time() * 1000)
        due = [tp for tp, at_ms in self._paused.items() if at_ms <= now_ms]
        if due:
            self.consumer.resume([TopicPartition(t, p) for t, p in due])
            for tp in due:
                del self._paused[tp]

    def _assigned(self, consumer, partitions) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}

    def _revoked(self, consumer, partitions) -> None:
        for tp in partitions:
            self._paused.pop((tp.topic, tp.partition), None)
            self.assigned.discard((tp.topic, tp.partition))

    @property
    def fault(self) -> ForwarderFault | None:
        return self.client_errors.fault

    @property
    def paused(self) -> dict[tuple[str, int], int]:
        """Hold partitions waiting for a record to fall due -> its due time (ms)."""
        return {tp: at for tp, at in self._paused.items() if tp[0] == HOLD_TOPIC}

    @property
    def registry_paused(self) -> dict[tuple[str, int], int]:
        """Internal partitions waiting for the registry -> when it is asked again (ms)."""
        return {tp: at for tp, at in self._paused.items() if tp[0] != HOLD_TOPIC}

    # ------------------------------------------------------------------ rewinds

    def _rewind(self, msgs: list) -> None:
        rewind(self.consumer, msgs)

    # ------------------------------------------------------------------ main loop

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: self.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: self.stop())
        signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload())

    def stop(self) -> None:
        self._stop = True

    def request_reload(self) -> None:
        self._reload = True

    def run(self, max_idle: float | None = None, duration: float | None = None,
            poll_timeout: float = 0.5) -> BatchStats:
        # partner-origin topics by pattern: a partner added later is consumed without a restart
        self.consumer.subscribe(list(INTERNAL_TOPICS) + [ORIGIN_PATTERN, HOLD_TOPIC], on_assign=self._assigned,
                                on_revoke=self._revoked, on_lost=self._revoked)
        log.info("forwarder started", transactional_id=self.transactional_id, group=self.group_id, engine=self.engine,
                 partners={c: p.policy.version for c, p in self.partners.items()})
        # Start-up objects (schemas, policies, clients) live as long as the process: keep the collections that
        # each batch's outputs trigger from walking them again and again.
        gc.freeze()
        started = last_data = time.monotonic()
        try:
            while not self._stop:
                self.loop_at = now = time.monotonic()
                if self._reload or (self._reload_at is not None and now >= self._reload_at):
                    self._reload = False
                    self.reload_policies()
                self._resume_due()
                msgs = kafka.consume_batch(self.consumer, self.batch_size, poll_timeout, self.batch_linger)
                if self.client_errors.fault is not None:
                    raise self.client_errors.fault
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    self._stop = True
                if not msgs:
                    self.last_progress = now  # caught up: nothing waits to be committed
                    if max_idle is not None and now - last_data >= max_idle:
                        break
                    continue
                last_data = now
                if self.first_batch_at is None:
                    self.first_batch_at = time.perf_counter()
                self._forward(msgs)
        except ForwarderFault as f:
            self.client_errors.fault = f
            raise
        finally:
            self.close()
        return self.totals

    def _log_batch(self, stats: BatchStats) -> None:
        log.info("batch committed", records=stats.records, dead_lettered=stats.dead_lettered, held=stats.held,
                 process_ms=self._process_ms, **self.txn.phases_ms,
                 released_from_hold=stats.released_from_hold, partners=stats.per_partner(),
                 **{k: n for k, n in (("hold_dead_lettered", stats.hold_dead_lettered),
                                      ("hold_skipped", stats.hold_skipped)) if n},
                 **({"dead_letter_stages": dict(stats.stages)} if stats.stages else {}))

    def _close_clients(self) -> None:
        close_clients({"consumer": self.consumer.close, "ledger consumer": self.reciprocity.close}, self.producer,
                      self.txn.stuck, log)

    def close(self) -> None:
        self._close_clients()
        log.info("forwarder stopped", records=self.totals.records, dead_lettered=self.totals.dead_lettered,
                 held=self.totals.held, released_from_hold=self.totals.released_from_hold,
                 still_paused={f"{t}/{p}": due for (t, p), due in self._paused.items()})

"""``liaison ledger run``: the two audit topics in, the changed hour buckets out to liaison.ledger, exactly once.

    start     producer init_transactions (transactional.id liaison-ledger-<instance>): a previous instance with
              the same id is fenced and its open transaction aborted, so the changelog's last stable offset is
              final; then the changelog is read (read_committed) to its end: the state
    a batch   consume both audits (read_committed: aborted audits are never seen), decode, count
              (:mod:`operations.ledger.evaluate`), stage the new totals of the buckets that changed
    one txn   the changed buckets (their totals) to liaison.ledger + the consumed offsets
              (send_offsets_to_transaction, group liaison-ledger), commit; only then is the state updated.
              Aborted (a transient error): rewind to the batch, consume it again after a backoff

Because a bucket's record is its total and the offsets commit with it, a kill -9 at any point loses nothing and
counts nothing twice: the restarted instance reads the committed totals and resumes after the committed offsets.

One instance at a time: it assigns itself every partition of both audits (no rebalancing, so a restart resumes at
once), and a second instance with the same ``--instance`` fences the first. Two instances with different names
would each count everything and overwrite each other's totals; do not run them.

The transaction loop is the forwarder's pattern (consumers/shell/txn.py) cut to what a ledger needs: its
outputs are a few small records of our own, so there is no refused-record path. The forwarder's module lives in
``consumers``, above ``operations`` in the layering (tests/unit/test_layering.py), hence not imported.
"""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from core import kafka, serde
from core.logs import get_logger
from core.settings import Settings, get_settings
from core.topics import LEDGER_TOPIC
from operations.ledger.audits import AUDIT_TOPICS, AuditDecoder, RegistryAway, Unreadable, entries_of
from operations.ledger.changelog import read_to_end
from operations.ledger.evaluate import LedgerState
from operations.ledger.model import BucketKey, Figures, encode_key, encode_value

__all__ = ["FATAL", "FINAL", "LEDGER_PRINCIPAL", "LedgerFault", "LedgerService"]

log = get_logger("operations.ledger")

#: The ledger's principal (deploy/acls.yaml): READ both audits, READ+WRITE liaison.ledger.
LEDGER_PRINCIPAL = "ledger"
GROUP = "liaison-ledger"
FINAL, FATAL = "final", "fatal"
CALL_TIMEOUT_S = 30.0
#: a transaction's retries (send offsets, commit) stop after this long (below transaction.timeout.ms, 60 s)
TRANSACTION_BOUND_S = 45.0
_FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
                     KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED})


class LedgerFault(Exception):
    """The ledger cannot go on with these clients: ``final`` (fenced by another instance: exit 3) or ``fatal``."""

    def __init__(self, kind: str, what: str):
        super().__init__(what)
        self.kind, self.what = kind, what


def _fault(err, what: str) -> LedgerFault:
    kind = FINAL if err.code() in _FENCED else FATAL
    return LedgerFault(kind, f"{what}: {err.name()}: {err.str()}")


class _Abort(Exception):
    pass


class LedgerService:
    def __init__(self, settings: Settings | None = None, instance: str = "0", group_id: str = GROUP,
                 principal: str = LEDGER_PRINCIPAL, batch_size: int = 2000, restore_timeout: float = 120.0,
                 pause_before_commit: float = 0.0, consumer_conf: dict | None = None,
                 producer_conf: dict | None = None):
        self.settings = settings or get_settings()
        self.transactional_id = f"liaison-ledger-{instance}"
        self.group_id, self.batch_size = group_id, batch_size
        #: test hook: seconds to wait with the transaction open, its records sent, before committing
        self.pause_before_commit = pause_before_commit
        self.decoder = AuditDecoder(serde.registry_client(self.settings, principal=principal, timeout=5.0, retries=1))
        self.lock = threading.Lock()  # guards state and counters against the metrics thread
        self.counters = {"records": 0, "given": 0, "received": 0, "ignored": 0, "unreadable": 0,
                         "transactions": 0, "aborts": 0, "buckets_written": 0}
        self.consumed: dict[str, int] = {t: 0 for t in AUDIT_TOPICS}
        self.fault: LedgerFault | None = None
        self.stopping = False
        self.loop_at = time.monotonic()
        self.last_commit: float | None = None  # time.time() of the last commit
        self.started_at: float | None = None
        self.producer = kafka.producer({
            "transactional.id": self.transactional_id, "transaction.timeout.ms": 60000, "linger.ms": 5,
            "error_cb": self._error_cb, **(producer_conf or {})}, self.settings, principal=principal)
        try:
            self.producer.init_transactions(60)
        except KafkaException as e:
            raise _fault(e.args[0], "init_transactions") from None
        t = time.monotonic()
        restore = kafka.consumer(f"{group_id}-restore-{uuid.uuid4().hex[:8]}", {
            "isolation.level": "read_committed", "enable.partition.eof": True, "enable.auto.commit": False},
            self.settings, principal=principal)
        try:
            self.state = read_to_end(restore, LEDGER_TOPIC, restore_timeout)
        finally:
            restore.close()
        log.info("ledger restored", buckets=len(self.state), seconds=round(time.monotonic() - t, 2),
                 transactional_id=self.transactional_id)
        self.consumer = kafka.consumer(group_id, {
            "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "error_cb": self._error_cb, **(consumer_conf or {})}, self.settings, principal=principal)

    # ------------------------------------------------------------------ errors

    def _error_cb(self, err) -> None:
        if err.fatal() and self.fault is None:
            self.fault = _fault(err, "client")
        log.warning("kafka client error", code=err.name(), error=err.str(), fatal=err.fatal(),
                    transactional_id=self.transactional_id)

    def stop(self) -> None:
        self.stopping = True

    def snapshot(self) -> tuple[LedgerState, dict, dict]:
        with self.lock:
            return LedgerState(self.state.buckets), dict(self.counters), dict(self.consumed)

    # ------------------------------------------------------------------ main loop

    def _assign(self) -> None:
        md = self.consumer.list_topics(timeout=10)
        tps = []
        for topic in AUDIT_TOPICS:
            tmd = md.topics.get(topic)
            if tmd is None or tmd.error is not None:
                raise LedgerFault(FATAL, f"topic {topic} not found (liaison topics apply creates it)")
            tps += [TopicPartition(topic, p) for p in sorted(tmd.partitions)]
        self.consumer.assign(tps)  # offset unset: the group's committed offset, else the beginning
        log.info("ledger assigned", partitions=len(tps), group=self.group_id)

    def run(self, max_idle: float | None = None, poll_timeout: float = 0.5) -> None:
        self._assign()
        self.started_at = time.time()
        log.info("ledger started", transactional_id=self.transactional_id, group=self.group_id,
                 buckets=len(self.state))
        backoff, last_data = 0.5, time.monotonic()
        try:
            while not self.stopping:
                self.loop_at = time.monotonic()
                if self.fault is not None:
                    raise self.fault
                msgs = kafka.consume_batch(self.consumer, self.batch_size, poll_timeout)
                records = self._records(msgs)
                if not records:
                    if max_idle is not None and time.monotonic() - last_data >= max_idle:
                        break
                    continue
                last_data = time.monotonic()
                if self._batch(records):
                    backoff = 0.5
                else:
                    self._rewind(records)
                    self._sleep(backoff)
                    backoff = min(30.0, backoff * 2)
        finally:
            self.close()

    def _records(self, msgs: list) -> list:
        out = []
        for m in msgs:
            err = m.error()
            if err is None:
                out.append(m)
            elif err.fatal():
                raise _fault(err, "consumer")
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error event", code=err.name(), error=err.str())
        return out

    def _batch(self, records: list) -> bool:
        """Count one batch and commit it with its offsets; False when it must be consumed again."""
        entries, offsets, tally = [], {}, {"given": 0, "received": 0, "ignored": 0, "unreadable": 0}
        consumed: dict[str, int] = {}
        for m in records:
            topic = m.topic()
            offsets[(topic, m.partition())] = m.offset() + 1
            consumed[topic] = consumed.get(topic, 0) + 1
            try:
                found = entries_of(topic, self.decoder.decode(topic, m.value()))
            except Unreadable as e:
                tally["unreadable"] += 1
                log.warning("audit record unreadable, skipped", topic=topic, partition=m.partition(),
                            offset=m.offset(), error=str(e))
                continue
            except RegistryAway as e:
                log.warning("registry unavailable, batch will be consumed again", error=str(e))
                return False
            for entry in found:  # one per decision the record carries
                if entry is None:
                    tally["ignored"] += 1
                else:
                    tally[entry[0].direction] += 1
                    entries.append(entry)
        changed = self.state.stage(entries)
        if not self._transaction(changed, offsets, len(records)):
            return False
        with self.lock:
            self.state.update(changed)
            for k, n in tally.items():
                self.counters[k] += n
            self.counters["records"] += len(records)
            self.counters["transactions"] += 1
            self.counters["buckets_written"] += len(changed)
            for t, n in consumed.items():
                self.consumed[t] += n
        self.last_commit = time.time()
        log.info("ledger batch committed", records=len(records), buckets=len(changed), **tally)
        return True

    # ------------------------------------------------------------------ the transaction

    def _transaction(self, changed: dict[BucketKey, Figures], offsets: dict, n: int) -> bool:
        try:
            self.producer.begin_transaction()
        except KafkaException as e:
            raise _fault(e.args[0], "begin_transaction") from None
        deadline = time.monotonic() + TRANSACTION_BOUND_S
        try:
            for key, fig in changed.items():
                self._produce(encode_key(key), encode_value(fig))
            if self.pause_before_commit:
                self.producer.flush(CALL_TIMEOUT_S)
                log.info("ledger transaction open, pausing before commit", records=n, buckets=len(changed),
                         seconds=self.pause_before_commit)
                self._sleep(self.pause_before_commit)
            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            meta = self.consumer.consumer_group_metadata()
            self._retrying("send_offsets_to_transaction",
                           lambda: self.producer.send_offsets_to_transaction(tps, meta, CALL_TIMEOUT_S), deadline)
            self._retrying("commit_transaction", lambda: self.producer.commit_transaction(CALL_TIMEOUT_S), deadline)
            return True
        except _Abort as a:
            with self.lock:
                self.counters["aborts"] += 1
            log.warning("ledger transaction aborted, batch will be consumed again", error=str(a))
            self._abort()
            return False

    def _produce(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(LEDGER_TOPIC, value, key)
                return
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as e:
                err = e.args[0]
                if err.fatal():
                    raise _fault(err, "produce") from None
                raise _Abort(f"produce: {err.name()}: {err.str()}") from None

    def _retrying(self, what: str, call, deadline: float) -> None:
        delay = 0.5
        while True:
            try:
                call()
                return
            except KafkaException as e:
                err = e.args[0]
                if err.fatal() or (err.code() in _FENCED and not err.txn_requires_abort()):
                    raise _fault(err, what) from None
                if err.txn_requires_abort() or not err.retriable() or time.monotonic() + delay > deadline \
                        or self.stopping:
                    raise _Abort(f"{what}: {err.name()}: {err.str()}") from None
                log.warning("transaction call retried", call=what, error=err.str(), retry_in_s=delay)
                time.sleep(delay)
                delay = min(5.0, delay * 2)

    def _abort(self) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                self.producer.abort_transaction(CALL_TIMEOUT_S)
                return
            except KafkaException as e:
                err = e.args[0]
                if err.fatal() or time.monotonic() > deadline:
                    raise _fault(err, "abort_transaction") from None
                time.sleep(1.0)

    def _rewind(self, records: list) -> None:
        first: dict[tuple[str, int], int] = {}
        for m in records:
            k = (m.topic(), m.partition())
            first[k] = min(first.get(k, m.offset()), m.offset())
        for (t, p), o in first.items():
            self.consumer.seek(TopicPartition(t, p, o))

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            self.loop_at = time.monotonic()
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def close(self) -> None:
        try:
            self.consumer.close()
        except Exception as e:  # noqa: BLE001 - a failed consumer refuses its close
            log.warning("consumer close failed", error=str(e))
        try:
            self.producer.flush(10)
        except Exception as e:  # noqa: BLE001
            log.warning("producer flush at close failed", error=str(e))
        log.info("ledger stopped", **self.counters)

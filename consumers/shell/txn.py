"""One batch's transaction: begin, produce the outputs in order, send the offsets, commit; every failure sorted.

Duck-typed over the producer (begin/commit/abort_transaction, send_offsets_to_transaction, produce, flush,
poll) so that the unit tests drive it with a fake. The producer is made with a delivery callback for failed
deliveries only (``delivery.report.only.error``: nothing is called for a record that is delivered):
:meth:`Transactions.delivery_failed` is that callback.

    a record refused (too large, invalid: faults.RECORD), at produce() or in its delivery report
        -> abort; Outcome.refused lists (output index, error): the service marks their inputs poison and does
           the batch again, without them, in a fresh transaction
    abortable, or a delivery failing for the cluster's sake (timed out, unknown topic, no ACL)
        -> abort; Outcome.retry says why: the service rewinds to the batch and consumes it again after a backoff
    retriable on send_offsets / commit (timeouts, lost coordinator)
        -> the same call again with backoff, for at most ``commit_bound`` seconds (below the transaction timeout),
           then abort as above
    fatal, fenced -> ForwarderFault (faults.FATAL / faults.FINAL)

The blocking transactional calls (begin aside) run on a worker thread under a watchdog of their timeout plus
:data:`GRACE_S`: librdkafka does not always honour the timeout of send_offsets_to_transaction (it waits for a
group coordinator that is gone after a broker restart: confluentinc/librdkafka#5456, #5511). A call that does
not return is a fatal fault (``stuck``): the clients are left alone and new ones built; the new producer's
init_transactions fences the stuck one and aborts its transaction, so nothing is committed twice.
"""

from __future__ import annotations

import time
import threading
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import KafkaException, TopicPartition

from consumers.shell.faults import (ABORTABLE, FATAL, FINAL, RECORD, Backoff, ForwarderFault, classify, describe,
                                    sleep_unless)
from consumers.shell.records import OutRecord
from core.logs import get_logger

__all__ = ["Batch", "Outcome", "Transactions"]


class Batch(Protocol):
    """What a service's pipeline gives one transaction (the forwarder's and the ingress guard's BatchResult)."""

    outputs: list[OutRecord]
    offsets: dict[tuple[str, int], int]  # (topic, partition) -> next offset

    def source_of(self, index: int) -> tuple[str, int, int]:
        """The consumed record (topic, partition, offset) that output ``index`` comes from."""


def _kafka_error(e: BaseException):
    """The KafkaError behind ``e`` (a KafkaException, or an exception it caused), else None."""
    while e is not None:
        if isinstance(e, KafkaException) and e.args:
            return e.args[0]
        e = e.__cause__ or e.__context__
    return None

log = get_logger("liaison.forwarder")

#: seconds a transactional call may overrun its own timeout before the producer counts as stuck
GRACE_S = 15.0
CALL_TIMEOUT_S = 30
#: seconds a transaction may take from begin to commit, retries included (below transaction.timeout.ms, 60 s)
TRANSACTION_BOUND_S = 45.0


@dataclass
class Outcome:
    committed: bool = False
    refused: list[tuple[int, object]] = field(default_factory=list)  # (output index, KafkaError)
    retry: str | None = None  # aborted for a transient reason: consume the batch again after a backoff


class Transactions:
    def __init__(self, producer, group_metadata, stopping=lambda: False, bound: float = TRANSACTION_BOUND_S,
                 abort_bound: float = 120.0, transactional_id: str = ""):
        self.producer = producer
        self.group_metadata = group_metadata  # () -> the consumer's group metadata
        self.stopping = stopping
        #: seconds a transaction may take from begin to commit (below transaction.timeout.ms, 60 s), retries included
        self.bound, self.abort_bound = bound, abort_bound
        self.transactional_id = transactional_id
        self._failed: list[tuple[object, str, bytes | None, bytes | None]] = []
        self.stuck: str | None = None  # a call that never returned: the producer must not be used again
        self.phases_ms: dict[str, float] = {}

    def delivery_failed(self, err, msg) -> None:
        """The producer's on_delivery (failed deliveries only)."""
        if err is not None:
            self._failed.append((err, msg.topic(), msg.key(), msg.value()))

    # ------------------------------------------------------------------ one batch

    def run(self, result: Batch) -> Outcome:
        self._failed.clear()
        deadline = time.monotonic() + self.bound
        try:
            self._call("producer", self.producer.begin_transaction)
        except _Retriable as r:
            raise ForwarderFault(FATAL, "producer", f"begin_transaction: {r.why}") from None
        log.info("batch begun", records=result.stats.records, outputs=len(result.outputs),
                 released_from_hold=result.stats.released_from_hold, transactional_id=self.transactional_id)
        t0 = time.perf_counter()
        problem = self._produce(result)
        t1 = time.perf_counter()
        if problem is None:
            problem = self._flush(deadline)
        t2 = time.perf_counter()
        if problem is None:
            problem = self._failures(result)
        if problem is None:
            problem = self._commit(result, deadline)
        #: the last transaction's phases, ms: handing the records to the producer, waiting for their
        #: acknowledgments, sending the offsets and committing
        self.phases_ms = {"produce_ms": round((t1 - t0) * 1000, 1), "flush_ms": round((t2 - t1) * 1000, 1),
                          "commit_ms": round((time.perf_counter() - t2) * 1000, 1)}
        if problem is None:
            return Outcome(committed=True)
        self.abort()
        return Outcome(refused=problem) if isinstance(problem, list) else Outcome(retry=problem)

    def _produce(self, result: Batch):
        """None when every output was handed to the producer; else [(index, error)] for a refused record, or
        why to retry."""
        produce, poll = self.producer.produce, self.producer.poll
        for i, out in enumerate(result.outputs):
            while True:
                try:
                    # a partner record's timestamp is its envelope's; 0 (None): the producer stamps it
                    produce(out.topic, out.value, out.key, headers=out.headers, timestamp=out.timestamp or 0)
                    break
                except BufferError:  # the local queue is full: let it drain
                    poll(0.05)
                except (KafkaException, SystemError) as e:  # SystemError: see _flush
                    err = _kafka_error(e)
                    if err is None:
                        raise
                    kind = classify(err, "producer")
                    if kind == RECORD:
                        return [(i, err)]
                    if kind in (FATAL, FINAL):
                        raise ForwarderFault(kind, "producer", f"produce to {out.topic}: {describe(err)}", err) from None
                    return f"produce to {out.topic}: {describe(err)}"
        return None

    def _flush(self, deadline: float) -> str | None:
        while True:
            try:
                if self.producer.flush(5) == 0:
                    return None
            except (KafkaException, SystemError) as e:
                # a fatal error (fenced by a newer instance) surfaces from flush itself, or as a SystemError
                # raised by the delivery callback that was running when it did (its cause is the KafkaException)
                err = _kafka_error(e)
                if err is None:
                    raise
                kind = classify(err, "producer")
                if kind in (FATAL, FINAL):
                    raise ForwarderFault(kind, "producer", f"flush: {describe(err)}", err) from None
                return f"flush: {describe(err)}"
            if time.monotonic() > deadline:
                return f"records not delivered within {self.bound:.0f} s"

    def _failures(self, result: Batch):
        """Failed delivery reports -> (output index, error) when records were refused; else why to retry."""
        if not self._failed:
            return None
        refused, other = [], []
        taken: set[int] = set()
        for err, topic, key, value in self._failed:
            kind = classify(err, "producer")
            if kind == RECORD:
                i = next((i for i, o in enumerate(result.outputs) if i not in taken and o.topic == topic
                          and o.key == key and o.value == value), None)
                if i is not None:
                    taken.add(i)
                    refused.append((i, err))
                    continue
            other.append(f"{topic}: {describe(err)}")
        if refused:
            return refused
        return f"{len(other)} record(s) not delivered: {other[0]}"

    def _commit(self, result: Batch, deadline: float) -> str | None:
        tps = [TopicPartition(t, p, o) for (t, p), o in result.offsets.items()]
        try:
            if tps:
                meta = self.group_metadata()
                self._retrying("send offsets", lambda: self._bounded("send_offsets_to_transaction", lambda: (
                    self.producer.send_offsets_to_transaction(tps, meta, CALL_TIMEOUT_S))), deadline)
            self._retrying("commit", lambda: self._bounded("commit_transaction", lambda: (
                self.producer.commit_transaction(CALL_TIMEOUT_S))), deadline)
        except _Abort as a:
            return a.why
        return None

    # ------------------------------------------------------------------ calls

    def _retrying(self, what: str, call, deadline: float) -> None:
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                return self._call("producer", call)
            except _Abort:
                raise
            except _Retriable as r:
                if time.monotonic() >= deadline or self.stopping():
                    raise _Abort(f"{what}: {r.why}") from None
                delay = backoff.next()
                log.warning("transaction call retried", call=what, error=r.why, retry_in_s=delay,
                            transactional_id=self.transactional_id)
                sleep_unless(self.stopping, delay)

    def _bounded(self, what: str, call):
        """``call()`` on the worker thread; ForwarderFault (stuck) when it overruns its timeout by GRACE_S."""
        box: list = []

        def target():
            try:
                box.append((True, call()))
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                box.append((False, e))

        # a daemon thread: one that never returns must not keep the process from exiting
        worker = threading.Thread(target=target, daemon=True, name=f"forwarder-{what}")
        worker.start()
        worker.join(CALL_TIMEOUT_S + GRACE_S)
        if not box:
            self.stuck = (f"{what} did not return within {CALL_TIMEOUT_S + GRACE_S:.0f} s although given "
                          f"{CALL_TIMEOUT_S} s (librdkafka waiting for a coordinator that is gone: "
                          f"confluentinc/librdkafka#5456, #5511)")
            raise ForwarderFault(FATAL, "producer", self.stuck)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _call(self, client: str, call):
        try:
            return call()
        except KafkaException as e:
            err = e.args[0]
            kind = classify(err, client)
            if kind in (FATAL, FINAL):
                raise ForwarderFault(kind, client, describe(err), err) from None
            if kind == ABORTABLE:
                raise _Abort(describe(err)) from None
            raise _Retriable(describe(err)) from None  # retriable, or not known to be worse

    def abort(self) -> None:
        """Abort the open transaction, retrying a timed-out abort for at most ``abort_bound`` seconds."""
        deadline = time.monotonic() + self.abort_bound
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                self._call("producer", lambda: self._bounded("abort_transaction", lambda: (
                    self.producer.abort_transaction(CALL_TIMEOUT_S))))
                return
            except (_Retriable, _Abort) as r:
                if time.monotonic() >= deadline:
                    raise ForwarderFault(FATAL, "producer", f"abort_transaction did not complete within "
                                                            f"{self.abort_bound:.0f} s: {r.why}") from None
                log.warning("transaction abort retried", error=r.why, transactional_id=self.transactional_id)
                sleep_unless(lambda: False, backoff.next())


class _Retriable(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class _Abort(_Retriable):
    pass

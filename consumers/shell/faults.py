"""What a Kafka client error means for the forwarder, and what it does about it. No client in here.

Every error of the consumer and the producer (their ``error_cb``, the error events a consume returns, the
exceptions of the transactional calls, failed delivery reports) is classified into one kind:

    final       the producer was fenced by another instance with the same transactional.id (that instance is
                the forwarder now), or may not use its transactional.id: exit with one line; never restarted
                (exit 3; the systemd unit's RestartPreventExitStatus)
    fatal       the client cannot go on (a static consumer fenced after a broker restart, a producer's fatal
                idempotence error): this instance's clients are closed; ``liaison forward --supervise`` builds new
                ones with backoff, otherwise exit 1 (systemd restarts it)
    record      one record the broker (or librdkafka, before sending) refuses: too large, invalid. The
                transaction is aborted and the batch done again with that record's input dead-lettered
    abortable   the transaction must be aborted: abort, rewind, consume the batch again
    retriable   transient (brokers down, timeouts, lost coordinator): keep going with backoff; librdkafka
                reconnects by itself
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError

__all__ = ["ABORTABLE", "Backoff", "ClientErrors", "FATAL", "FINAL", "ForwarderFault", "RECORD", "RECORD_CODES", "RETRIABLE",
           "classify", "describe", "sleep_unless"]

FINAL, FATAL, RECORD, ABORTABLE, RETRIABLE = "final", "fatal", "record", "abortable", "retriable"

#: errors of one record, not of the transaction or the cluster
RECORD_CODES = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD,
                          KafkaError.INVALID_MSG, KafkaError.INVALID_MSG_SIZE, KafkaError.INVALID_TIMESTAMP})
_FENCED_ALWAYS = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED})
_FENCED = _FENCED_ALWAYS | {KafkaError.INVALID_PRODUCER_EPOCH}  # fenced when fatal (else an epoch bump)
_REFUSED = frozenset({KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED})


def classify(err, client: str) -> str:
    """``err``: a KafkaError (or anything with its code/fatal/retriable/txn_requires_abort); ``client``:
    "producer" or "consumer" (a fenced consumer is a static member replaced, recoverable by new clients).

    librdkafka reports a client's fatal error to ``error_cb`` (and as a consumer error event) with the code
    ``_FATAL`` and a KafkaError whose ``fatal()`` is False (confluent-kafka builds it from the code and the
    reason only; the underlying error is in the text: "Fatal error: Broker: Static consumer fenced by other
    consumer with same group.instance.id"). A consumer's ``_FATAL`` is fatal: the consumer delivers nothing
    any more (a static member fenced after its session timed out during a broker outage: its rejoin replaced
    its own old member id), new clients go on. A producer's ``_FATAL`` is left to its next transactional call,
    which raises the underlying error with ``fatal()`` true and is sorted from that (fenced by another instance:
    final, never restarted; a recoverable fault would start a new producer that fences the instance that took
    over)."""
    code = err.code()
    if client == "consumer" and code == KafkaError._FATAL:
        return FATAL
    if client == "producer" and code in _REFUSED:
        return FINAL
    if client == "producer" and code in _FENCED and (err.fatal() or (code in _FENCED_ALWAYS and
                                                                     not err.txn_requires_abort())):
        return FINAL  # an abortable fence is the coordinator aborting this transaction, not another instance
    if err.fatal():
        return FATAL
    if code in RECORD_CODES:
        return RECORD
    if client == "producer" and err.txn_requires_abort():
        return ABORTABLE
    return RETRIABLE


def describe(err) -> str:
    return f"{err.name()}: {err.str()}"


class ForwarderFault(Exception):
    """The forwarder cannot go on with these clients. ``kind`` final (exit, never restarted) or fatal (new
    clients may go on: ``recoverable``)."""

    def __init__(self, kind: str, client: str, what: str, err=None):
        super().__init__(what)
        self.kind, self.client, self.what, self.err = kind, client, what, err

    @property
    def recoverable(self) -> bool:
        return self.kind != FINAL

    @property
    def code(self) -> str | None:
        return self.err.name() if self.err is not None else None


class Backoff:
    """Exponential backoff: ``first`` seconds doubling per step up to ``cap``; ``reset()`` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0):
        self.first, self.cap, self.steps = first, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2 ** self.steps)
        self.steps += 1
        return delay

    def reset(self) -> None:
        self.steps = 0


def sleep_unless(stop, seconds: float, step: float = 0.2) -> None:
    """Sleep ``seconds`` in steps, returning early once ``stop()`` is true (a signal asked to stop)."""
    end = time.monotonic() + seconds
    while not stop() and time.monotonic() < end:
        time.sleep(min(step, max(0.0, end - time.monotonic())))


class ClientErrors:
    """The clients' error_cb and the consumer's error events: each error classified, counted per (client,
    kind), passed to ``listeners(client, kind, err)`` and logged (``kafka client error``; one code of one
    client at most twice a minute, fatal ones always). A fatal error_cb is kept as ``fault``: the service
    raises it after the call that served it."""

    def __init__(self, log, transactional_id: str):
        self.log, self.transactional_id = log, transactional_id
        self.counts: dict[tuple[str, str], int] = {}
        self.listeners: list = []
        self.fault: ForwarderFault | None = None
        self._logged: dict[tuple[str, int], float] = {}

    def callback(self, client: str):
        def error_cb(err) -> None:
            kind = self.report(client, err)
            if (err.fatal() or kind == FATAL) and self.fault is None:
                self.fault = ForwarderFault(kind, client, describe(err), err)
        return error_cb

    def event(self, err) -> None:
        self.report("consumer", err)

    def report(self, client: str, err) -> str:
        kind = classify(err, client)
        self.counts[(client, kind)] = self.counts.get((client, kind), 0) + 1
        for listener in self.listeners:
            listener(client, kind, err)
        now, key = time.monotonic(), (client, err.code())
        fatal = err.fatal() or kind in (FATAL, FINAL)
        if now - self._logged.get(key, -1e9) >= 30 or fatal:
            self._logged[key] = now
            self.log.warning("kafka client error", client=client, kind=kind, code=err.name(), error=err.str(),
                             fatal=fatal, transactional_id=self.transactional_id)
        return kind

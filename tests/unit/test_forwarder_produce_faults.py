"""Records that cannot be produced, without a broker: a released view its derived schema cannot encode, a
record the producer or the broker refuses (too large, invalid), a dead letter refused in turn (by reference
then), the transaction's calls failing every way (a fake producer), the service's poison set doing the batch
again without the record, the sorting of client errors, and health/readiness."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumers.forwarder.reciprocity import ReciprocityPauses
from consumers.shell import faults
from consumers.shell.codec import InputDecoder
from consumers.shell.faults import FINAL, ForwarderFault, classify
from consumers.shell.health import Current, status
from consumers.forwarder.pipeline import BatchStats, InRecord, Pipeline, Poison
from consumers.forwarder.service import Forwarder
from consumers.shell.txn import Transactions
from core.topics import AUDIT_TOPIC, DEADLETTER_TOPIC, topic_for
from forwarder_support import FORWARDER, NOW, make_env, read_audits, records_of, simulated
from schemas.examples import example

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("secrets"))


def pipeline(env) -> Pipeline:
    return Pipeline(InputDecoder(env.registry), env.audit, env.plans, FORWARDER)


class Broken:
    """An Encoder that cannot encode (a view its derived schema does not fit)."""

    schema_id = 1

    def encode(self, record):
        raise ValueError("field 'callsign' is not a string")


# ---------------------------------------------------------------------------------------------- pipeline


def test_an_encoding_failure_is_a_dead_letter_with_stage_encode_for_every_partner(env):
    p = pipeline(env)
    code = next(c for c, plan in p.plans.items() if "AirTrack" in plan.encoders)
    p.plans = {c: plan for c, plan in p.plans.items()}
    plan = p.plans[code]
    p.plans[code] = type(plan)(plan.policy, plan.topics, {**plan.encoders, "AirTrack": Broken()}, plan.version_header)
    batch = records_of(env, [example("AirTrack"), example("MaritimeTrack")])
    result = p.process(batch, NOW)
    [dead] = result.dead_letters
    h = dict(dead.headers)
    assert h["liaison.dlq.stage"] == b"encode" and b"does not encode" in h["liaison.dlq.error"]
    assert (dead.key, dead.value) == (batch[0].key, batch[0].value)
    audits = [a for o in result.audits for a in read_audits(o.value)]
    assert sorted((a["partner"], a["decision"]) for a in audits if a["input_offset"] == batch[0].offset) == \
        sorted((c, "DEAD_LETTER") for c in p.plans)
    assert not [o for o in result.views if o.topic.endswith("air.track")]  # no partner got a view of it
    assert result.stats.dead_lettered == 1 and result.stats.stages == {"encode": 1}
    assert sum(n for (c, t, d), n in result.stats.counts.items() if t == "AirTrack") == 0
    assert result.offsets[(batch[0].topic, batch[0].partition)] == batch[0].offset + 1
    assert any(o.topic.endswith("naval.track") for o in result.views)  # the next input went on


def test_a_poison_input_is_dead_lettered_with_its_stage_and_the_rest_of_the_batch_is_unchanged(env):
    batch = records_of(env, simulated(1.0, seed=4))
    clean = pipeline(env).process(batch, NOW)
    bad = batch[3]
    poison = {(bad.topic, bad.partition, bad.offset): Poison("produce", "liaison.partner.usa.x refused the record: "
                                                                        "MSG_SIZE_TOO_LARGE: Broker: too large")}
    result = pipeline(env).process(batch, NOW, poison)
    [dead] = result.dead_letters
    assert dict(dead.headers)["liaison.dlq.stage"] == b"produce" and dead.value == bad.value
    assert result.offsets == clean.offsets
    others = [o for o in clean.outputs if o not in [clean.outputs[i] for i in range(len(clean.outputs))
                                                    if clean.source_of(i) == (bad.topic, bad.partition, bad.offset)]]
    assert [o for i, o in enumerate(result.outputs)
            if result.source_of(i) != (bad.topic, bad.partition, bad.offset)] == others


def test_a_dead_letter_by_reference_carries_the_digest_and_size_not_the_bytes(env):
    big = InRecord(topic_for("AirTrack"), 0, 7, b"k", b"\x07" * 999_850, [("origin", b"test")])
    poison = {(big.topic, 0, 7): Poison("framing", "magic byte is 0x07; liaison.deadletter refused the record: "
                                                   "MSG_SIZE_TOO_LARGE", by_reference=True)}
    result = pipeline(env).process([big], NOW, poison)
    [dead] = result.dead_letters
    h = dict(dead.headers)
    assert dead.value is None and h["origin"] == b"test"
    assert h["liaison.dlq.value.sha256"] == hashlib.sha256(big.value).hexdigest().encode()
    assert h["liaison.dlq.value.bytes"] == b"999850" and h["liaison.dlq.stage"] == b"framing"
    [audit] = result.audits
    assert sorted(a["partner"] for a in read_audits(audit.value)) == sorted(env.plans)


def test_every_output_knows_the_input_it_comes_from(env):
    batch = records_of(env, simulated(1.0, seed=6))
    result = pipeline(env).process(batch, NOW)
    for i, out in enumerate(result.outputs):
        t, p, o = result.source_of(i)
        if out.topic == AUDIT_TOPIC:
            for a in read_audits(out.value):
                assert (a["input_topic"], a["input_partition"], a["input_offset"]) == (t, p, o)


# ---------------------------------------------------------------------------------------------- transactions


def kerr(code, fatal=False, retriable=False, abort=False, reason="x"):
    return KafkaError(code, reason, fatal=fatal, retriable=retriable, txn_requires_abort=abort)


class FakeProducer:
    """The transactional calls; ``refuse(out)`` -> a KafkaError for a record's delivery report (or None);
    ``raise_on``: call name -> list of errors raised by successive calls."""

    def __init__(self, txn_ref, refuse=lambda topic, value: None, sync_refuse=lambda topic, value: None):
        self.txn_ref, self.refuse, self.sync_refuse = txn_ref, refuse, sync_refuse
        self.raise_on: dict[str, list] = {}
        self.log: list[str] = []
        self.pending: list = []
        self.committed: list[list] = []
        self.current: list = []

    def _maybe(self, name):
        self.log.append(name)
        errors = self.raise_on.get(name)
        if errors:
            raise KafkaException(errors.pop(0))

    def begin_transaction(self):
        self._maybe("begin")
        self.current = []

    def produce(self, topic, value, key, headers=None, timestamp=0):
        err = self.sync_refuse(topic, value)
        if err is not None:
            raise KafkaException(err)
        self.current.append((topic, key, value))
        self.pending.append((topic, key, value))

    def poll(self, t=0):
        return 0

    def flush(self, t=0):
        for topic, key, value in self.pending:
            err = self.refuse(topic, value)
            if err is not None:
                self.txn_ref[0].delivery_failed(err, SimpleNamespace(topic=lambda: topic, key=lambda: key,
                                                                     value=lambda: value))
        self.pending = []
        return 0

    def send_offsets_to_transaction(self, tps, meta, timeout):
        self._maybe("send_offsets")

    def commit_transaction(self, timeout):
        self._maybe("commit")
        self.committed.append(self.current)

    def abort_transaction(self, timeout):
        self._maybe("abort")
        self.current = []


def transactions(producer_factory, **kw):
    ref = [None]
    prod = producer_factory(ref)
    t = Transactions(prod, lambda: "meta", **kw)
    ref[0] = t
    return t, prod


def test_a_refused_delivery_aborts_and_names_the_output(env):
    result = pipeline(env).process(records_of(env, simulated(0.5, seed=1)), NOW)
    target = result.outputs[3]
    t, prod = transactions(lambda ref: FakeProducer(ref, refuse=lambda topic, value: kerr(
        KafkaError.MSG_SIZE_TOO_LARGE, abort=True) if value is target.value else None))
    out = t.run(result)
    assert not out.committed and [i for i, _e in out.refused] == [3] and prod.log[-1] == "abort"


def test_a_record_refused_at_produce_aborts_and_names_the_output(env):
    result = pipeline(env).process(records_of(env, simulated(0.5, seed=1)), NOW)
    t, prod = transactions(lambda ref: FakeProducer(ref, sync_refuse=lambda topic, value: kerr(
        KafkaError.MSG_SIZE_TOO_LARGE) if topic == result.outputs[2].topic else None))
    out = t.run(result)
    assert [i for i, _e in out.refused] == [next(i for i, o in enumerate(result.outputs)
                                                 if o.topic == result.outputs[2].topic)]


def test_retriable_commits_are_retried_abortable_ones_rewind_fenced_ones_are_final(env):
    result = pipeline(env).process(records_of(env, simulated(0.5, seed=1)), NOW)
    t, prod = transactions(lambda ref: FakeProducer(ref))
    prod.raise_on["commit"] = [kerr(KafkaError._TIMED_OUT, retriable=True), kerr(KafkaError._TIMED_OUT, retriable=True)]
    assert t.run(result).committed and prod.log.count("commit") == 3
    prod.raise_on["commit"] = [kerr(KafkaError._FENCED, abort=True, reason="aborted by coordinator")]
    out = t.run(result)
    assert not out.committed and out.retry and prod.log[-1] == "abort"
    prod.raise_on["send_offsets"] = [kerr(KafkaError._FENCED, fatal=True, reason="Producer fenced by newer instance")]
    with pytest.raises(ForwarderFault) as info:
        t.run(result)
    assert info.value.kind == "final" and not info.value.recoverable
    # a delivery timed out (brokers away): not the record's fault, the batch is retried later
    t2, _ = transactions(lambda ref: FakeProducer(ref, refuse=lambda topic, value: kerr(KafkaError._MSG_TIMED_OUT)))
    out = t2.run(result)
    assert out.retry and not out.refused


def test_a_call_that_overruns_its_timeout_is_a_fatal_fault_and_the_producer_is_left_alone(env, monkeypatch):
    """librdkafka's send_offsets_to_transaction may ignore its timeout (librdkafka#5456): a watchdog."""
    import threading

    from consumers.shell import txn

    monkeypatch.setattr(txn, "CALL_TIMEOUT_S", 0.2)
    monkeypatch.setattr(txn, "GRACE_S", 0.2)
    release = threading.Event()
    result = pipeline(env).process(records_of(env, simulated(0.5, seed=1)), NOW)
    t, prod = transactions(lambda ref: FakeProducer(ref))
    prod.send_offsets_to_transaction = lambda tps, meta, timeout: release.wait(30)
    with pytest.raises(ForwarderFault) as info:
        t.run(result)
    release.set()
    assert info.value.kind == "fatal" and info.value.recoverable and "librdkafka#5456" in str(info.value)
    assert t.stuck and "abort" not in prod.log  # never called again


def test_the_service_does_the_batch_again_without_the_refused_record_then_by_reference(env):
    """A 999,850-byte value that does not decode: its dead letter is refused (too large for the dead-letter
    topic of older servers), so it goes by reference, in a fresh transaction with the rest of the batch."""
    good = records_of(env, simulated(0.5, seed=8))
    big = InRecord(good[0].topic, good[0].partition, good[-1].offset + 100, b"big", b"\x07" * 999_850, None)
    batch_msgs = [SimpleNamespace(error=lambda: None, topic=lambda r=r: r.topic, partition=lambda r=r: r.partition,
                                  offset=lambda r=r: r.offset, key=lambda r=r: r.key, value=lambda r=r: r.value,
                                  headers=lambda r=r: r.headers, timestamp=lambda r=r: (1, r.timestamp))
                  for r in good + [big]]
    fwd = Forwarder.__new__(Forwarder)
    fwd.pipeline, fwd.poison, fwd._stop, fwd._paused = pipeline(env), {}, False, {}
    fwd.totals, fwd.listeners, fwd._abort_backoff = BatchStats(), [], faults.Backoff()
    fwd.consumer = SimpleNamespace(pause=lambda tps: None, seek=lambda tp: None)
    fwd.client_errors = faults.ClientErrors(SimpleNamespace(warning=lambda *a, **k: None), "unit")
    quiet = SimpleNamespace(warning=lambda *a, **k: None, info=lambda *a, **k: None)
    fwd.reciprocity = ReciprocityPauses(lambda: None, quiet)  # no ledger here: nothing paused
    fwd.txn, prod = transactions(lambda ref: FakeProducer(ref, refuse=lambda topic, value: kerr(
        KafkaError.MSG_SIZE_TOO_LARGE, abort=True) if value is not None and len(value) > 900_000 else None))
    fwd._forward(batch_msgs)
    assert prod.log.count("abort") == 1 and prod.log.count("commit") == 1
    [committed] = prod.committed
    dead = [(t, k, v) for t, k, v in committed if t == DEADLETTER_TOPIC]
    assert dead == [(DEADLETTER_TOPIC, b"big", None)]
    assert fwd.totals.records == len(good) + 1 and fwd.totals.dead_lettered == 1
    assert fwd.poison == {}  # committed: forgotten


# ---------------------------------------------------------------------------------------------- sorting, health


@pytest.mark.parametrize("err, client, kind", [
    (kerr(KafkaError._FENCED, fatal=True, reason="Static consumer fenced by other consumer"), "consumer", "fatal"),
    (kerr(KafkaError._FENCED, fatal=True, reason="Producer fenced by newer instance"), "producer", "final"),
    (kerr(KafkaError.PRODUCER_FENCED, fatal=True), "producer", "final"),
    (kerr(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED), "producer", "final"),
    (kerr(KafkaError._FATAL, fatal=True, reason="OUT_OF_ORDER_SEQUENCE"), "producer", "fatal"),
    (kerr(KafkaError.MSG_SIZE_TOO_LARGE), "producer", "record"),
    (kerr(KafkaError.INVALID_RECORD, abort=True), "producer", "record"),
    (kerr(KafkaError._TIMED_OUT, retriable=True), "producer", "retriable"),
    (kerr(KafkaError._ALL_BROKERS_DOWN), "consumer", "retriable"),
    (kerr(KafkaError._TRANSPORT), "producer", "retriable"),
    (kerr(KafkaError.NOT_COORDINATOR, retriable=True, abort=True), "producer", "abortable"),
])
def test_client_errors_are_sorted(err, client, kind):
    assert classify(err, client) == kind


def test_health_and_readiness():
    cur = Current()
    assert status(cur, 0.0)[:2] == (True, False)  # starting: alive, not ready
    fwd = SimpleNamespace(loop_at=100.0, last_progress=100.0, last_commit=None, assigned={("t", 0)}, fault=None,
                          decoder=SimpleNamespace(available=True, last_error=None), registry_paused={}, paused={})
    cur.fwd, cur.state = fwd, "running"
    assert status(cur, 101.0)[:2] == (True, True)
    fwd.decoder.available = False  # the registry is away: alive, not ready
    assert status(cur, 101.0)[:2] == (True, False)
    fwd.decoder.available = True
    assert status(cur, 100.0 + 121)[:2] == (True, False)  # nothing committed nor polled for two minutes
    assert status(cur, 100.0 + 200)[:2] == (False, False)  # the loop is stuck
    fwd.loop_at = fwd.last_progress = 300.0
    fwd.assigned = set()
    assert status(cur, 301.0)[:2] == (True, False)
    cur.state = "failed"
    assert status(cur, 301.0)[0] is False


def test_client_errors_are_counted_logged_at_most_twice_a_minute_and_a_fatal_one_is_kept():
    logged = []
    errors = faults.ClientErrors(SimpleNamespace(warning=lambda event, **kw: logged.append((event, kw))), "unit")
    seen = []
    errors.listeners.append(lambda client, kind, err: seen.append((client, kind)))
    consumer_cb = errors.callback("consumer")
    for _ in range(5):
        consumer_cb(kerr(KafkaError._ALL_BROKERS_DOWN))
    assert errors.counts == {("consumer", "retriable"): 5} and len(logged) == 1 and errors.fault is None
    assert logged[0][1]["code"] == "_ALL_BROKERS_DOWN" and logged[0][1]["kind"] == "retriable"
    consumer_cb(kerr(KafkaError._FATAL, fatal=True, reason="Static consumer fenced by other consumer"))
    assert errors.fault is not None and errors.fault.kind == "fatal" and errors.fault.client == "consumer"
    assert errors.fault.recoverable and len(logged) == 2 and seen[-1] == ("consumer", "fatal")


class FencedAtFlush(FakeProducer):
    """flush() meets the fatal fence the way librdkafka reports it: a KafkaException set while a delivery
    callback runs surfaces as a SystemError caused by it (or, without a callback running, as the exception)."""

    def __init__(self, txn_ref, as_system_error: bool):
        super().__init__(txn_ref)
        self.as_system_error = as_system_error

    def flush(self, t=0):
        fenced = KafkaException(kerr(KafkaError._FENCED, fatal=True, reason="fenced by a newer instance"))
        if not self.as_system_error:
            raise fenced
        try:
            raise fenced
        except KafkaException as e:
            raise SystemError("<method 'topic' of 'cimpl.Message' objects> returned a result with an exception set") from e


@pytest.mark.parametrize("as_system_error", [False, True])
def test_a_fence_met_while_flushing_is_a_final_fault_not_a_crash(env, as_system_error):
    result = pipeline(env).process(records_of(env, simulated(0.5, seed=1)), NOW)
    t, prod = transactions(lambda ref: FencedAtFlush(ref, as_system_error))
    with pytest.raises(ForwarderFault) as fault:
        t.run(result)
    assert fault.value.kind == FINAL and "flush" in fault.value.what and "commit" not in prod.log


def test_a_committed_transaction_reports_its_phases_for_the_batch_log(env):
    result = pipeline(env).process(records_of(env, simulated(0.5, seed=1)), NOW)
    t, prod = transactions(lambda ref: FakeProducer(ref))
    assert t.run(result).committed
    assert set(t.phases_ms) == {"produce_ms", "flush_ms", "commit_ms"}
    assert all(v >= 0 for v in t.phases_ms.values()) and prod.log[-1] == "commit"

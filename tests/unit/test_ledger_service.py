"""operations.ledger without a broker: the audit decoder (framing, writer schemas by id, older versions), one
batch of the service against fake clients (state changed only when the transaction commits; aborted batches
rewound), the Prometheus collector and /healthz, and the rendered table."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request

import fastavro
import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

import schemas
from core import serde
from core.audit import decisions_of
from core.topics import AUDIT_TOPIC, INGRESS_AUDIT_TOPIC, LEDGER_TOPIC
from operations.ledger.audits import AuditDecoder, RegistryAway, Unreadable, reader_schema
from operations.ledger.evaluate import LedgerState, rows
from operations.ledger.model import GIVEN, HOUR_MS, RECEIVED, BucketKey, Figures, decode_key, decode_value
from operations.ledger.render import print_ledger, report_dict
from operations.ledger.serve import LedgerCollector, make_server
from operations.ledger.service import LedgerService

pytestmark = pytest.mark.unit

T0 = 1_767_225_600_000
DECISION_ID, INGRESS_ID, OLD_DECISION_ID = 11, 12, 10


def one_decision(partner="RUS", decision="RELEASE", size=100):
    return {"partner": partner, "decision": decision, "rule": "r", "reason": "x", "policy_version": "v",
            "output_topic": None, "due_at": None, "bytes": size}


def decision_audit(partner="RUS", decision="RELEASE", message_type="StrikeReport", at=T0, size=100,
                   decisions=None):
    """A v4 decision audit: one input, every recipient's decision (one, unless ``decisions`` says)."""
    return {"input_topic": "liaison.internal.air.strike-report", "input_partition": 0, "input_offset": 1,
            "message_id": "m", "message_type": message_type, "decided_at": at, "forwarder": "f",
            "decisions": decisions or [one_decision(partner, decision, size)]}


def v1_audit(partner="RUS", decision="RELEASE", size=None):
    """A decision audit as v1-v3 wrote it: one per (input, recipient), the decision in the top-level fields."""
    return {"input_topic": "liaison.internal.air.strike-report", "input_partition": 0, "input_offset": 1,
            "message_id": "m", "message_type": "StrikeReport", "decided_at": T0, "forwarder": "f",
            **one_decision(partner, decision, size)}


def ingress_audit(partner="RUS", decision="ACCEPT", message_type="AirTrack", at=T0, size=80):
    return {"input_topic": "liaison.inbound.rus.air.track", "input_partition": 0, "input_offset": 1,
            "partner": partner, "message_type": message_type, "message_id": "m", "decision": decision,
            "check": "accepted", "reason": "ok", "output_topic": "o", "bytes": size, "decided_at": at, "guard": "g"}


def old_decision_schema() -> dict:
    """DecisionAudit v2 as released: one decision per record, no ``bytes``."""
    path = schemas.SCHEMA_DIR / "released" / "liaison.audit.decisions-value" / "v2.avsc"
    return json.loads(path.read_text(encoding="utf-8"))


SCHEMAS = {DECISION_ID: reader_schema(AUDIT_TOPIC), INGRESS_ID: reader_schema(INGRESS_AUDIT_TOPIC),
           OLD_DECISION_ID: old_decision_schema()}


def framed(schema_id: int, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(SCHEMAS[schema_id]), record)
    return serde.frame(schema_id, buf.getvalue())


class FakeRegistry:
    def __init__(self):
        self.calls = 0
        self.away = False

    def __call__(self, sid):
        self.calls += 1
        if self.away:
            raise ConnectionError("registry away")
        if sid not in SCHEMAS:
            e = Exception("not found")
            e.http_status_code = 404
            raise e
        return json.dumps(SCHEMAS[sid])


# ---------------------------------------------------------------------------------------------- decoder


def test_decoder_reads_both_audits_and_caches_writer_schemas():
    reg = FakeRegistry()
    d = AuditDecoder(fetch=reg)
    got = d.decode(AUDIT_TOPIC, framed(DECISION_ID, decision_audit()))
    assert [(r["partner"], r["bytes"]) for r in decisions_of(got)] == [("RUS", 100)]
    d.decode(AUDIT_TOPIC, framed(DECISION_ID, decision_audit()))
    assert reg.calls == 1
    assert d.decode(INGRESS_AUDIT_TOPIC, framed(INGRESS_ID, ingress_audit()))["decision"] == "ACCEPT"


def test_decoder_reads_an_older_decision_audit_one_decision_without_bytes():
    old = {k: v for k, v in v1_audit().items() if k != "bytes"}
    got = AuditDecoder(fetch=FakeRegistry()).decode(AUDIT_TOPIC, framed(OLD_DECISION_ID, old))
    assert [(r["partner"], r["decision"], r["bytes"]) for r in decisions_of(got)] == [("RUS", "RELEASE", None)]


def test_decoder_unreadable_and_registry_away():
    reg = FakeRegistry()
    d = AuditDecoder(fetch=reg)
    for bad in (None, b"\x01abcd", b"\x00\x00", serde.frame(99, b"x"), serde.frame(DECISION_ID, b"\x02")):
        with pytest.raises(Unreadable):
            d.decode(AUDIT_TOPIC, bad)
    reg.away = True
    with pytest.raises(RegistryAway):
        d.decode(INGRESS_AUDIT_TOPIC, framed(INGRESS_ID, ingress_audit()))


# ---------------------------------------------------------------------------------------------- one batch


class Msg:
    def __init__(self, topic, partition, offset, value):
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def value(self):
        return self._v

    def key(self):
        return None

    def error(self):
        return None


class FakeProducer:
    def __init__(self, fail_commit=None):
        self.fail_commit = fail_commit
        self.log, self.produced, self.committed, self.offsets = [], [], [], []

    def begin_transaction(self):
        self.log.append("begin")
        self._open = []

    def produce(self, topic, value, key):
        self._open.append((topic, key, value))

    def send_offsets_to_transaction(self, tps, meta, timeout):
        self.log.append("offsets")
        self._offsets = {(tp.topic, tp.partition): tp.offset for tp in tps}

    def commit_transaction(self, timeout):
        if self.fail_commit is not None:
            err, self.fail_commit = self.fail_commit, None
            raise KafkaException(err)
        self.log.append("commit")
        self.produced += self._open
        self.offsets.append(self._offsets)

    def abort_transaction(self, timeout):
        self.log.append("abort")

    def flush(self, timeout=None):
        return 0

    def poll(self, timeout=None):
        return 0


class FakeConsumer:
    def __init__(self):
        self.seeks = []

    def consumer_group_metadata(self):
        return object()

    def seek(self, tp):
        self.seeks.append((tp.topic, tp.partition, tp.offset))


def service(producer) -> LedgerService:
    s = LedgerService.__new__(LedgerService)
    s.decoder = AuditDecoder(fetch=FakeRegistry())
    s.producer, s.consumer = producer, FakeConsumer()
    s.state, s.lock, s.pause_before_commit, s.stopping = LedgerState(), threading.Lock(), 0.0, False
    s.counters = {k: 0 for k in ("records", "given", "received", "ignored", "unreadable", "transactions", "aborts",
                                 "buckets_written")}
    s.consumed = {AUDIT_TOPIC: 0, INGRESS_AUDIT_TOPIC: 0}
    s.last_commit, s.fault, s.loop_at, s.transactional_id = None, None, time.monotonic(), "liaison-ledger-t"
    return s


def batch():
    return [Msg(AUDIT_TOPIC, 0, 5, framed(DECISION_ID, decision_audit())),
            Msg(AUDIT_TOPIC, 0, 6, framed(DECISION_ID, decision_audit(decision="HELD"))),
            Msg(AUDIT_TOPIC, 1, 3, framed(DECISION_ID, decision_audit(partner="naval"))),
            Msg(AUDIT_TOPIC, 1, 4, framed(DECISION_ID, decision_audit(size=50))),
            # one input, three recipients: RUS is given it, USA and air count nothing
            Msg(AUDIT_TOPIC, 1, 5, framed(DECISION_ID, decision_audit(decisions=[
                one_decision("RUS", size=7), one_decision("USA", "WITHHOLD", None), one_decision("air")]))),
            # written by v2 (one decision per record, no bytes) before an upgrade
            Msg(AUDIT_TOPIC, 1, 6, framed(OLD_DECISION_ID, {k: v for k, v in v1_audit().items() if k != "bytes"})),
            Msg(AUDIT_TOPIC, 2, 0, b"garbage"),
            Msg(INGRESS_AUDIT_TOPIC, 0, 9, framed(INGRESS_ID, ingress_audit()))]


def test_a_batch_writes_the_totals_of_changed_buckets_with_its_offsets():
    p = FakeProducer()
    s = service(p)
    s.state.update({BucketKey("RUS", "strike_results", GIVEN, T0): Figures(10, 1000)})
    assert s._batch(batch())
    assert p.log == ["begin", "offsets", "commit"]
    written = {decode_key(k): decode_value(v) for t, k, v in p.produced if t == LEDGER_TOPIC}
    # given to RUS: 100 + 50 (v4, one decision each), 7 (v4, one of three), 0 (v2, no bytes)
    assert written == {BucketKey("RUS", "strike_results", GIVEN, T0): Figures(14, 1157),
                       BucketKey("RUS", "air_deconfliction", RECEIVED, T0): Figures(1, 80)}
    assert p.offsets == [{(AUDIT_TOPIC, 0): 7, (AUDIT_TOPIC, 1): 7, (AUDIT_TOPIC, 2): 1, (INGRESS_AUDIT_TOPIC, 0): 10}]
    assert s.state.get(BucketKey("RUS", "strike_results", GIVEN, T0)) == Figures(14, 1157)
    # per decision: HELD, naval, USA's withhold and air's release count nothing
    assert {k: s.counters[k] for k in ("given", "received", "ignored", "unreadable", "records")} == {
        "given": 4, "received": 1, "ignored": 4, "unreadable": 1, "records": 8}


def test_an_aborted_transaction_leaves_the_state_as_it_was():
    err = KafkaError(KafkaError._TIMED_OUT, "commit timed out", txn_requires_abort=True)
    p = FakeProducer(fail_commit=err)
    s = service(p)
    assert not s._batch(batch())
    assert p.log[-1] == "abort" and p.produced == [] and len(s.state) == 0 and s.counters["aborts"] == 1
    s._rewind(batch())
    assert sorted(s.consumer.seeks) == [(AUDIT_TOPIC, 0, 5), (AUDIT_TOPIC, 1, 3), (AUDIT_TOPIC, 2, 0),
                                        (INGRESS_AUDIT_TOPIC, 0, 9)]
    assert s._batch(batch())  # consumed again: counted once
    assert s.state.get(BucketKey("RUS", "strike_results", GIVEN, T0)) == Figures(4, 157)


def test_a_fenced_commit_is_final():
    from operations.ledger.service import FINAL, LedgerFault

    s = service(FakeProducer(fail_commit=KafkaError(KafkaError._FENCED, "fenced", fatal=True)))
    with pytest.raises(LedgerFault) as e:
        s._batch(batch())
    assert e.value.kind == FINAL and len(s.state) == 0


def test_registry_away_means_the_batch_again():
    s = service(FakeProducer())
    s.decoder = AuditDecoder(fetch=lambda sid: (_ for _ in ()).throw(ConnectionError("away")))
    assert not s._batch(batch()) and s.producer.log == []


# ---------------------------------------------------------------------------------------------- metrics, table


def test_metrics_and_health():
    s = service(FakeProducer())
    assert s._batch(batch())
    reg = CollectorRegistry(auto_describe=False)
    reg.register(LedgerCollector(s, clock=lambda: T0 / 1000 + 60))
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}
    given = {(x.labels["category"], x.labels["window"]): x.value for x in fams["liaison_ledger_given_records"].samples}
    assert given[("strike_results", "day")] == 4 and given[("logistics", "week")] == 0
    ratios = {(x.labels["category"], x.labels["window"]): x.value for x in fams["liaison_ledger_ratio"].samples}
    assert ratios == {("strike_results", "day"): 0.0, ("strike_results", "week"): 0.0}  # air: nothing given
    assert {x.labels["direction"]: x.value for x in fams["liaison_ledger_counted"].samples} == {"given": 4,
                                                                                              "received": 1}
    server = make_server(s, "127.0.0.1", 0, clock=lambda: T0 / 1000)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert urllib.request.urlopen(base + "/healthz").status == 200
        assert len(json.loads(urllib.request.urlopen(base + "/ledger").read())) == 12
        s.loop_at -= 1000
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/healthz")
        assert e.value.code == 503
    finally:
        server.shutdown()
        server.server_close()


def test_render_and_json():
    s = LedgerState({BucketKey("RUS", "strike_results", GIVEN, T0): Figures(4, 4000),
                     BucketKey("RUS", "strike_results", RECEIVED, T0 - 2 * 24 * HOUR_MS): Figures(2, 10)})
    table = rows(s, T0)
    console = Console(width=220, record=True)
    print_ledger(table, T0, console)
    text = console.export_text()
    assert "RUS" in text and "strike_results" in text and "air_deconfliction (safety)" in text and "0.50" in text
    d = report_dict(table, T0)
    week = next(r for r in d["rows"] if r["category"] == "strike_results" and r["window"] == "week")
    day = next(r for r in d["rows"] if r["category"] == "strike_results" and r["window"] == "day")
    assert week["ratio"] == 0.5 and day["ratio"] == 0.0 and d["window_hours"] == {"day": 24, "week": 168}

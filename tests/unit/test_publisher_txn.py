"""producers.publisher in transactional mode, and `liaison publish` on top of it, with injected producers (no
broker): a failure while producing aborts the transaction and commits nothing; the record-size bound."""

from __future__ import annotations

import functools
import json
import uuid
from types import SimpleNamespace

import pytest
import typer
from confluent_kafka import KafkaError, KafkaException, Message
from typer.testing import CliRunner

from producers import cli
from producers.publisher import TRANSACTIONAL_ID_PREFIX, Publisher, PublishError
from schemas.examples import example
from schemas.models import MAX_RECORD_BYTES


class FakeRegistry:
    def lookup_schema(self, subject, schema, normalize_schemas=True):
        return SimpleNamespace(schema_id=7)


class FakeProducer:
    """Records calls; `fail_produce_at=n` makes the n-th produce() raise, `fail_delivery_at=n` makes the n-th
    record's delivery report an error (served by flush/poll), `fail_commit=True` makes commit fail."""

    def __init__(self, conf, principal, fail_produce_at=None, fail_delivery_at=None, fail_commit=False):
        self.conf, self.principal = conf, principal
        self.fail_produce_at, self.fail_delivery_at, self.fail_commit = fail_produce_at, fail_delivery_at, fail_commit
        self.calls: list[str] = []
        self.produced = 0
        self.pending: list = []
        self.visible: list = []  # what a read_committed reader would see: records of committed transactions
        self.txn: list = []

    def init_transactions(self, timeout=None):
        self.calls.append("init")

    def begin_transaction(self):
        self.calls.append("begin")
        self.txn = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        self.produced += 1
        if self.produced == self.fail_produce_at:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large"))
        self.pending.append((self.produced, topic, key, value, headers, on_delivery))

    def _serve(self):
        for n, topic, key, value, headers, cb in self.pending:
            msg = Message(topic=topic, key=key, value=value, headers=headers)  # as librdkafka reports it
            if n == self.fail_delivery_at:
                cb(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed"), msg)
            else:
                self.txn.append((topic, key, value))
                cb(None, msg)
        self.pending = []

    def poll(self, timeout=0):
        self._serve()
        return 0

    def flush(self, timeout=None):
        self._serve()
        return 0

    def commit_transaction(self, timeout=None):
        self.calls.append("commit")
        if self.fail_commit:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "commit timed out"))
        self.visible += self.txn
        self.txn = []

    def abort_transaction(self, timeout=None):
        self.calls.append("abort")
        self.txn = []
        self.pending = []  # librdkafka purges what the aborted transaction had queued


def _models(n, name="AirTrack"):
    out = []
    for _ in range(n):
        m = example(name)
        m.label.message_id = uuid.uuid4()
        out.append(m)
    return out


def _publisher(**fail):
    made: list[FakeProducer] = []

    def factory(conf, principal):
        made.append(FakeProducer(conf, principal, **fail))
        return made[-1]

    return Publisher(client=FakeRegistry(), principal="producer-air", transactional=True,
                     producer_factory=factory), made


def test_a_transactional_publish_commits_once_with_its_own_transactional_id():
    pub, made = _publisher()
    with pub:
        for m in _models(10):
            pub.publish(m)
    (p,) = made
    assert p.calls == ["init", "begin", "commit"]
    assert p.conf["transactional.id"].startswith(f"{TRANSACTIONAL_ID_PREFIX}air-")
    assert len(p.visible) == 10 and pub.committed["AirTrack"] == 10


def test_alerts_are_published_as_the_deconflict_service_not_as_producer_air():
    """label.originator of an alert is air.deconfliction, but its topic is liaison.internal.deconfliction.alert, a
    domain of its own: published as `deconflict` under its transactional ids (deploy/acls.yaml), never producer-air."""
    made: list[FakeProducer] = []

    def factory(conf, principal):
        made.append(FakeProducer(conf, principal))
        return made[-1]

    for model in (example("DeconflictionAlert"), example("AirTrack")):  # one Publisher each (PLAINTEXT: one producer)
        with Publisher(client=FakeRegistry(), transactional=True, producer_factory=factory) as pub:
            pub.publish(model)
    alert_p, track_p = made
    assert example("DeconflictionAlert").label.originator == "air.deconfliction"
    assert alert_p.principal == "deconflict" and track_p.principal == "producer-air"
    assert alert_p.conf["transactional.id"].startswith("liaison-deconflict-publish-")
    assert [(t, k) for t, k, _ in alert_p.visible] == [("liaison.internal.deconfliction.alert",
                                                        str(example("DeconflictionAlert").alert_id).encode())]
    assert track_p.conf["transactional.id"].startswith(f"{TRANSACTIONAL_ID_PREFIX}air-")


@pytest.mark.parametrize("fail", [{"fail_produce_at": 500}, {"fail_delivery_at": 500}, {"fail_commit": True}],
                         ids=["produce-raises", "delivery-fails", "commit-fails"])
def test_a_failure_on_the_nth_record_aborts_and_commits_nothing(fail):
    pub, made = _publisher(**fail)
    with pytest.raises(PublishError):
        with pub:
            for m in _models(1000):
                pub.publish(m)
    (p,) = made
    assert "abort" in p.calls
    assert p.visible == [] and pub.committed["AirTrack"] == 0
    if "fail_commit" not in fail:
        assert "commit" not in p.calls


def test_an_exception_in_the_block_aborts():
    pub, made = _publisher()
    with pytest.raises(ZeroDivisionError):
        with pub:
            pub.publish(_models(1)[0])
            1 / 0
    assert made[0].calls == ["init", "begin", "abort"] and made[0].visible == []


def test_records_of_an_aborted_transaction_are_never_counted_as_committed_by_the_next_one():
    pub, made = _publisher()
    for m in _models(5):
        pub.publish(m)
    pub.abort()
    for m in _models(2):
        pub.publish(m)
    pub.commit()
    assert pub.committed["AirTrack"] == 2 and pub.sent["AirTrack"] == 7
    assert len(made[0].visible) == 2


def test_a_failed_delivery_is_not_counted_delivered_and_the_rest_are():
    made = []
    pub = Publisher(client=FakeRegistry(), principal="producer-air",
                    producer_factory=lambda conf, who: made.append(FakeProducer(conf, who, fail_delivery_at=3))
                    or made[-1])
    for m in _models(5):
        pub.publish(m)
    with pytest.raises(PublishError):
        pub.flush()
    assert made[0].conf["delivery.report.only.error"] is True
    assert pub.delivered["AirTrack"] == 4


def test_after_a_commit_the_next_record_begins_a_new_transaction():
    pub, made = _publisher()
    pub.publish(_models(1)[0])
    pub.commit()
    pub.publish(_models(1)[0])
    pub.commit()
    assert made[0].calls == ["init", "begin", "commit", "begin", "commit"] and len(made[0].visible) == 2


def test_a_record_above_the_size_bound_is_refused_before_it_is_produced():
    pub, made = _publisher()
    with pytest.raises(PublishError, match=f"above the {MAX_RECORD_BYTES}-byte bound"):
        pub.produce_raw("liaison.internal.air.track", "k", b"x" * (MAX_RECORD_BYTES + 1), [], "AirTrack", "m")
    assert made == []  # no producer was even needed
    pub.produce_raw("liaison.internal.air.track", "k", b"x" * MAX_RECORD_BYTES, [], "AirTrack", "m")
    pub.commit()
    assert len(made[0].visible) == 1


def test_non_transactional_publisher_is_unchanged():
    made = []
    pub = Publisher(client=FakeRegistry(), principal="producer-air",
                    producer_factory=lambda conf, who: made.append(FakeProducer(conf, who)) or made[-1])
    with pub:
        pub.publish(_models(1)[0])
    assert "transactional.id" not in made[0].conf and made[0].calls == []
    assert pub.delivered["AirTrack"] == 1


# --------------------------------------------------------------------------- `liaison publish`

runner = CliRunner()


def _cli(monkeypatch, tmp_path, lines, *args, **fail):
    made: list[FakeProducer] = []

    def factory(conf, principal):
        made.append(FakeProducer(conf, principal, **fail))
        return made[-1]

    monkeypatch.setattr(cli, "Publisher", functools.partial(Publisher, client=FakeRegistry(),
                                                            producer_factory=factory))
    f = tmp_path / "tracks.ndjson"
    f.write_text("\n".join(lines) + "\n")
    app = typer.Typer()
    app.command()(cli.publish)
    return runner.invoke(app, ["AirTrack", "--file", str(f), *args]), made


def test_cli_a_produce_failure_publishes_nothing(monkeypatch, tmp_path):
    lines = [m.model_dump_json() for m in _models(1000)]
    res, made = _cli(monkeypatch, tmp_path, lines, fail_produce_at=500)
    assert res.exit_code == 1
    assert "nothing published" in res.output and "aborted" in res.output
    assert all(p.visible == [] and "commit" not in p.calls and "abort" in p.calls for p in made)


def test_cli_a_valid_file_is_one_committed_transaction(monkeypatch, tmp_path):
    lines = [m.model_dump_json() for m in _models(50)]
    res, made = _cli(monkeypatch, tmp_path, lines)
    assert res.exit_code == 0, res.output
    assert "published 50 AirTrack" in res.output
    assert sum(len(p.visible) for p in made) == 50
    assert all(p.calls == ["init", "begin", "commit"] for p in made)


def test_cli_a_huge_string_is_rejected_by_validation_naming_line_and_field(monkeypatch, tmp_path):
    lines = [m.model_dump_json() for m in _models(1000)]
    doc = json.loads(lines[499])
    doc["callsign"] = "A" * (1 << 20)
    lines[499] = json.dumps(doc)
    res, made = _cli(monkeypatch, tmp_path, lines)
    assert res.exit_code == 1
    assert "line 500: callsign: String should have at most 128 characters" in res.output
    assert "AAAA" not in res.output and "nothing published" in res.output
    assert made == []  # nothing was even produced


def test_cli_skip_invalid_publishes_the_valid_lines_in_one_transaction(monkeypatch, tmp_path):
    lines = [m.model_dump_json() for m in _models(5)]
    doc = json.loads(lines[2])
    doc["callsign"] = "A" * 200
    lines[2] = json.dumps(doc)
    res, made = _cli(monkeypatch, tmp_path, lines, "--skip-invalid")
    assert res.exit_code == 1
    assert "line 3: callsign" in res.output and "published 4 AirTrack" in res.output
    assert [p.calls for p in made] == [["init", "begin", "commit"]] and len(made[0].visible) == 4

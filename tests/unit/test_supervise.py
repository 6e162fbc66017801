"""The command loop every consumer service runs in (consumers.shell.supervise): exit codes, restarts with backoff
under --supervise, fenced never restarted, configuration refused never retried; driven with fake services."""

from __future__ import annotations

import signal

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumers.shell import supervise as sv
from consumers.shell.codec import RegistryUnavailable
from consumers.shell.faults import FATAL, FINAL, ForwarderFault
from consumers.shell.health import Current, status
from release import PolicyError

pytestmark = pytest.mark.unit


class Log:
    def __init__(self):
        self.events = []

    def warning(self, event, **kw):
        self.events.append((event, kw))


class Fake:
    """A service whose run() raises (or returns) the next of ``runs``."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.listeners, self.error_listeners = [], []
        self.stopped = False

    def run(self, **kw):
        self.kw = kw
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def stop(self):
        self.stopped = True


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """No real waiting between restarts, and the process's own signal handlers left as they were."""
    monkeypatch.setattr(sv, "sleep_unless", lambda stop, seconds: None)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def run(builds, supervising=True, refused=()):
    """builds: what each build() gives (an exception raised, or a Fake's run outcome)."""
    pending = list(builds)
    log, lines = Log(), []

    def build():
        item = pending.pop(0)
        if isinstance(item, BaseException) and not isinstance(item, (ForwarderFault, KafkaException)) or \
                isinstance(item, tuple):
            raise item[0] if isinstance(item, tuple) else item
        return Fake(item)

    spec = sv.Supervision("widget", "liaison-widget-0", build=build, summary=lambda t: f"done {t}", log=log,
                          refused=refused, run_kwargs={"max_idle": 1.0})
    current = Current()
    code = sv.supervise(spec, current, supervising=supervising, echo=lambda line, err: lines.append((err, line)))
    return code, current, log, lines, pending


def test_a_run_that_ends_returns_0_with_its_summary():
    code, current, log, lines, _ = run(["7 records"])
    assert code == 0 and lines == [(False, "done 7 records")] and current.state == "stopped"
    assert log.events == [] and current.restarts == 0


def test_fatal_faults_restart_with_backoff_under_supervise_then_the_run_ends():
    fatal = ForwarderFault(FATAL, "consumer", "broker gone", None)
    code, current, log, lines, _ = run([fatal, fatal, "3"])
    assert code == 0 and current.restarts == 2 and lines == [(False, "done 3")]
    assert [e for e, _ in log.events] == ["widget restarting"] * 2
    assert [kw["restart_in_s"] for _, kw in log.events] == [sv.RESTART_BACKOFF_S, 2 * sv.RESTART_BACKOFF_S]
    assert all(kw["transactional_id"] == "liaison-widget-0" for _, kw in log.events)


def test_without_supervise_a_fatal_fault_exits_1_saying_nothing_was_committed():
    code, current, _log, lines, pending = run([ForwarderFault(FATAL, "producer", "boom", None), "never"],
                                              supervising=False)
    assert code == 1 and current.state == "failed" and pending == ["never"]
    assert lines == [(True, "error: widget liaison-widget-0 stopped: fatal producer error: boom; the open "
                            "transaction was not committed, so nothing is lost or duplicated on restart")]
    assert status(current)[:2] == (False, False)


def test_fenced_exits_3_and_is_never_restarted_even_under_supervise():
    code, current, log, lines, pending = run([ForwarderFault(FINAL, "producer", "fenced", None), "never"])
    assert code == 3 and log.events == [] and pending == ["never"]
    assert lines[0][1].startswith("error: widget liaison-widget-0 fenced by another instance")
    # a fenced KafkaException from run() (not sorted by the service) is sorted here: final too
    code, *_ = run([KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True)), "never"])
    assert code == 3


def test_configuration_refused_exits_2_and_is_not_retried():
    bad = PolicyError("deploy/policies/rus.yaml", [(3, "rules.0", "unknown field")])
    code, _c, log, lines, pending = run([(bad,), "never"])
    assert code == 2 and log.events == [] and pending == ["never"]
    assert lines == [(True, f"error: invalid policy, widget not started: {bad}")] and "rus.yaml" in lines[0][1]
    code, _c, _l, lines, _p = run([(FileNotFoundError("no such file: x.yaml"),)], refused=(FileNotFoundError,))
    assert code == 2 and lines == [(True, "error: no such file: x.yaml; widget not started")]


def test_registry_away_at_start_is_retried_under_supervise_and_exits_1_without():
    away = (RegistryUnavailable("registry: connection refused", 1000),)
    code, current, log, _lines, _ = run([away, away, "1"])
    assert code == 0 and current.restarts == 2 and current.last_error == "registry: connection refused"
    code, _c, _l, lines, _ = run([away], supervising=False)
    assert code == 1 and "cannot start: the schema registry is unavailable" in lines[0][1]


def test_the_running_instance_gets_the_run_arguments_and_the_listeners():
    seen = []
    pending = [Fake("ok")]
    spec = sv.Supervision("widget", "t", build=lambda: pending[0], summary=str, log=Log(),
                          run_kwargs={"max_idle": 2.5, "duration": None})
    current = Current()
    current.listeners.append(seen.append)
    assert sv.supervise(spec, current, supervising=False, echo=lambda line, err: None) == 0
    assert pending[0].kw == {"max_idle": 2.5, "duration": None} and pending[0].listeners == [seen.append]
    assert len(pending[0].error_listeners) == 1

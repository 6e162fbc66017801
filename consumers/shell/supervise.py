"""The command shell of a consumer service (forwarder, ingress guard, deconfliction): signals, the metrics
server, and the loop that builds the service, runs it and, with ``--supervise``, builds it again after a
recoverable fault with backoff.

Exit codes, the same for every service (the systemd units' ``RestartPreventExitStatus=2 3`` rely on them):

    0  stopped: SIGTERM/SIGINT, --max-idle, --duration
    1  stopped by a fault: the clients could not go on, or the registry was away at start (without --supervise,
       or while stopping)
    2  configuration refused (:attr:`Supervision.refused`, an invalid policy): never retried
    3  fenced: another instance with the same transactional.id took over (or the id was refused): never restarted

Every fault line says that the open transaction was not committed: what the service consumed since its last
commit is consumed again by the next instance, so nothing is lost or duplicated.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException

from consumers.shell.codec import RegistryUnavailable
from consumers.shell.faults import FINAL, Backoff, ForwarderFault, classify, describe, sleep_unless
from consumers.shell.health import Current
from release import PolicyError

__all__ = ["RESTART_BACKOFF_CAP_S", "RESTART_BACKOFF_S", "STABLE_S", "Supervision", "supervise"]

#: a run that lasted this long resets the restart backoff
STABLE_S = 60.0
#: --supervise: seconds before the first restart, doubled per restart up to the cap
RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S = 1.0, 30.0

OK, FAULT, REFUSED, FENCED = 0, 1, 2, 3


@dataclass(frozen=True)
class Supervision:
    """How one service is run by its command.

    ``what`` names it in every line and log event ("forwarder": ``forwarder restarting``); ``build()`` makes a
    new instance (its clients, its start-up checks); ``refused`` are the exceptions of ``build()`` that mean
    the configuration is refused (exit 2; a PolicyError always is); ``summary(totals)`` is the line printed
    when a run ends normally; ``lost`` completes "the open transaction was not committed, so ..." for this
    service's outputs."""

    what: str
    transactional_id: str
    build: Callable[[], Any]
    summary: Callable[[Any], str]
    log: Any
    refused: tuple[type[BaseException], ...] = ()
    lost: str = "nothing is lost or duplicated"
    reload: bool = False  # SIGHUP asks the running instance to reload (request_reload())
    run_kwargs: dict = field(default_factory=dict)


class _Exit(Exception):
    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code, self.line = code, line


def fault_line(what: str, tid: str, f: ForwarderFault, lost: str) -> str:
    if f.kind == FINAL:
        return (f"error: {what} {tid} fenced by another instance with the same transactional.id (or refused its "
                f"transactional.id): {f.what}; the open transaction was not committed, so {lost}; not restarted")
    return (f"error: {what} {tid} stopped: fatal {f.client} error: {f.what}; the open transaction was not "
            f"committed, so {lost} on restart")


def supervise(spec: Supervision, current: Current, *, supervising: bool,
              serve_metrics: Callable[[Current], Any] | None = None,
              echo: Callable[[str, bool], None] | None = None) -> int:
    """Run ``spec``'s service until it stops; returns the exit code. ``serve_metrics(current)`` starts the
    metrics server (before the first build, so a service that cannot start is seen restarting); ``echo(line,
    err)`` prints (stdout, or stderr when ``err``)."""
    echo = echo or (lambda line, err: print(line, file=sys.stderr if err else sys.stdout, flush=True))
    stopping = [False]

    def stop(signum, frame):
        stopping[0] = True
        if current.fwd is not None:
            current.fwd.stop()

    def reload(signum, frame):
        if current.fwd is not None:
            current.fwd.request_reload()  # an instance being built reads the configuration anyway

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if spec.reload:
        signal.signal(signal.SIGHUP, reload)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)  # a stuck process shows where
    if serve_metrics is not None:
        serve_metrics(current)
    backoff = Backoff(RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S)
    tid = spec.transactional_id

    def retry_or_exit(why: str, line: str) -> None:
        current.last_error = why
        if not supervising or stopping[0]:
            raise _Exit(FAULT, line)
        delay = backoff.next()
        current.state, current.fwd = "restarting", None
        current.restarts += 1
        spec.log.warning(f"{spec.what} restarting", error=why, restart_in_s=delay, restarts=current.restarts,
                         transactional_id=tid)
        sleep_unless(lambda: stopping[0], delay)

    def fault(f: ForwarderFault) -> None:
        line = fault_line(spec.what, tid, f, spec.lost)
        if f.kind == FINAL:
            raise _Exit(FENCED, line)
        retry_or_exit(f.what, line)

    try:
        while not stopping[0]:
            try:
                svc = spec.build()
            except PolicyError as e:
                raise _Exit(REFUSED, f"error: invalid policy, {spec.what} not started: {e}")
            except spec.refused as e:
                raise _Exit(REFUSED, f"error: {e}; {spec.what} not started")
            except RegistryUnavailable as e:
                retry_or_exit(str(e), f"error: {spec.what} {tid} cannot start: the schema registry is unavailable "
                                      f"and it needs it: {e}")
                continue
            except ForwarderFault as f:
                fault(f)
                continue
            tid = getattr(svc, "transactional_id", tid)
            current.attach(svc)
            current.state = "running"
            if stopping[0]:
                svc.stop()
            began = time.monotonic()
            try:
                totals = svc.run(**spec.run_kwargs)
            except ForwarderFault as f:
                if f.kind != FINAL and time.monotonic() - began >= STABLE_S:
                    backoff.reset()
                fault(f)
                continue
            except KafkaException as e:  # not sorted by the service: sorted here (fenced: final, else the clients')
                fault(ForwarderFault(classify(e.args[0], "producer"), "client", describe(e.args[0]), e.args[0]))
                continue
            current.state = "stopped"
            echo(spec.summary(totals), False)
            return OK
    except _Exit as e:
        current.state = "failed"
        echo(e.line, True)
        return e.code
    current.state = "stopped"
    echo(f"{spec.what} stopped while restarting", False)
    return OK

"""`liaison forward`: build the forwarder, run it; with --supervise, build it again after a recoverable fault.

Exit codes: 0 stopped (SIGTERM/SIGINT, --max-idle, --duration); 1 stopped by a fault (the clients could not go
on, or the registry was away at start with a schema never registered), 2 configuration refused (invalid policy,
incompatible derived schema, missing file), 3 fenced: another instance with the same transactional.id took over
(never restarted: deploy/systemd/liaison-forward@.service has RestartPreventExitStatus=2 3).
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time
from pathlib import Path

import typer

from confluent_kafka import KafkaException

from consumers.forwarder.codec import RegistryUnavailable
from consumers.forwarder.faults import FINAL, Backoff, ForwarderFault, classify, describe, sleep_unless
from consumers.forwarder.plans import IncompatibleSchema
from core.logs import get_logger
from release import PolicyError

log = get_logger("liaison.forwarder")

#: a run that lasted this long resets the restart backoff
STABLE_S = 60.0
#: --supervise: seconds before the first restart, doubled per restart up to the cap
RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S = 1.0, 30.0


def _line(tid: str, f: ForwarderFault) -> str:
    if f.kind == FINAL:
        return (f"error: forwarder {tid} fenced by another instance with the same transactional.id (or refused its "
                f"transactional.id): {f.what}; the open transaction was not committed, so nothing is lost or "
                f"duplicated; not restarted")
    return (f"error: forwarder {tid} stopped: fatal {f.client} error: {f.what}; the open transaction was not "
            f"committed, so nothing is lost or duplicated on restart")


def forward(policies: Path = typer.Option(None, "--policies", help="policy folder (default deploy/policies)"),
            instance: str = typer.Option(None, help="instance name; transactional.id is liaison-forwarder-<instance>"),
            group: str = typer.Option("liaison-forwarder", help="consumer group"),
            batch_size: int = typer.Option(1000, help="records per transaction at most"),
            max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
            duration: float = typer.Option(None, help="exit after this many seconds"),
            metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /readyz on this port"),
            supervise: bool = typer.Option(False, "--supervise", help="after a recoverable fault (a fenced static "
                                           "member, a fatal client error, brokers or registry away at start) build "
                                           "new clients with backoff instead of exiting")) -> None:
    """Forward each partner's releasable view of the internal topics, exactly once, with audit and dead letters."""
    from consumers.forwarder.metrics import Current, serve_forwarder_metrics
    from consumers.forwarder.service import Forwarder

    current = Current()
    stopping = [False]

    def stop(signum, frame):
        stopping[0] = True
        if current.fwd is not None:
            current.fwd.stop()

    def reload(signum, frame):
        if current.fwd is not None:
            current.fwd.request_reload()  # a Forwarder being built reads the policies anyway

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)  # a stuck process shows where
    if metrics_port:
        serve_forwarder_metrics(current, metrics_port)
    backoff = Backoff(RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S)
    tid = f"liaison-forwarder-{instance}" if instance else "liaison-forwarder"

    def retry_or_exit(why: str, line: str, code: int = 1) -> None:
        current.last_error = why
        if not supervise or stopping[0]:
            current.state = "failed"
            typer.echo(line, err=True)
            raise typer.Exit(code)
        delay = backoff.next()
        current.state, current.fwd = "restarting", None
        current.restarts += 1
        log.warning("forwarder restarting", error=why, restart_in_s=delay, restarts=current.restarts,
                    transactional_id=tid)
        sleep_unless(lambda: stopping[0], delay)

    while not stopping[0]:
        try:
            fwd = Forwarder(policies_dir=policies, instance=instance, group_id=group, batch_size=batch_size)
        except PolicyError as e:
            typer.echo(f"error: invalid policy, forwarder not started: {e}", err=True)
            raise typer.Exit(2)
        except IncompatibleSchema as e:
            typer.echo(f"error: {e}; forwarder not started", err=True)
            raise typer.Exit(2)
        except FileNotFoundError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        except RegistryUnavailable as e:
            retry_or_exit(str(e), f"error: forwarder {tid} cannot start: the schema registry is unavailable and "
                                  f"it needs it: {e}")
            continue
        except ForwarderFault as f:
            if f.kind == FINAL:
                typer.echo(_line(tid, f), err=True)
                raise typer.Exit(3)
            retry_or_exit(f.what, _line(tid, f))
            continue
        tid = fwd.transactional_id
        current.attach(fwd)
        current.state = "running"
        if stopping[0]:
            fwd.stop()
        began = time.monotonic()
        try:
            totals = fwd.run(max_idle=max_idle, duration=duration)
        except ForwarderFault as f:
            if f.kind == FINAL:
                current.state = "failed"
                typer.echo(_line(tid, f), err=True)
                raise typer.Exit(3)
            if time.monotonic() - began >= STABLE_S:
                backoff.reset()
            retry_or_exit(f.what, _line(tid, f))
            continue
        except KafkaException as e:  # not sorted by the service: sorted here (fenced: final, else the clients')
            fault = ForwarderFault(classify(e.args[0], "producer"), "client", describe(e.args[0]), e.args[0])
            if fault.kind == FINAL:
                current.state = "failed"
                typer.echo(_line(tid, fault), err=True)
                raise typer.Exit(3)
            retry_or_exit(fault.what, _line(tid, fault))
            continue
        current.state = "stopped"
        typer.echo(f"forwarded {totals.records} record(s); dead-lettered {totals.dead_lettered}")
        return
    current.state = "stopped"
    typer.echo("forwarder stopped while restarting")

"""`liaison ingress --partner RUS`: build the partner's ingress guard, run it; with --supervise, build it again
after a recoverable fault.

Exit codes, as the forwarder's: 0 stopped (SIGTERM/SIGINT, --max-idle, --duration); 1 stopped by a fault (the
clients could not go on, the registry away at start); 2 configuration refused (invalid policy, no policy for the
partner, unknown or misordered checks, inbound subjects not registered, max_age_s beyond the seen ids' retention);
3 fenced: another guard of the same partner (transactional.id liaison-ingress-<code>) took over (never restarted).
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time
from pathlib import Path

import typer
from confluent_kafka import KafkaException

from consumers.forwarder.cli import STABLE_S
from consumers.forwarder.codec import RegistryUnavailable
from consumers.forwarder.faults import FINAL, Backoff, ForwarderFault, classify, describe, sleep_unless
from consumers.forwarder.plans import IncompatibleSchema
from consumers.ingress.checks import CHECKS
from consumers.ingress.registry import MissingSubject
from core.logs import get_logger
from release import PolicyError

log = get_logger("liaison.ingress")

#: --supervise: seconds before the first restart, doubled per restart up to the cap (as the forwarder)
RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S = 1.0, 30.0


def _line(tid: str, f: ForwarderFault) -> str:
    if f.kind == FINAL:
        return (f"error: ingress guard {tid} fenced by another instance with the same transactional.id (or refused "
                f"its transactional.id): {f.what}; the open transaction was not committed; not restarted")
    return (f"error: ingress guard {tid} stopped: fatal {f.client} error: {f.what}; the open transaction was not "
            f"committed, so nothing is lost or duplicated on restart")


def ingress(partner: str = typer.Option(..., "--partner", help="partner code (RUS): reads liaison.inbound.<code>.*"),
            policies: Path = typer.Option(None, "--policies", help="policy folder (default deploy/policies)"),
            batch_size: int = typer.Option(500, help="records per transaction at most"),
            checks: str = typer.Option(",".join(CHECKS), help="the checks, in order (comma-separated)"),
            max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
            duration: float = typer.Option(None, help="exit after this many seconds"),
            metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /readyz on this port"),
            supervise: bool = typer.Option(False, "--supervise", help="after a recoverable fault build new clients "
                                           "with backoff instead of exiting")) -> None:
    """Check what a partner publishes to us: accept it relabelled partner-origin, or quarantine it, exactly once."""
    from consumers.ingress.metrics import Current, serve_ingress_metrics
    from consumers.ingress.service import Guard

    current = Current()
    stopping = [False]

    def stop(signum, frame):
        stopping[0] = True
        if current.fwd is not None:
            current.fwd.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    if metrics_port:
        serve_ingress_metrics(current, metrics_port)
    backoff = Backoff(RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S)
    tid = f"liaison-ingress-{partner.lower()}"
    names = tuple(n.strip() for n in checks.split(",") if n.strip())

    def retry_or_exit(why: str, line: str, code: int = 1) -> None:
        current.last_error = why
        if not supervise or stopping[0]:
            current.state = "failed"
            typer.echo(line, err=True)
            raise typer.Exit(code)
        delay = backoff.next()
        current.state, current.fwd = "restarting", None
        current.restarts += 1
        log.warning("ingress guard restarting", error=why, restart_in_s=delay, restarts=current.restarts,
                    transactional_id=tid)
        sleep_unless(lambda: stopping[0], delay)

    while not stopping[0]:
        try:
            guard = Guard(partner, policies_dir=policies, batch_size=batch_size, checks=names)
        except PolicyError as e:
            typer.echo(f"error: invalid policy, ingress guard not started: {e}", err=True)
            raise typer.Exit(2)
        except (IncompatibleSchema, MissingSubject, ValueError, FileNotFoundError) as e:
            typer.echo(f"error: {e}; ingress guard not started", err=True)
            raise typer.Exit(2)
        except RegistryUnavailable as e:
            retry_or_exit(str(e), f"error: ingress guard {tid} cannot start: the schema registry is unavailable: {e}")
            continue
        except ForwarderFault as f:
            if f.kind == FINAL:
                typer.echo(_line(tid, f), err=True)
                raise typer.Exit(3)
            retry_or_exit(f.what, _line(tid, f))
            continue
        current.attach(guard)
        current.state = "running"
        if stopping[0]:
            guard.stop()
        began = time.monotonic()
        try:
            totals = guard.run(max_idle=max_idle, duration=duration)
        except ForwarderFault as f:
            if f.kind == FINAL:
                current.state = "failed"
                typer.echo(_line(tid, f), err=True)
                raise typer.Exit(3)
            if time.monotonic() - began >= STABLE_S:
                backoff.reset()
            retry_or_exit(f.what, _line(tid, f))
            continue
        except KafkaException as e:
            fault = ForwarderFault(classify(e.args[0], "producer"), "client", describe(e.args[0]), e.args[0])
            if fault.kind == FINAL:
                current.state = "failed"
                typer.echo(_line(tid, fault), err=True)
                raise typer.Exit(3)
            retry_or_exit(fault.what, _line(tid, fault))
            continue
        current.state = "stopped"
        typer.echo(f"ingress {guard.partner}: {totals.records} record(s): accepted {totals.accepted}, quarantined "
                   f"{totals.quarantined}")
        return
    current.state = "stopped"
    typer.echo("ingress guard stopped while restarting")

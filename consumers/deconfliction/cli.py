"""`liaison deconflict`: build the deconfliction service, run it; with --supervise, build it again after a
recoverable fault.

Exit codes, as the forwarder's: 0 stopped (SIGTERM/SIGINT, --max-idle, --duration); 1 stopped by a fault (the
clients could not go on, the registry away at start, the state not restored); 2 configuration refused (invalid
separation minima, the alert schema not registered); 3 fenced: another instance with the same transactional.id
(liaison-deconflict-<instance>) took over (never restarted).
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time

import typer
from confluent_kafka import KafkaException

from consumers.forwarder.cli import STABLE_S
from consumers.forwarder.codec import RegistryUnavailable
from consumers.forwarder.faults import FINAL, Backoff, ForwarderFault, classify, describe, sleep_unless
from core.logs import get_logger

log = get_logger("liaison.deconflict")

RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S = 1.0, 30.0


def _line(tid: str, f: ForwarderFault) -> str:
    if f.kind == FINAL:
        return (f"error: deconfliction {tid} fenced by another instance with the same transactional.id (or refused "
                f"its transactional.id): {f.what}; the open transaction was not committed; not restarted")
    return (f"error: deconfliction {tid} stopped: fatal {f.client} error: {f.what}; the open transaction was not "
            f"committed, so no alert is lost or duplicated on restart")


def deconflict(instance: str = typer.Option("main", help="instance name; transactional.id is "
                                            "liaison-deconflict-<instance> (run one: the picture is global)"),
               group: str = typer.Option("liaison-deconflict", help="consumer group (liaison-deconflict*); the "
                                         "state entries are kept per group"),
               batch_size: int = typer.Option(5000, help="records per transaction at most (a track "
                                               "reported twice in one step is evaluated once: larger batches keep "
                                               "up under load)"),
               lateral_nm: float = typer.Option(5.0, help="lateral separation, NM"),
               vertical_ft: float = typer.Option(1000.0, help="vertical separation, ft"),
               lookahead_s: float = typer.Option(300.0, help="track look-ahead, s"),
               track_max_age_s: float = typer.Option(60.0, help="a track not reported for this long is dropped, s"),
               tick_s: float = typer.Option(1.0, help="while idle, step the clock this often (expiry, passed "
                                            "conflicts), s"),
               max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
               duration: float = typer.Option(None, help="exit after this many seconds"),
               metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /readyz on this port"),
               supervise: bool = typer.Option(False, "--supervise", help="after a recoverable fault build new "
                                              "clients with backoff instead of exiting")) -> None:
    """Find conflicts between our flights and the partners' (plans and tracks) and emit alerts, exactly once."""
    from consumers.deconfliction.geometry import NM_M
    from consumers.deconfliction.metrics import Current, serve_deconflict_metrics
    from consumers.deconfliction.params import Params
    from consumers.deconfliction.service import Deconflictor, MissingAlertSchema

    try:
        params = Params(lateral_m=lateral_nm * NM_M, vertical_ft=vertical_ft, lookahead_s=lookahead_s,
                        track_max_age_s=track_max_age_s)
    except ValueError as e:
        typer.echo(f"error: {e}; deconfliction not started", err=True)
        raise typer.Exit(2)
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
        serve_deconflict_metrics(current, metrics_port)
    backoff = Backoff(RESTART_BACKOFF_S, RESTART_BACKOFF_CAP_S)
    tid = f"liaison-deconflict-{instance}"

    def retry_or_exit(why: str, line: str, code: int = 1) -> None:
        current.last_error = why
        if not supervise or stopping[0]:
            current.state = "failed"
            typer.echo(line, err=True)
            raise typer.Exit(code)
        delay = backoff.next()
        current.state, current.fwd = "restarting", None
        current.restarts += 1
        log.warning("deconfliction restarting", error=why, restart_in_s=delay, restarts=current.restarts,
                    transactional_id=tid)
        sleep_unless(lambda: stopping[0], delay)

    def final(f: ForwarderFault) -> None:
        current.state = "failed"
        typer.echo(_line(tid, f), err=True)
        raise typer.Exit(3)

    while not stopping[0]:
        try:
            svc = Deconflictor(instance=instance, group_id=group, params=params, batch_size=batch_size,
                               tick_s=tick_s)
        except MissingAlertSchema as e:
            typer.echo(f"error: {e}; deconfliction not started", err=True)
            raise typer.Exit(2)
        except RegistryUnavailable as e:
            retry_or_exit(str(e), f"error: deconfliction {tid} cannot start: the schema registry is unavailable: {e}")
            continue
        except ForwarderFault as f:
            if f.kind == FINAL:
                final(f)
            retry_or_exit(f.what, _line(tid, f))
            continue
        current.attach(svc)
        current.state = "running"
        if stopping[0]:
            svc.stop()
        began = time.monotonic()
        try:
            totals = svc.run(max_idle=max_idle, duration=duration)
        except ForwarderFault as f:
            if f.kind == FINAL:
                final(f)
            if time.monotonic() - began >= STABLE_S:
                backoff.reset()
            retry_or_exit(f.what, _line(tid, f))
            continue
        except KafkaException as e:
            fault = ForwarderFault(classify(e.args[0], "producer"), "client", describe(e.args[0]), e.args[0])
            if fault.kind == FINAL:
                final(fault)
            retry_or_exit(fault.what, _line(tid, fault))
            continue
        current.state = "stopped"
        by = totals.by_status()
        typer.echo(f"deconflict: {totals.records} record(s), {totals.skipped} skipped; alerts NEW {by.get('NEW', 0)}, "
                   f"UPDATED {by.get('UPDATED', 0)}, CLEARED {by.get('CLEARED', 0)}")
        return
    current.state = "stopped"
    typer.echo("deconfliction stopped while restarting")

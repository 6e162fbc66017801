"""`liaison deconflict`: build the deconfliction service, run it; with --supervise, build it again after a
recoverable fault.

Exit codes, as the forwarder's: 0 stopped (SIGTERM/SIGINT, --max-idle, --duration); 1 stopped by a fault (the
clients could not go on, the registry away at start, the state not restored); 2 configuration refused (invalid
separation minima, the alert schema not registered); 3 fenced: another instance with the same transactional.id
(liaison-deconflict-<instance>) took over (never restarted).
"""

from __future__ import annotations

import typer

from consumers.shell.supervise import Supervision, supervise
from core.logs import get_logger

log = get_logger("liaison.deconflict")


def _summary(totals) -> str:
    by = totals.by_status()
    return (f"deconflict: {totals.records} record(s), {totals.skipped} skipped; alerts NEW {by.get('NEW', 0)}, "
            f"UPDATED {by.get('UPDATED', 0)}, CLEARED {by.get('CLEARED', 0)}")


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
               eta_buffer_s: float = typer.Option(300.0, help="a plan's time on a leg: its ETAs widened by this much "
                                                  "either side (ETA uncertainty), s; a simulation that flies a "
                                                  "sortie in seconds scales it down with its time"),
               track_tolerance_nm: float = typer.Option(0.1, help="dead reckoning: a track report within this of the "
                                                        "path its last evaluated report predicted (same step) keeps "
                                                        "its alerts as they are, without evaluating its pairs; 0: "
                                                        "evaluate every report, NM"),
               track_tolerance_ft: float = typer.Option(100.0, help="dead reckoning: and within this of its altitude, "
                                                        "ft"),
               tick_s: float = typer.Option(1.0, help="while idle, step the clock this often (expiry, passed "
                                            "conflicts), s"),
               max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
               duration: float = typer.Option(None, help="exit after this many seconds"),
               metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /readyz on this port"),
               supervise_: bool = typer.Option(False, "--supervise", help="after a recoverable fault build new "
                                              "clients with backoff instead of exiting")) -> None:
    """Find conflicts between our flights and the partners' (plans and tracks) and emit alerts, exactly once."""
    from consumers.deconfliction.geometry import NM_M
    from consumers.deconfliction.metrics import Current, serve_deconflict_metrics
    from consumers.deconfliction.params import Params
    from consumers.deconfliction.service import Deconflictor, MissingAlertSchema

    try:
        params = Params(lateral_m=lateral_nm * NM_M, vertical_ft=vertical_ft, lookahead_s=lookahead_s,
                        track_max_age_s=track_max_age_s, eta_buffer_s=eta_buffer_s,
                        track_tolerance_m=track_tolerance_nm * NM_M, track_tolerance_ft=track_tolerance_ft)
    except ValueError as e:
        typer.echo(f"error: {e}; deconfliction not started", err=True)
        raise typer.Exit(2)
    spec = Supervision(
        "deconfliction", f"liaison-deconflict-{instance}",
        build=lambda: Deconflictor(instance=instance, group_id=group, params=params, batch_size=batch_size,
                                   tick_s=tick_s),
        summary=_summary, log=log, refused=(MissingAlertSchema,), lost="no alert is lost or duplicated",
        run_kwargs={"max_idle": max_idle, "duration": duration})
    code = supervise(spec, Current(), supervising=supervise_,
                     serve_metrics=(lambda cur: serve_deconflict_metrics(cur, metrics_port)) if metrics_port else None)
    if code:
        raise typer.Exit(code)

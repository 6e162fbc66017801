"""`liaison forward`: build the forwarder, run it; with --supervise, build it again after a recoverable fault.

Exit codes: 0 stopped (SIGTERM/SIGINT, --max-idle, --duration); 1 stopped by a fault (the clients could not go
on, or the registry was away at start with a schema never registered), 2 configuration refused (invalid policy,
incompatible derived schema, missing file), 3 fenced: another instance with the same transactional.id took over
(never restarted: deploy/systemd/liaison-forward@.service has RestartPreventExitStatus=2 3).
"""

from __future__ import annotations

from pathlib import Path

import typer

from consumers.forwarder.plans import IncompatibleSchema
from consumers.shell.supervise import RESTART_BACKOFF_CAP_S, RESTART_BACKOFF_S, STABLE_S, Supervision, supervise
from core.kafka import BATCH_LINGER_S
from core.logs import get_logger

__all__ = ["RESTART_BACKOFF_CAP_S", "RESTART_BACKOFF_S", "STABLE_S", "forward"]

log = get_logger("liaison.forwarder")


def forward(policies: Path = typer.Option(None, "--policies", help="policy folder (default deploy/policies)"),
            instance: str = typer.Option(None, help="instance name; transactional.id is liaison-forwarder-<instance>"),
            group: str = typer.Option("liaison-forwarder", help="consumer group"),
            batch_size: int = typer.Option(1000, help="records per transaction at most"),
            batch_linger_ms: float = typer.Option(BATCH_LINGER_S * 1000, help="ms a batch waits for more records "
                                                  "after its first (behind, batches fill at once)"),
            max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
            duration: float = typer.Option(None, help="exit after this many seconds"),
            metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /readyz on this port"),
            engine: str = typer.Option(None, help="compiled: the compiled core decides what it takes (the "
                                       "reference the rest); reference: the Python engine decides every record "
                                       "(default LIAISON_FORWARDER_ENGINE, else compiled)"),
            supervise_: bool = typer.Option(False, "--supervise", help="after a recoverable fault (a fenced static "
                                           "member, a fatal client error, brokers or registry away at start) build "
                                           "new clients with backoff instead of exiting")) -> None:
    """Forward each partner's releasable view of the internal topics, exactly once, with audit and dead letters."""
    from consumers.forwarder.metrics import Current, serve_forwarder_metrics
    from consumers.forwarder.service import Forwarder

    spec = Supervision(
        "forwarder", f"liaison-forwarder-{instance}" if instance else "liaison-forwarder",
        build=lambda: Forwarder(policies_dir=policies, instance=instance, group_id=group, batch_size=batch_size,
                                engine=engine, batch_linger=batch_linger_ms / 1000),
        summary=lambda t: f"forwarded {t.records} record(s); dead-lettered {t.dead_lettered}", log=log,
        refused=(IncompatibleSchema, FileNotFoundError), reload=True,
        run_kwargs={"max_idle": max_idle, "duration": duration})
    code = supervise(spec, Current(), supervising=supervise_,
                     serve_metrics=(lambda cur: serve_forwarder_metrics(cur, metrics_port)) if metrics_port else None)
    if code:
        raise typer.Exit(code)

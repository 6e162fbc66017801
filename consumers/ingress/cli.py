"""`liaison ingress --partner RUS`: build the partner's ingress guard, run it; with --supervise, build it again
after a recoverable fault.

Exit codes, as the forwarder's: 0 stopped (SIGTERM/SIGINT, --max-idle, --duration); 1 stopped by a fault (the
clients could not go on, the registry away at start); 2 configuration refused (invalid policy, no policy for the
partner, unknown or misordered checks, inbound subjects not registered, max_age_s beyond the seen ids' retention);
3 fenced: another guard of the same partner (transactional.id liaison-ingress-<code>) took over (never restarted).
"""

from __future__ import annotations

from pathlib import Path

import typer

from consumers.forwarder.plans import IncompatibleSchema
from consumers.ingress.checks import CHECKS
from consumers.ingress.registry import MissingSubject
from consumers.shell.supervise import Supervision, supervise
from core.logs import get_logger

log = get_logger("liaison.ingress")


def ingress(partner: str = typer.Option(..., "--partner", help="partner code (RUS): reads liaison.inbound.<code>.*"),
            policies: Path = typer.Option(None, "--policies", help="policy folder (default deploy/policies)"),
            batch_size: int = typer.Option(500, help="records per transaction at most"),
            checks: str = typer.Option(",".join(CHECKS), help="the checks, in order (comma-separated)"),
            max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
            duration: float = typer.Option(None, help="exit after this many seconds"),
            metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /readyz on this port"),
            engine: str = typer.Option(None, "--engine", help="compiled (default, LIAISON_GUARD_ENGINE) or reference: "
                                       "the compiled core accepts what it takes outright, the Python checks the rest"),
            supervise_: bool = typer.Option(False, "--supervise", help="after a recoverable fault build new clients "
                                           "with backoff instead of exiting")) -> None:
    """Check what a partner publishes to us: accept it relabelled partner-origin, or quarantine it, exactly once."""
    from consumers.ingress.metrics import Current, serve_ingress_metrics
    from consumers.ingress.service import Guard

    names = tuple(n.strip() for n in checks.split(",") if n.strip())
    spec = Supervision(
        "ingress guard", f"liaison-ingress-{partner.lower()}",
        build=lambda: Guard(partner, policies_dir=policies, batch_size=batch_size, checks=names, engine=engine),
        summary=lambda t: (f"ingress {partner.upper()}: {t.records} record(s): accepted {t.accepted}, quarantined "
                           f"{t.quarantined}"),
        log=log, refused=(IncompatibleSchema, MissingSubject, ValueError, FileNotFoundError),
        run_kwargs={"max_idle": max_idle, "duration": duration})
    code = supervise(spec, Current(), supervising=supervise_,
                     serve_metrics=(lambda cur: serve_ingress_metrics(cur, metrics_port)) if metrics_port else None)
    if code:
        raise typer.Exit(code)

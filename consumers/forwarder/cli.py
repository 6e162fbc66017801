"""`liaison forward`."""

from __future__ import annotations

from pathlib import Path

import typer

from confluent_kafka import KafkaError, KafkaException

from release import PolicyError


def forward(policies: Path = typer.Option(None, "--policies", help="policy folder (default deploy/policies)"),
            instance: str = typer.Option(None, help="instance name; transactional.id is liaison-forwarder-<instance>"),
            group: str = typer.Option("liaison-forwarder", help="consumer group"),
            batch_size: int = typer.Option(1000, help="records per transaction at most"),
            max_idle: float = typer.Option(None, help="exit after this many seconds without input"),
            duration: float = typer.Option(None, help="exit after this many seconds"),
            metrics_port: int = typer.Option(None, help="serve Prometheus counters on this port")) -> None:
    """Forward each partner's releasable view of the internal topics, exactly once, with audit and dead letters."""
    from consumers.forwarder.service import Forwarder

    try:
        fwd = Forwarder(policies_dir=policies, instance=instance, group_id=group, batch_size=batch_size)
    except PolicyError as e:
        typer.echo(f"error: invalid policy, forwarder not started: {e}", err=True)
        raise typer.Exit(2)
    except FileNotFoundError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    if metrics_port:
        from consumers.forwarder.metrics import serve_forwarder_metrics

        serve_forwarder_metrics(fwd, metrics_port)
    fwd.install_signal_handlers()
    try:
        totals = fwd.run(max_idle=max_idle, duration=duration)
    except KafkaException as e:
        err = e.args[0]
        what = "fenced by another instance with the same transactional.id" if err.code() in (
            KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH) else "stopped"
        typer.echo(f"error: forwarder {fwd.transactional_id} {what}: {err.name()}: {err.str()}; the open "
                   f"transaction was not committed, so nothing is lost or duplicated on restart", err=True)
        raise typer.Exit(1)
    typer.echo(f"forwarded {totals.records} record(s); dead-lettered {totals.dead_lettered}")

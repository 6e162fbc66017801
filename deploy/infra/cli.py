"""`liaison infra up|restart|down|status|logs`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.infra import servers
from deploy.infra.errors import InfraError
from core.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect the local broker(s), registry and registry gateway.")
err = Console(stderr=True)


def _fail(e: Exception) -> None:
    err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def up(shape: str = typer.Option(None, help="single (one combined node) or cluster (three nodes)"),
       registry_storage: str = typer.Option(None, help="kafkasql (persistent, default) or mem")) -> None:
    """Start Kafka (KRaft), the schema registry and its gateway on 127.0.0.1: only what does not run (a running
    server is never restarted); returns when every server is healthy and the registry ready."""
    try:
        data = servers.up(get_settings(), shape, registry_storage, log=lambda m: err.print(m, highlight=False))
    except InfraError as e:
        _fail(e)
    _print_addresses(data)


@app.command()
def restart(server: str = typer.Argument(..., help="kafka-1, kafka-2, kafka-3, registry or registry-gateway")) -> None:
    """Restart exactly one server (bounded stop, start, wait until it is healthy); the others keep running."""
    try:
        data = servers.restart(get_settings(), server, log=lambda m: err.print(m, highlight=False))
    except InfraError as e:
        _fail(e)
    _print_addresses(data)


def _print_addresses(data: dict) -> None:
    typer.echo(f"bootstrap.servers={data['bootstrap_servers']}")
    typer.echo(f"schema.registry.url={data['schema_registry_url']}")
    sec = data.get("security")
    if sec:
        typer.echo(f"security.protocol={sec['protocol']}")
        typer.echo(f"sasl.mechanism={sec['mechanism']}")
        typer.echo(f"ssl.ca.location={sec['ssl_ca_location']}")
        typer.echo(f"credentials={sec['credentials_dir']}/<user>.json")
    reg = data.get("registry")
    if reg:
        typer.echo(f"schema.registry.ssl.ca.location={reg['ssl_ca_location']}")
        typer.echo("schema.registry.basic.auth.user.info=<user>:<password> (the same credentials files)")


@app.command()
def down() -> None:
    """Stop exactly the servers `up` started (and any stray one of this state directory), each within a bound."""
    n = servers.down(get_settings(), log=lambda m: err.print(m, highlight=False))
    typer.echo(f"stopped {n} server process(es)")


@app.command()
def status() -> None:
    """Each server with its ports, pid and health. Exit 1 when one is down or unhealthy."""
    rows = servers.status(get_settings())
    if not rows:
        typer.echo("no servers running (run `liaison infra up`)")
        raise typer.Exit(1)
    table = Table(title=f"liaison infra ({rows[0]['shape']})")
    for col in ("server", "ports", "pid", "process", "health", "log"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], " ".join(f"{k}={v}" for k, v in r["ports"].items()), str(r["pid"]),
                      "running" if r["alive"] else "[red]gone[/red]",
                      "[green]healthy[/green]" if r["healthy"] else f"[red]unhealthy[/red] ({escape(r['detail'])})",
                      r["log"])
    Console().print(table)
    if not all(r["alive"] and r["healthy"] for r in rows):
        raise typer.Exit(1)


@app.command()
def logs(server: Optional[str] = typer.Argument(None, help="kafka-1, kafka-2, kafka-3, registry or registry-gateway"),
         lines: int = typer.Option(40, "-n", help="lines from the end of each log")) -> None:
    """Print the end of each server's log (or of one)."""
    settings = get_settings()
    logs_dir = Path(settings.state_dir).resolve()
    files = sorted(logs_dir.glob("*/logs/*.log"))
    if server:
        files = [f for f in files if f.stem == server]
    if not files:
        _fail(InfraError(f"no log found under {logs_dir}" + (f" for {server}" if server else "")))
    for f in files:
        typer.echo(f"==> {f} <==")
        typer.echo("\n".join(f.read_text(errors="replace").splitlines()[-lines:]))

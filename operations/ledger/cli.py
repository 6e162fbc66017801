"""`liaison ledger` (the table from the changelog, or JSON) and `liaison ledger run` (the service).

Exit codes of `run`: 0 stopped (SIGTERM/SIGINT, --max-idle); 1 a fault (clients cannot go on, a topic missing);
3 fenced: another instance with the same transactional.id (liaison-ledger-<instance>) took over.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from typing import List, Optional

import typer

app = typer.Typer(invoke_without_command=True, add_completion=False,
                  help="Reciprocity ledger: given and received per partner and category, over day and week.")

Principal = typer.Option("ledger", "--principal", help="authenticate as this principal (default ledger, which "
                                                      "may read liaison.ledger; admin reads everything)")


@app.callback(invoke_without_command=True)
def ledger(ctx: typer.Context,
           as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
           partner: Optional[List[str]] = typer.Option(None, "--partner", "-p",
                                                       help="partner to show (repeatable; default: every partner "
                                                            "in the ledger)"),
           timeout: float = typer.Option(60.0, "--timeout", help="seconds to read the changelog to its end"),
           principal: str = Principal) -> None:
    """Read the ledger's changelog (liaison.ledger, read_committed, to its end) and print, per partner and
    category, records and bytes given and received and their ratio over the day and the week ending now."""
    if ctx.invoked_subcommand is not None:
        return
    from core import kafka
    from operations.ledger.changelog import read_to_end
    from operations.ledger.evaluate import rows
    from operations.ledger.render import print_ledger, report_dict

    c = kafka.consumer(f"liaison-ledger-print-{uuid.uuid4().hex[:8]}", {
        "isolation.level": "read_committed", "enable.partition.eof": True}, principal=principal)
    try:
        state = read_to_end(c, timeout=timeout)
    finally:
        c.close()
    now_ms = int(time.time() * 1000)
    table = rows(state, now_ms, [p.upper() for p in partner] if partner else None)
    if as_json:
        typer.echo(json.dumps(report_dict(table, now_ms), indent=2))
    else:
        print_ledger(table, now_ms)


@app.command()
def run(instance: str = typer.Option("0", help="instance name; transactional.id is liaison-ledger-<instance>. "
                                               "Run one instance: the same name fences a previous one"),
        group: str = typer.Option("liaison-ledger", help="consumer group of the committed offsets"),
        batch_size: int = typer.Option(2000, help="audit records per transaction at most"),
        metrics_port: int = typer.Option(None, help="serve /metrics, /healthz and /ledger on this port"),
        host: str = typer.Option("127.0.0.1", help="address of the metrics server"),
        max_idle: float = typer.Option(None, help="exit after this many seconds without audit records"),
        principal: str = typer.Option("ledger", "--principal", help="principal of the service's clients"),
        pause_before_commit: float = typer.Option(0.0, hidden=True,
                                                  help="test hook: seconds with a transaction open before its "
                                                       "commit")) -> None:
    """Consume both audits (read_committed), count given and received per partner, category and hour, and write
    the changed hour buckets to liaison.ledger with the consumed offsets in one transaction, exactly once."""
    from operations.ledger.service import FINAL, LedgerFault, LedgerService

    try:
        service = LedgerService(instance=instance, group_id=group, batch_size=batch_size, principal=principal,
                                pause_before_commit=pause_before_commit)
    except LedgerFault as f:
        typer.echo(f"error: ledger liaison-ledger-{instance} could not start: {f.what}", err=True)
        raise typer.Exit(3 if f.kind == FINAL else 1)
    signal.signal(signal.SIGTERM, lambda s, f: service.stop())
    signal.signal(signal.SIGINT, lambda s, f: service.stop())
    server = None
    if metrics_port is not None:
        from operations.ledger.serve import serve_in_thread

        try:
            server = serve_in_thread(service, host, metrics_port)
        except OSError as e:
            service.close()
            typer.echo(f"error: cannot listen on {host}:{metrics_port}: {e.strerror}", err=True)
            raise typer.Exit(2)
        print(f"serving http://{host}:{server.server_address[1]}/metrics, /healthz and /ledger", file=sys.stderr,
              flush=True)
    try:
        service.run(max_idle=max_idle)
    except LedgerFault as f:
        typer.echo(f"error: ledger {service.transactional_id} stopped: {f.what}; the open transaction was not "
                   "committed, so nothing is lost or counted twice on restart", err=True)
        raise typer.Exit(3 if f.kind == FINAL else 1)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()

"""The `liaison` command. Each area registers its own sub-commands; this file only assembles them."""

from __future__ import annotations

import typer

from deploy.infra.cli import app as infra_app
from consumers.forwarder.cli import forward
from consumers.ingress.cli import ingress
from consumers.deconfliction.cli import deconflict
from release.cli import app as policy_app
from liaison.demo import demo
from deploy.governance import app as schemas_app
from operations.lag.cli import app as lag_app
from operations.ledger.cli import app as ledger_app
from producers.cli import publish, simulate_app
from deploy.topics import app as topics_app
from deploy.acl import app as acl_app
from deploy.quotas import app as quotas_app
from consumers.officers.feed import subscribe
from console.cli import console

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Liaison bus: need-to-know forwarding of Avro liaison messages on Kafka.")
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
app.add_typer(acl_app, name="acl")
app.add_typer(quotas_app, name="quotas")
app.command("subscribe")(subscribe)
app.add_typer(schemas_app, name="schemas")
app.command("publish")(publish)
app.add_typer(simulate_app, name="simulate")
app.command("forward")(forward)
app.command("ingress")(ingress)
app.command("deconflict")(deconflict)
app.command("demo")(demo)
app.command("console")(console)
app.add_typer(policy_app, name="policy", help="Partner release policies: check and explain.")
app.add_typer(lag_app, name="lag")
app.add_typer(ledger_app, name="ledger")


def main() -> None:
    """Run the CLI; an unreachable server is one clear line and exit 2, not a traceback."""
    import sys

    from core.errors import describe_connection_error

    try:
        app()
    except Exception as e:  # noqa: BLE001
        text = describe_connection_error(e)
        if text is None:
            raise
        print(f"error: {text}", file=sys.stderr)
        sys.exit(2)

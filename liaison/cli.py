"""The `liaison` command. Each area registers its own sub-commands; this file only assembles them."""

from __future__ import annotations

import typer

from deploy.infra.cli import app as infra_app
from consumers.forwarder.cli import forward
from release.cli import app as policy_app
from liaison.demo import demo
from deploy.governance import app as schemas_app
from operations.lag.cli import app as lag_app
from producers.cli import publish, simulate
from deploy.topics import app as topics_app
from deploy.acl import app as acl_app
from consumers.officers.feed import subscribe

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Liaison bus: need-to-know forwarding of Avro liaison messages on Kafka.")
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
app.add_typer(acl_app, name="acl")
app.command("subscribe")(subscribe)
app.add_typer(schemas_app, name="schemas")
app.command("publish")(publish)
app.command("simulate")(simulate)
app.command("forward")(forward)
app.command("demo")(demo)
app.add_typer(policy_app, name="policy", help="Partner release policies: check and explain.")
app.add_typer(lag_app, name="lag")


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

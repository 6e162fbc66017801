"""The `liaison` command. Each area registers its own sub-commands; this file only assembles them."""

from __future__ import annotations

import typer

from liaison.infra.cli import app as infra_app
from liaison.governance import app as schemas_app
from liaison.topics import app as topics_app

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Liaison bus: need-to-know forwarding of Avro liaison messages on Kafka.")
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")


def main() -> None:
    app()

"""`liaison console`: serve the web console (uvicorn) until Ctrl-C or SIGTERM."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import REPO_ROOT
from core.logs import get_logger
from core.settings import get_settings
from console.app import WEB_DIR, ConsoleConfig, create_app
from console.precision import grids_of
from release.errors import PolicyError
from release.loader import read_policy

__all__ = ["ConsoleSettings", "console", "build_config"]

log = get_logger("console")


class ConsoleSettings(BaseSettings):
    """LIAISON_CONSOLE_<FIELD>; the command's options win."""

    model_config = SettingsConfigDict(env_prefix="LIAISON_CONSOLE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    #: the recipients' policies: who can sign in (their partners and components) and the grids of each
    policies: Path = REPO_ROOT / "deploy" / "policies"
    #: how far back a new session starts reading (seconds)
    since_s: float = Field(3600.0, gt=0)
    #: items kept per session
    capacity: int = Field(5000, ge=10, le=200_000)
    #: NAME=URL,... services whose /healthz and /readyz the operations view shows
    health: str = ""

    @field_validator("health")
    @classmethod
    def _health(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            name, sep, url = part.partition("=")
            if not sep or not name or not url.startswith(("http://", "https://")):
                raise ValueError(f"{part!r}: give NAME=http://host:port (comma-separated)")
        return v

    def health_targets(self) -> dict[str, str]:
        return {n.strip(): u.strip() for n, _, u in (p.partition("=") for p in self.health.split(",") if p.strip())}


def build_config(cs: ConsoleSettings) -> ConsoleConfig:
    """Who can sign in and each recipient's grids, from the policy files (raises PolicyError naming file and line)."""
    partners, components, grids = set(), set(), {}
    files = sorted(Path(cs.policies).glob("*.yaml"))
    if not files:
        raise PolicyError(str(cs.policies), [(None, "", "no policy (*.yaml) here: nobody could sign in")])
    for f in files:
        spec = read_policy(f).spec
        recipient = spec.partner or spec.component
        (partners if spec.partner else components).add(recipient)
        grids[recipient] = grids_of(spec)
    if not (WEB_DIR / "node_modules" / "leaflet").is_dir():
        raise RuntimeError(f"{WEB_DIR / 'node_modules'} lacks Leaflet: run `make install` (npm ci in console/web)")
    return ConsoleConfig(get_settings(), frozenset(partners), frozenset(components), grids, cs.since_s, cs.capacity,
                         cs.health_targets())


def console(host: str = typer.Option(None, help="address to serve on (default 127.0.0.1)"),
            port: int = typer.Option(None, help="port (default 8090; 0: any free port, printed)"),
            policies: Path = typer.Option(None, help="policy folder (default deploy/policies)"),
            health: str = typer.Option(None, help="NAME=URL,... of services whose health the operations view "
                                                  "shows, e.g. forwarder=http://127.0.0.1:9400"),
            since: float = typer.Option(None, help="seconds of history a new session starts with (default 3600)")
            ) -> None:
    """Serve the console: liaison officers', components' and operations' views in a browser."""
    import socket

    import uvicorn

    given = {k: v for k, v in {"host": host, "port": port, "policies": policies, "health": health,
                               "since_s": since}.items() if v is not None}
    try:
        cs = ConsoleSettings(**given)
        config = build_config(cs)
    except (ValidationError, PolicyError, RuntimeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    sock = socket.socket(socket.AF_INET6 if ":" in cs.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((cs.host, cs.port))
    except OSError as e:
        typer.echo(f"error: cannot serve on {cs.host}:{cs.port}: {e.strerror}", err=True)
        raise typer.Exit(2)
    bound = sock.getsockname()[1]
    url = f"http://{cs.host}:{bound}/"
    log.info("console serving", url=url, partners=sorted(config.partners), components=sorted(config.components))
    typer.echo(f"console: {url}", err=True)
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=3))
    server.run(sockets=[sock])

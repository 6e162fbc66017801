"""The registry gateway's setup, start and health check (the service itself: :mod:`deploy.infra.gateway`).

Setup writes, under ``<state>/<shape>/registry-gateway/`` (0700, files 0600):

    users.json     scrypt hashes of the principals' passwords (service principals and partner principals; not
                   broker, controller nor registry, which never talk to the registry's HTTP API)
    token-key.pem  an RSA key made when the registry and the gateway start together: the gateway signs its
                   tokens to Apicurio with it, Apicurio is given the public half (deploy.infra.registry); when
                   one of the two restarts while the other runs, the key is kept (both read it at start only)
    gateway.json   what the gateway process reads: addresses, TLS files, the two files above
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from core import REPO_ROOT
from deploy.infra import security
from deploy.infra.client_env import Security
from deploy.infra.gateway import token as gateway_token
from deploy.infra.gateway import users as gateway_users
from deploy.infra.plan import Plan
from deploy.infra.process import Proc, http_status, server_marker, spawn

__all__ = ["NAME", "GatewayFiles", "gateway_principals", "prepare_gateway", "start_gateway", "gateway_healthy",
           "apicurio_healthy"]

NAME = "registry-gateway"
#: SCRAM users that never use the registry's HTTP API (Apicurio's own KafkaSQL user among them).
NOT_REGISTRY_USERS = (security.BROKER, security.CONTROLLER, "registry")


@dataclass(frozen=True)
class GatewayFiles:
    config: Path
    users: Path
    token_key: Path
    #: the token key's public half, base64 DER, for quarkus.oidc.public-key
    public_key: str


def gateway_principals(users: list[str]) -> list[str]:
    return sorted(u for u in users if u not in NOT_REGISTRY_USERS)


def _users_current(path: Path, principals: list[str], credentials_dir: Path) -> bool:
    """The hashes file names exactly these principals and is newer than every credentials file (a password is
    only ever changed by rewriting its file)."""
    try:
        data = gateway_users.load_users(path)
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return False
    if sorted(data["users"]) != principals or data["scrypt"] != gateway_users.SCRYPT:
        return False
    return all((credentials_dir / f"{u}.json").stat().st_mtime <= mtime for u in principals)


def prepare_gateway(plan: Plan, sec: Security, fresh_key: bool = True) -> GatewayFiles:
    """Write the gateway's files; ``fresh_key=False`` keeps the token key when there is one (Apicurio or the
    gateway keeps running and holds the current key's half)."""
    d = plan.gateway_dir
    principals = gateway_principals(sec.users)
    users_file = d / "users.json"
    if not _users_current(users_file, principals, sec.credentials_dir):
        gateway_users.write_users(users_file, {u: sec.passwords[u] for u in principals}, security.write_private)
    key_file = d / "token-key.pem"
    if not fresh_key and key_file.exists():
        pem = key_file.read_bytes()
    else:
        pem = gateway_token.generate_key()
        security.write_private(key_file, pem)
    config = d / "gateway.json"
    cfg = {"host": "127.0.0.1", "port": plan.gateway_port, "upstream": f"https://127.0.0.1:{plan.registry_port}",
           "ca": str(sec.tls.ca_pem), "users_file": str(users_file), "token_key_file": str(key_file),
           "certfile": str(sec.tls.gateway_cert), "keyfile": str(sec.tls.gateway_key)}
    security.write_private(config, json.dumps(cfg, indent=2) + "\n")
    return GatewayFiles(config, users_file, key_file, gateway_token.public_key_b64(pem))


def start_gateway(plan: Plan, files: GatewayFiles) -> Proc:
    log = plan.logs_dir / f"{NAME}.log"
    cmd = [sys.executable, "-m", "deploy.infra.gateway", "--config", str(files.config),
           server_marker(plan.state, NAME)]
    pid = spawn(cmd, log, env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
    return Proc(NAME, NAME, pid, {"https": plan.gateway_port}, str(log))


def gateway_healthy(url: str, ca: str | None = None, timeout: float = 3.0) -> bool:
    """The gateway at `url` (its registry URL, .../apis/ccompat/v7) answers its /health with 200, which it does
    only when Apicurio accepts its token."""
    origin = url.split("/apis/", 1)[0]
    return http_status(f"{origin}/health", timeout, ca) == 200


def apicurio_healthy(api_url: str, ca: str, token_key: Path, timeout: float = 3.0) -> bool:
    """Apicurio answers GET /subjects with 200 over TLS to a token signed with the gateway's key."""
    try:
        bearer, _ = gateway_token.mint(Path(token_key).read_bytes(), lifetime=60)
    except (OSError, ValueError):
        return False
    return http_status(f"{api_url}/subjects", timeout, ca, {"Authorization": f"Bearer {bearer}"}) == 200

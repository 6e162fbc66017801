"""The state file of one running set of servers, ``<state_dir>/infra.json``: shape, processes, client addresses
(Kafka bootstrap, the registry gateway's URL) and client security (Kafka SASL/TLS, the registry's basic auth)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from deploy.infra.client_env import Security
from deploy.infra.plan import Plan
from deploy.infra.process import Proc

__all__ = ["infra_file", "read_state", "write_state"]


def infra_file(state: Path) -> Path:
    return state / "infra.json"


def read_state(state: Path) -> dict | None:
    try:
        return json.loads(infra_file(state).read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_state(plan: Plan, procs: list[Proc], sec: Security | None = None) -> dict:
    data = {
        "shape": plan.shape,
        "bootstrap_servers": plan.bootstrap,
        "schema_registry_url": plan.registry_url,
        "registry_storage": plan.registry_storage,
        "processes": [asdict(p) for p in procs],
    }
    if sec is not None:
        data["security"] = sec.state()
        # how clients reach the registry (the gateway): basic auth with their principal's credentials, over TLS
        # with this CA; `upstream` and `token_key` are for the servers' own health checks, not for clients
        data["registry"] = {"auth": "basic", "ssl_ca_location": str(sec.tls.ca_pem),
                            "upstream": plan.registry_api_url,
                            "token_key": str(plan.gateway_dir / "token-key.pem")}
    plan.state.mkdir(parents=True, exist_ok=True)
    tmp = infra_file(plan.state).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(infra_file(plan.state))
    return data

"""Client security of one set of servers: its TLS CA and SCRAM passwords, and what points a client at it.

:class:`Security` holds the TLS files and passwords generated at setup (see deploy.infra.security);
:func:`client_env` and :func:`client_settings` turn an infra state into the ``LIAISON_*`` variables or
the :class:`~core.settings.Settings` of a client talking to those servers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from deploy.infra import security
from deploy.infra.errors import InfraError
from deploy.infra.plan import Plan

__all__ = ["Security", "prepare_security", "client_env", "client_settings"]


@dataclass
class Security:
    """TLS files and passwords of one set of servers (generated once under <state>/<shape>/)."""

    tls: security.Tls
    passwords: dict[str, str]
    users: list[str]  # SCRAM users
    credentials_dir: Path

    def state(self) -> dict:
        """The `security` block of infra.json: what a client needs (no secret: passwords stay in their files)."""
        return {"protocol": security.PROTOCOL, "mechanism": security.SCRAM, "ssl_ca_location": str(self.tls.ca_pem),
                "credentials_dir": str(self.credentials_dir), "users": self.users}

    def client_config(self, bootstrap: str, user: str = security.ADMIN) -> dict:
        return {"bootstrap.servers": bootstrap, "security.protocol": security.PROTOCOL,
                "sasl.mechanisms": security.SCRAM, "sasl.username": user, "sasl.password": self.passwords[user],
                "ssl.ca.location": str(self.tls.ca_pem)}

    def fingerprint(self) -> str:
        """Identifies the SCRAM users a storage was formatted with (admin's password decides access)."""
        return hashlib.sha256(f"{security.ADMIN}:{self.passwords[security.ADMIN]}".encode()).hexdigest()[:16]


def _acl_principals(deploy_dir: Path) -> list[str]:
    from deploy.acl import AclError, load_acls, principals

    try:
        return principals(load_acls(deploy_dir / "acls.yaml"))
    except (OSError, AclError) as e:
        raise InfraError(f"cannot read the ACL file: {e}") from None


def prepare_security(plan: Plan, deploy_dir: Path) -> Security:
    tls = security.ensure_tls(plan.shape_dir)
    users = security.scram_users(_acl_principals(deploy_dir))
    passwords = security.ensure_credentials(plan.shape_dir, users + [security.CONTROLLER], plan.bootstrap, tls.ca_pem)
    return Security(tls, passwords, users, plan.credentials_dir)


def client_env(data: dict) -> dict[str, str]:
    """LIAISON_* variables that point a process (tests, benchmarks, a shell) at the servers of an infra state,
    security included: `os.environ.update(servers.client_env(data))`."""
    env = {"LIAISON_BOOTSTRAP_SERVERS": data["bootstrap_servers"],
           "LIAISON_SCHEMA_REGISTRY_URL": data["schema_registry_url"]}
    sec = data.get("security")
    if sec:
        env.update({"LIAISON_SECURITY_PROTOCOL": sec["protocol"], "LIAISON_SASL_MECHANISM": sec["mechanism"],
                    "LIAISON_SSL_CA_LOCATION": sec["ssl_ca_location"],
                    "LIAISON_CREDENTIALS_DIR": sec["credentials_dir"]})
    else:
        env["LIAISON_SECURITY_PROTOCOL"] = "PLAINTEXT"
    reg = data.get("registry")
    if reg:
        env.update({"LIAISON_REGISTRY_AUTH": reg["auth"], "LIAISON_REGISTRY_CA_LOCATION": reg["ssl_ca_location"]})
    return env


def client_settings(data: dict) -> Settings:
    """Settings whose clients talk to the servers of an infra state (whatever the environment says)."""
    sec = data.get("security") or {}
    reg = data.get("registry") or {}
    return Settings(bootstrap_servers=data["bootstrap_servers"], schema_registry_url=data["schema_registry_url"],
                    registry_auth=reg.get("auth", "auto"), registry_ca_location=reg.get("ssl_ca_location", ""),
                    security_protocol=sec.get("protocol", "PLAINTEXT"),
                    sasl_mechanism=sec.get("mechanism", security.SCRAM),
                    ssl_ca_location=sec.get("ssl_ca_location", ""), credentials_dir=sec.get("credentials_dir", ""),
                    sasl_username="", sasl_password="")

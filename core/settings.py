"""Configuration, validated by pydantic-settings. Every field can be set as LIAISON_<FIELD>."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import REPO_ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIAISON_", extra="ignore")

    #: Kafka bootstrap servers. Empty: use the servers `liaison infra up` started (or 127.0.0.1:9092).
    bootstrap_servers: str = ""
    #: Confluent-compatible schema registry URL. Empty: the local Apicurio registry.
    schema_registry_url: str = ""
    #: Where the local servers keep data, logs and pids.
    state_dir: Path = REPO_ROOT / ".state"
    #: Jar cache shared by every clone on this machine (outside git).
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "liaison-bus")
    deploy_dir: Path = REPO_ROOT / "deploy"
    #: First port of the local servers; the layout is fixed relative to it (see deploy.infra.servers).
    port_base: int = 9092
    #: Apicurio's HTTPS port (management: the next one). Clients never use it: they use the gateway.
    registry_port: int = 8081
    #: The registry gateway's port, the registry address of every client. 0: registry_port + 2.
    registry_gateway_port: int = 0
    #: Registry storage: kafkasql (survives restarts, needs the broker) or mem.
    registry_storage: Literal["kafkasql", "mem"] = "kafkasql"
    shape: Literal["single", "cluster"] = "single"
    log_level: str = "INFO"
    #: Seconds a server may take to become healthy.
    start_timeout: float = 90.0
    #: How the forwarder decides: the compiled core (compiled/, the reference for what it does not take) or the
    #: Python reference (release.decide) for every record.
    forwarder_engine: Literal["compiled", "reference"] = "compiled"
    #: The same for the ingress guard: the compiled core accepts what it takes outright, the reference checks the
    #: rest (and names every quarantine's check), or the reference checks every record.
    guard_engine: Literal["compiled", "reference"] = "compiled"

    # --- client security (see `security()`): empty means "as the running local servers say" ---------------
    #: Which principal (SASL user) a client authenticates as when no caller chooses one: `admin` for tooling.
    principal: str = "admin"
    #: PLAINTEXT, SASL_SSL, ... Empty: SASL_SSL when the local servers serving the bootstrap address are secured
    #: (their infra.json says so), otherwise PLAINTEXT.
    security_protocol: str = ""
    sasl_mechanism: str = "SCRAM-SHA-512"
    #: CA certificate (PEM) that signed the brokers' certificates.
    ssl_ca_location: str = ""
    #: Folder of `<principal>.json` credential files (username, password), as `liaison infra up` writes them.
    credentials_dir: str = ""
    #: One fixed identity for every client of this process (external clusters); wins over credentials_dir.
    sasl_username: str = ""
    sasl_password: str = ""

    # --- registry client security (see `registry_client_config()`) ------------------------------------------
    #: basic: send the principal's credentials (as for SASL) to the registry; none: send nothing; auto: basic
    #: when the registry URL is the gateway of local servers (their infra.json says so), otherwise none.
    registry_auth: Literal["auto", "basic", "none"] = "auto"
    #: CA certificate (PEM) that signed the registry's HTTPS certificate. Empty: as the local servers say.
    registry_ca_location: str = ""

    def infra_file(self) -> Path:
        return self.state_dir / "infra.json"

    def running_infra(self) -> dict | None:
        try:
            return json.loads(self.infra_file().read_text())
        except (FileNotFoundError, ValueError):
            return None

    def kafka_bootstrap(self) -> str:
        if self.bootstrap_servers:
            return self.bootstrap_servers
        infra = self.running_infra()
        if infra and infra.get("bootstrap_servers"):
            return infra["bootstrap_servers"]
        return f"127.0.0.1:{self.port_base}"

    def gateway_port(self) -> int:
        return self.registry_gateway_port or self.registry_port + 2

    def registry_url(self) -> str:
        if self.schema_registry_url:
            return self.schema_registry_url
        infra = self.running_infra()
        if infra and infra.get("schema_registry_url"):
            return infra["schema_registry_url"]
        return f"https://127.0.0.1:{self.gateway_port()}/apis/ccompat/v7"

    def registry_client_config(self, principal: str | None = None) -> dict[str, str]:
        """confluent-kafka SchemaRegistryClient settings: the URL, and for the registry gateway of local servers
        (or LIAISON_REGISTRY_AUTH=basic) the principal's credentials as HTTP basic auth (`principal`, default
        LIAISON_PRINCIPAL; the same lookup as the Kafka SASL credentials) and the CA of its certificate.
        Raises CredentialsError when credentials are needed and missing."""
        url = self.registry_url()
        conf = {"url": url}
        infra = self.local_infra_for(url, key="schema_registry_url")
        reg = (infra or {}).get("registry") or {}
        auth = self.registry_auth if self.registry_auth != "auto" else reg.get("auth", "none")
        if auth == "basic":
            sec = self.security()
            if sec is None and not (self.credentials_dir or (self.sasl_username and self.sasl_password)):
                raise CredentialsError(f"the registry at {url} needs credentials: set LIAISON_CREDENTIALS_DIR "
                                       f"(folder of <principal>.json) or LIAISON_SASL_USERNAME/PASSWORD")
            sec = sec or ClientSecurity("", "", None, Path(self.credentials_dir) if self.credentials_dir else None,
                                        self.sasl_username or None, self.sasl_password or None)
            user, password = sec.credentials(principal or self.principal)
            conf["basic.auth.user.info"] = f"{user}:{password}"
        ca = self.registry_ca_location or reg.get("ssl_ca_location")
        if ca and url.startswith("https:"):
            conf["ssl.ca.location"] = ca
        return conf

    def local_infra_for(self, address: str, key: str = "bootstrap_servers") -> dict | None:
        """The infra state of this clone's own servers whose `key` (bootstrap_servers, schema_registry_url) is
        `address`: the state directory's first, then any other state directory under <repo>/.state (tests,
        benchmarks) - so a process pointed at them with LIAISON_BOOTSTRAP_SERVERS / LIAISON_SCHEMA_REGISTRY_URL
        alone still finds their CA and credentials."""
        candidates = [Path(self.state_dir) / "infra.json"]
        root = REPO_ROOT / ".state"
        candidates += [root / "infra.json"] + sorted(root.glob("*/infra.json"))
        seen = set()
        for f in candidates:
            try:
                resolved = f.resolve()
            except OSError:
                continue
            if resolved in seen:
                continue
            seen.add(resolved)
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if data.get(key) == address:
                return data
        return None

    def security(self) -> ClientSecurity | None:
        """How clients authenticate, or None for PLAINTEXT.

        1. LIAISON_SECURITY_PROTOCOL (+ LIAISON_SSL_CA_LOCATION, LIAISON_CREDENTIALS_DIR or
           LIAISON_SASL_USERNAME/PASSWORD) when set: an external cluster, or tests pinning their servers;
        2. else the `security` block of the infra state of the local servers serving the bootstrap address;
        3. else PLAINTEXT (e.g. LIAISON_BOOTSTRAP_SERVERS pointing at an external PLAINTEXT cluster).
        """
        if self.security_protocol:
            if self.security_protocol.upper() == "PLAINTEXT":
                return None
            return ClientSecurity(self.security_protocol.upper(), self.sasl_mechanism, self.ssl_ca_location or None,
                                  Path(self.credentials_dir) if self.credentials_dir else None,
                                  self.sasl_username or None, self.sasl_password or None)
        infra = self.local_infra_for(self.kafka_bootstrap())
        sec = (infra or {}).get("security")
        if not sec:
            return None
        return ClientSecurity(sec["protocol"], sec.get("mechanism", "SCRAM-SHA-512"), sec.get("ssl_ca_location"),
                              Path(sec["credentials_dir"]) if sec.get("credentials_dir") else None,
                              self.sasl_username or None, self.sasl_password or None)


class CredentialsError(RuntimeError):
    """No credentials for the principal a client must authenticate as (one line, actionable)."""


@dataclass(frozen=True)
class ClientSecurity:
    """Client-side security of the Kafka connection, in librdkafka's vocabulary."""

    protocol: str
    mechanism: str
    ca_location: str | None
    credentials_dir: Path | None
    username: str | None = None
    password: str | None = None

    def credentials_file(self, principal: str) -> Path | None:
        return self.credentials_dir / f"{principal}.json" if self.credentials_dir else None

    def credentials(self, principal: str) -> tuple[str, str]:
        """(username, password) for `principal`: the fixed identity if one is configured, else its file."""
        if self.username and self.password:
            return self.username, self.password
        f = self.credentials_file(principal)
        if f is None:
            raise CredentialsError(f"no credentials for principal {principal!r}: set LIAISON_CREDENTIALS_DIR "
                                   f"(folder of <principal>.json) or LIAISON_SASL_USERNAME/LIAISON_SASL_PASSWORD")
        return read_credentials(f, principal)

    def client_config(self, principal: str) -> dict[str, str]:
        conf = {"security.protocol": self.protocol}
        if "SASL" in self.protocol:
            user, password = self.credentials(principal)
            conf.update({"sasl.mechanisms": self.mechanism, "sasl.username": user, "sasl.password": password})
        if "SSL" in self.protocol and self.ca_location:
            conf["ssl.ca.location"] = self.ca_location
        return conf


def read_credentials(path: Path, principal: str | None = None) -> tuple[str, str]:
    """(username, password) from a credentials file written by `liaison infra up`."""
    try:
        data = json.loads(Path(path).read_text())
        return data["username"], data["password"]
    except FileNotFoundError:
        who = f"principal {principal!r}" if principal else "this client"
        raise CredentialsError(f"no credentials for {who}: {path} does not exist (`liaison infra up` writes one "
                               f"file per user; is the principal declared in deploy/acls.yaml?)") from None
    except PermissionError:
        raise CredentialsError(f"cannot read the credentials file {path} (permission denied)") from None
    except (ValueError, KeyError):
        raise CredentialsError(f"{path} is not a credentials file (JSON with username and password)") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

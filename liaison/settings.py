"""Configuration, validated by pydantic-settings. Every field can be set as LIAISON_<FIELD>."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from liaison import REPO_ROOT


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
    #: First port of the local servers; the layout is fixed relative to it (see liaison.infra.servers).
    port_base: int = 9092
    registry_port: int = 8081
    #: Registry storage: kafkasql (survives restarts, needs the broker) or mem.
    registry_storage: Literal["kafkasql", "mem"] = "kafkasql"
    shape: Literal["single", "cluster"] = "single"
    log_level: str = "INFO"
    #: Seconds a server may take to become healthy.
    start_timeout: float = 90.0

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

    def registry_url(self) -> str:
        if self.schema_registry_url:
            return self.schema_registry_url
        infra = self.running_infra()
        if infra and infra.get("schema_registry_url"):
            return infra["schema_registry_url"]
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

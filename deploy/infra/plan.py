"""Where one set of local servers lives: its shape, Kafka nodes and their ports, directories and addresses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from deploy.infra import security
from deploy.infra.errors import InfraError

__all__ = ["SHAPES", "KafkaNode", "kafka_nodes", "Plan", "make_plan"]

SHAPES = ("single", "cluster")


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    broker_port: int
    controller_port: int

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}"


def kafka_nodes(shape: str, port_base: int) -> list[KafkaNode]:
    """Port layout: node i listens on port_base + 2(i-1) (clients) and the next port (controller)."""
    count = 1 if shape == "single" else 3
    return [KafkaNode(i, port_base + 2 * (i - 1), port_base + 2 * (i - 1) + 1) for i in range(1, count + 1)]


@dataclass
class Plan:
    shape: str
    state: Path
    nodes: list[KafkaNode]
    registry_port: int
    registry_mgmt_port: int
    registry_storage: str
    #: the registry gateway, the registry address every client uses (Apicurio itself is behind it)
    gateway_port: int = 0

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.nodes)

    @property
    def registry_url(self) -> str:
        """The schema registry URL of clients: the gateway's (HTTPS, basic auth)."""
        return f"https://127.0.0.1:{self.gateway_port}/apis/ccompat/v7"

    @property
    def registry_api_url(self) -> str:
        """Apicurio's own Confluent-compatible API (HTTPS; only the gateway's token opens it)."""
        return f"https://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    @property
    def gateway_dir(self) -> Path:
        return self.shape_dir / "registry-gateway"

    @property
    def shape_dir(self) -> Path:
        return self.state / self.shape

    @property
    def logs_dir(self) -> Path:
        return self.shape_dir / "logs"

    @property
    def credentials_dir(self) -> Path:
        return security.credentials_dir(self.shape_dir)

    @property
    def names(self) -> list[str]:
        """Every server of this plan, in start order: the Kafka nodes, the registry, the registry gateway."""
        return [n.name for n in self.nodes] + ["registry", "registry-gateway"]

    def server_ports(self, name: str) -> dict[str, int]:
        """The ports of server ``name`` as infra.json records them."""
        for n in self.nodes:
            if n.name == name:
                return {"client": n.broker_port, "controller": n.controller_port}
        if name == "registry":
            return {"https": self.registry_port, "management": self.registry_mgmt_port}
        if name == "registry-gateway":
            return {"https": self.gateway_port}
        raise InfraError(f"unknown server {name!r}: one of {', '.join(self.names)}")

    def ports(self, names: list[str] | None = None) -> list[tuple[int, str]]:
        """(port, what) of every server, or of ``names`` only."""
        what = {"client": "client listener", "controller": "controller listener", "https": "HTTPS",
                "management": "management"}
        out = []
        for name in self.names:
            if names is None or name in names:
                out += [(port, f"{name} {what[kind]}") for kind, port in self.server_ports(name).items()]
        return out


def make_plan(settings: Settings, shape: str | None = None, registry_storage: str | None = None) -> Plan:
    shape = shape or settings.shape
    if shape not in SHAPES:
        raise InfraError(f"unknown shape {shape!r}: choose one of {', '.join(SHAPES)}")
    return Plan(
        shape=shape,
        state=Path(settings.state_dir).resolve(),
        nodes=kafka_nodes(shape, settings.port_base),
        registry_port=settings.registry_port,
        registry_mgmt_port=settings.registry_port + 1,
        registry_storage=registry_storage or settings.registry_storage,
        gateway_port=settings.gateway_port(),
    )

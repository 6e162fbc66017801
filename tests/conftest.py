"""Test backends. Integration tests get real servers, chosen in this order:

1. LIAISON_BOOTSTRAP_SERVERS / LIAISON_SCHEMA_REGISTRY_URL from the environment;
2. testcontainers (official Kafka image in KRaft mode + Apicurio), only when asked with
   LIAISON_TEST_BACKEND=testcontainers: those images run PLAINTEXT, so the security tests FAIL there (loudly,
   never a silent skip: a green run on them would prove no partner isolation);
3. otherwise the project's own local servers (`deploy.infra`), started in `.state/test` on their own
   ports (29092.., registry 28081) so they never collide with `make demo`, and stopped at the end.

The run prints which backend it used.

The local servers are secured (TLS, SASL SCRAM-SHA-512, default-deny ACLs from deploy/acls.yaml): the session
exports their LIAISON_SECURITY_PROTOCOL / LIAISON_SSL_CA_LOCATION / LIAISON_CREDENTIALS_DIR, so every client -
in-process or a `liaison` subprocess - authenticates. Tests act as `admin` (LIAISON_PRINCIPAL's default) for
setup and read-back; the services run as their own principals (forwarder, producer-<component>, partner-<code>).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import REPO_ROOT
from core import settings as settings_mod

# Overridable so that two suites on one machine (parallel work) each get their own servers.
TEST_STATE = Path(os.environ.get("LIAISON_TEST_STATE", REPO_ROOT / ".state" / "test"))
TEST_PORT_BASE = int(os.environ.get("LIAISON_TEST_PORT_BASE", "29092"))
TEST_REGISTRY_PORT = int(os.environ.get("LIAISON_TEST_REGISTRY_PORT", "28081"))


@dataclass
class Backend:
    kind: str
    bootstrap: str
    registry_url: str
    detail: str = ""
    stop: object = None
    #: LIAISON_* variables that point clients at these servers (security included); default: the two addresses
    env: dict | None = None


_BACKEND: Backend | None = None


def _docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable engine
        return False


def _testcontainers_backend() -> Backend:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer

    kafka = KafkaContainer("apache/kafka:4.3.1").with_kraft()
    kafka.start()
    registry = (DockerContainer("apicurio/apicurio-registry:3.3.3").with_exposed_ports(8080)
                .with_env("QUARKUS_HTTP_HOST", "0.0.0.0"))
    registry.start()
    wait_for_logs(registry, "Listening on", timeout=120)
    url = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8080)}/apis/ccompat/v7"

    def stop():
        registry.stop()
        kafka.stop()

    return Backend("testcontainers", kafka.get_bootstrap_server(), url, "apache/kafka + apicurio images", stop)


def _local_backend() -> Backend:
    from deploy.infra import servers

    s = settings_mod.Settings(state_dir=TEST_STATE, port_base=TEST_PORT_BASE, registry_port=TEST_REGISTRY_PORT,
                              registry_storage="mem", bootstrap_servers="", schema_registry_url="")
    running = servers.status(s)
    reuse = bool(running) and all(r["alive"] and r["healthy"] for r in running)
    data = servers.up(s, "single", "mem", log=lambda *_: None)
    # Servers another session started (a concurrent run, or `make up`-style reuse) are left running.
    stop = None if reuse else (lambda: servers.down(s, log=lambda *_: None))
    secured = " (SASL_SSL, ACLs)" if data.get("security") else " (PLAINTEXT)"
    return Backend("local", data["bootstrap_servers"], data["schema_registry_url"],
                   f"project servers in {TEST_STATE}{secured}" + (" (reused)" if reuse else ""), stop,
                   servers.client_env(data))


def get_backend() -> Backend:
    global _BACKEND
    if _BACKEND is None:
        env_bs, env_url = os.environ.get("LIAISON_BOOTSTRAP_SERVERS"), os.environ.get("LIAISON_SCHEMA_REGISTRY_URL")
        if env_bs and env_url:
            _BACKEND = Backend("environment", env_bs, env_url, "LIAISON_BOOTSTRAP_SERVERS/LIAISON_SCHEMA_REGISTRY_URL")
        elif os.environ.get("LIAISON_TEST_BACKEND") == "testcontainers":
            if not _docker_answers():
                raise pytest.UsageError("LIAISON_TEST_BACKEND=testcontainers but no Docker engine answers")
            _BACKEND = _testcontainers_backend()
        else:
            _BACKEND = _local_backend()
        os.environ["LIAISON_BOOTSTRAP_SERVERS"] = _BACKEND.bootstrap
        os.environ["LIAISON_SCHEMA_REGISTRY_URL"] = _BACKEND.registry_url
        os.environ.update(_BACKEND.env or {})
        settings_mod.get_settings.cache_clear()
    return _BACKEND


@pytest.fixture(scope="session")
def backend() -> Backend:
    """Real Kafka + registry; every integration test depends on it (directly or via `settings`)."""
    return get_backend()


@pytest.fixture(scope="session")
def settings(backend) -> settings_mod.Settings:
    return settings_mod.get_settings()


def pytest_terminal_summary(terminalreporter):
    if _BACKEND is not None:
        terminalreporter.write_line(
            f"integration backend: {_BACKEND.kind} (kafka {_BACKEND.bootstrap}, registry {_BACKEND.registry_url}; "
            f"{_BACKEND.detail})")
    else:
        terminalreporter.write_line("integration backend: none used")


def pytest_sessionfinish(session, exitstatus):
    if _BACKEND is not None and _BACKEND.stop:
        _BACKEND.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        path = Path(str(item.fspath))
        if "integration" in path.parts and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
        if "unit" in path.parts and not item.get_closest_marker("unit"):
            item.add_marker(pytest.mark.unit)

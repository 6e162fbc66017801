"""The schema registry (Apicurio): its KafkaSQL client configuration, start and health check."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from deploy.infra import security
from deploy.infra.client_env import Security
from deploy.infra.jars import ServerJars
from deploy.infra.plan import Plan
from deploy.infra.process import Proc, java_cmd, server_marker, spawn

__all__ = ["start_registry", "registry_healthy"]


def _registry_config(plan: Plan, sec: Security) -> Path:
    """Quarkus reads <cwd>/config/application.properties: the KafkaSQL client's credentials go there (0600), not
    in the environment or on the command line. `apicurio.kafka.common.*` is passed to every Kafka client of the
    KafkaSQL storage (producer, consumers, admin)."""
    cwd = plan.shape_dir / "registry"
    props = {
        "apicurio.kafka.common.security.protocol": security.PROTOCOL,
        "apicurio.kafka.common.sasl.mechanism": security.SCRAM,
        "apicurio.kafka.common.sasl.jaas.config": security.jaas(security.SCRAM_MODULE, "registry",
                                                                sec.passwords["registry"]),
        "apicurio.kafka.common.ssl.truststore.type": "PEM",
        "apicurio.kafka.common.ssl.truststore.location": str(sec.tls.ca_pem),
        # Apicurio's default turns host name verification off; our certificate names 127.0.0.1, so keep it on.
        "apicurio.kafka.common.ssl.endpoint.identification.algorithm": "https",
    }
    text = "# Written by `liaison infra up`. KafkaSQL storage client security.\n" + "".join(
        f"{k}={v}\n" for k, v in props.items())
    security.write_private(cwd / "config" / "application.properties", text)
    return cwd


def start_registry(plan: Plan, jars: ServerJars, sec: Security | None = None) -> Proc:
    log = plan.logs_dir / "registry.log"
    env = {
        "QUARKUS_HTTP_HOST": "127.0.0.1",
        "QUARKUS_HTTP_PORT": str(plan.registry_port),
        "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
        "QUARKUS_MANAGEMENT_PORT": str(plan.registry_mgmt_port),
        "QUARKUS_LOG_CONSOLE_JSON": "false",
    }
    cwd = jars.registry_jar.parent
    if plan.registry_storage == "kafkasql":
        env.update({"APICURIO_STORAGE_KIND": "kafkasql", "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": plan.bootstrap})
        if sec is not None:
            cwd = _registry_config(plan, sec)
    # else: Apicurio's default storage, an in-memory H2 database (gone when the registry stops)
    # Class-data sharing archive, written by the first start and reused after: start-up is mostly class loading.
    cds = jars.registry_jar.parent / "registry-cds.jsa"
    cmd = java_cmd(jars.registry_java, "768m", server_marker(plan.state, "registry"), [
        "-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={cds}", "-XX:TieredStopAtLevel=1",
        "-jar", str(jars.registry_jar)])
    pid = spawn(cmd, log, env=env, cwd=cwd)
    return Proc("registry", "registry", pid, {"http": plan.registry_port, "management": plan.registry_mgmt_port},
                str(log))


def registry_healthy(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False

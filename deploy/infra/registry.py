"""The schema registry (Apicurio): its configuration (HTTPS only, a token only the gateway can sign, the
KafkaSQL client's credentials), start and health check.

Apicurio is never a client's address: clients use the registry gateway (deploy.infra.registry_gateway), and
Apicurio refuses every API request that lacks the gateway's token. Client certificates would be the textbook
way to close it, but `quarkus.http.ssl.client-auth` is a build-time property fixed to NONE in the published
Apicurio 3.3.3 distribution (Quarkus logs "Build time property cannot be changed at runtime" and ignores it), so
the registry verifies instead, through Quarkus OIDC's local verification (`quarkus.oidc.public-key`, no OIDC
server), an RS256 token signed with a key generated for each start and held by the gateway alone.
"""

from __future__ import annotations

import json
import ssl
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from core.settings import Settings
from deploy.infra import security
from deploy.infra.client_env import Security
from deploy.infra.gateway import token as gateway_token
from deploy.infra.jars import ServerJars
from deploy.infra.plan import Plan
from deploy.infra.process import Proc, http_get, http_status, java_cmd, server_marker, spawn
from deploy.infra.registry_gateway import gateway_healthy

__all__ = ["start_registry", "registry_healthy", "storage_ready", "apicurio_ready", "STORAGE_CHECK"]

#: Apicurio's readiness check that reports its storage's isReady(): for KafkaSQL, true once the journal
#: consumer has read back the bootstrap marker this start wrote (the whole journal replayed before it).
STORAGE_CHECK = "PersistenceSimpleReadinessCheck"


def _registry_config(plan: Plan, sec: Security, public_key: str) -> Path:
    """Quarkus reads <cwd>/config/application.properties (0600): TLS, token verification and the KafkaSQL
    client's credentials go there, not in the environment or on the command line. `apicurio.kafka.common.*` is
    passed to every Kafka client of the KafkaSQL storage (producer, consumers, admin)."""
    cwd = plan.shape_dir / "registry"
    props = {
        # HTTPS only (API and management interface), with a certificate the project CA signed
        "quarkus.http.insecure-requests": "disabled",
        "quarkus.http.ssl-port": str(plan.registry_port),
        "quarkus.tls.key-store.pem.registry.cert": str(sec.tls.registry_cert),
        "quarkus.tls.key-store.pem.registry.key": str(sec.tls.registry_key),
        # every API request needs a bearer token signed with the gateway's key (checked locally: no OIDC server)
        "quarkus.oidc.tenant-enabled": "true",
        "quarkus.oidc.public-key": public_key,
        "quarkus.oidc.token.issuer": gateway_token.ISSUER,
        "quarkus.oidc.token.audience": gateway_token.AUDIENCE,
    }
    if plan.registry_storage == "kafkasql":
        props.update({
            "apicurio.kafka.common.security.protocol": security.PROTOCOL,
            "apicurio.kafka.common.sasl.mechanism": security.SCRAM,
            "apicurio.kafka.common.sasl.jaas.config": security.jaas(security.SCRAM_MODULE, "registry",
                                                                    sec.passwords["registry"]),
            "apicurio.kafka.common.ssl.truststore.type": "PEM",
            "apicurio.kafka.common.ssl.truststore.location": str(sec.tls.ca_pem),
            # Apicurio's default turns host name verification off; our certificate names 127.0.0.1, so keep it on.
            "apicurio.kafka.common.ssl.endpoint.identification.algorithm": "https",
        })
    text = "# Written by `liaison infra up`: HTTPS, the gateway's token, KafkaSQL storage client security.\n" + "".join(
        f"{k}={v}\n" for k, v in props.items())
    security.write_private(cwd / "config" / "application.properties", text)
    return cwd


def start_registry(plan: Plan, jars: ServerJars, sec: Security, public_key: str) -> Proc:
    log = plan.logs_dir / "registry.log"
    env = {
        "QUARKUS_HTTP_HOST": "127.0.0.1",
        "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
        "QUARKUS_MANAGEMENT_PORT": str(plan.registry_mgmt_port),
        "QUARKUS_LOG_CONSOLE_JSON": "false",
    }
    if plan.registry_storage == "kafkasql":
        env.update({"APICURIO_STORAGE_KIND": "kafkasql", "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": plan.bootstrap})
    # else: Apicurio's default storage, an in-memory H2 database (gone when the registry stops)
    cwd = _registry_config(plan, sec, public_key)
    # Class-data sharing archive, written by the first start and reused after: start-up is mostly class loading.
    cds = jars.registry_jar.parent / "registry-cds.jsa"
    cmd = java_cmd(jars.registry_java, "768m", server_marker(plan.state, "registry"), [
        "-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={cds}", "-XX:TieredStopAtLevel=1",
        "-jar", str(jars.registry_jar)])
    pid = spawn(cmd, log, env=env, cwd=cwd)
    return Proc("registry", "registry", pid, {"https": plan.registry_port, "management": plan.registry_mgmt_port},
                str(log))


def registry_healthy(url: str, timeout: float = 3.0, ca: str | None = None) -> bool:
    """The registry clients use, at `url`, is up: for the gateway of local servers (the usual case) its /health
    answers 200, which it does only when Apicurio behind it accepts its token; the CA comes from the servers'
    infra.json when not given. Any other registry: GET /subjects answers 200."""
    infra = Settings().local_infra_for(url, key="schema_registry_url")
    reg = (infra or {}).get("registry") or {}
    if reg.get("auth") == "basic":
        return gateway_healthy(url, ca or reg.get("ssl_ca_location"), timeout)
    return http_status(f"{url}/subjects", timeout, ca) == 200


def storage_ready(mgmt_origin: str, ca: str | None, timeout: float = 3.0) -> tuple[bool, str]:
    """Apicurio's storage is ready: its management interface's ``/health/ready`` reports STORAGE_CHECK UP.

    KafkaSQL replays its journal (the ``kafkasql-journal`` topic) into an in-memory database after every start;
    meanwhile the API answers ``GET /subjects`` with 200 but ``GET /schemas/ids/<n>`` with 404 for ids that exist.
    Apicurio writes a bootstrap marker to the journal when it starts and sets its storage ready when its
    consumer reads that marker back, i.e. once it has consumed the journal up to the end it had at start. Only
    that check is read: the others on the same endpoint count request timeouts (a broker restart trips them
    for a while) and say nothing about which ids the registry can answer for."""
    status, body = http_get(f"{mgmt_origin}/health/ready", timeout, ca)
    if status is None:
        return False, "management interface does not answer"
    try:
        checks = {c.get("name"): c.get("status") for c in json.loads(body).get("checks", [])}
    except (ValueError, AttributeError):
        return False, f"/health/ready answered {status} without its checks"
    if checks.get(STORAGE_CHECK) != "UP":
        state = checks.get(STORAGE_CHECK, "absent")
        return False, f"storage not ready ({STORAGE_CHECK} {state}: journal being replayed)"
    return True, ""


@contextmanager
def _api_session(api_url: str, ca: str | None, headers: dict, timeout: float):
    """GET on Apicurio's API over one kept-alive TLS connection: yields ``get(path) -> (status, body)``."""
    import httpx

    verify = ssl.create_default_context(cafile=ca) if ca else True
    with httpx.Client(base_url=api_url, verify=verify, headers=headers, timeout=timeout) as client:
        def get(path: str) -> tuple[int | None, bytes]:
            try:
                r = client.get(path)
            except httpx.HTTPError:
                return None, b""
            return r.status_code, r.content

        yield get


def apicurio_ready(api_url: str, mgmt_origin: str, ca: str, token_key: Path, timeout: float = 3.0,
                   probe: bool = True) -> tuple[bool, str]:
    """Apicurio can answer for every id it holds: its storage is ready (:func:`storage_ready`), its API accepts
    the gateway's token, and (``probe``) the latest version of every subject resolves by its id
    (``GET /subjects``, ``/subjects/<s>/versions/latest``, ``/schemas/ids/<id>``, over one kept-alive
    connection). Returns (ready, why not; or what was probed)."""
    ok, why = storage_ready(mgmt_origin, ca, timeout)
    if not ok:
        return ok, why
    try:
        bearer, _ = gateway_token.mint(Path(token_key).read_bytes(), lifetime=60)
    except (OSError, ValueError) as e:
        return False, f"cannot sign a token with {token_key}: {e}"
    with _api_session(api_url, ca, {"Authorization": f"Bearer {bearer}"}, timeout) as get:
        status, body = get("/subjects")
        if status != 200:
            return False, f"GET /subjects answered {status}"
        if not probe:
            return True, ""
        try:
            subjects = json.loads(body)
        except ValueError:
            return False, "GET /subjects answered no JSON list"
        for subject in subjects:
            status, body = get(f"/subjects/{quote(subject, safe='')}/versions/latest")
            if status != 200:
                return False, f"GET /subjects/{subject}/versions/latest answered {status}"
            try:
                sid = int(json.loads(body)["id"])
            except (ValueError, KeyError, TypeError):
                return False, f"the latest version of {subject} has no id"
            status, _ = get(f"/schemas/ids/{sid}")
            if status != 200:
                return False, f"GET /schemas/ids/{sid} (latest of {subject}) answered {status}"
    return True, f"{len(subjects)} subject(s) answer by id"

"""Start, stop and inspect the local Kafka broker(s) and schema registry.

Everything runs on 127.0.0.1 from jars that Maven fetched (see deploy.infra.jars). The state of one
running set of servers lives in ``<state_dir>/infra.json``: shape, processes (pid, ports, log), and the
addresses clients use. ``up`` is idempotent, ``down`` stops exactly the processes recorded there (and any
stray java process carrying this state directory's marker).

The brokers are secured (see deploy/kafka/server.properties.template and deploy.infra.security): TLS with a CA
made at setup, SASL SCRAM-SHA-512 users created at format time, the KRaft StandardAuthorizer with default deny
and the ACLs of deploy/acls.yaml applied before the registry (which authenticates as `registry`) starts.
The registry is secured too: clients reach it only through the registry gateway (HTTPS, basic auth with their
principal's credentials, partners limited to their own subjects), and Apicurio behind it speaks HTTPS only and
refuses every request without the gateway's token (deploy.infra.registry, deploy.infra.registry_gateway).

The lifecycle (:func:`up`, :func:`down`, :func:`status`) lives here; the parts, one job per module:
:mod:`~deploy.infra.plan` (shape, nodes, ports, directories), :mod:`~deploy.infra.state` (infra.json),
:mod:`~deploy.infra.process` (spawn, markers, waits, stop), :mod:`~deploy.infra.client_env` (client
security), :mod:`~deploy.infra.kafka_node` (brokers), :mod:`~deploy.infra.registry` (schema registry),
:mod:`~deploy.infra.registry_gateway` (the registry gateway's setup and start; the service: deploy.infra.gateway).
The names callers use are re-exported, so ``servers.up``, ``servers.client_env``, ... keep working.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.settings import Settings
from deploy.infra.client_env import Security, client_env, client_settings, prepare_security
from deploy.infra.errors import InfraError
from deploy.infra.jars import check_java, ensure_jars
from deploy.infra.kafka_node import ensure_scram_users, kafka_healthy, setup_access, start_kafka
from deploy.infra.plan import SHAPES, KafkaNode, Plan, kafka_nodes, make_plan
from deploy.infra.process import Proc, is_ours, pid_alive, port_in_use, stop_pids, stray_pids, tcp_open, wait_healthy
from deploy.infra.registry import registry_healthy, start_registry
from deploy.infra.registry_gateway import (NAME as GATEWAY, apicurio_healthy, gateway_healthy, prepare_gateway,
                                           start_gateway)
from deploy.infra.state import infra_file, read_state, write_state

__all__ = [
    "up", "down", "status",
    # re-exported for callers
    "SHAPES", "KafkaNode", "kafka_nodes", "Plan", "make_plan", "Proc", "Security", "prepare_security",
    "client_env", "client_settings", "read_state", "is_ours", "stray_pids", "port_in_use", "kafka_healthy",
    "ensure_scram_users", "registry_healthy", "gateway_healthy", "apicurio_healthy",
]

#: Kept for callers written against the single-module servers (tests/integration/test_infra.py).
_alive = pid_alive


def status(settings: Settings) -> list[dict]:
    """One row per recorded server: name, kind, ports, pid, alive, healthy."""
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    if not data:
        return []
    rows = []
    for p in data["processes"]:
        alive = pid_alive(p["pid"]) and is_ours(p["pid"], state, p["name"])
        if not alive:
            healthy = False
        elif p["kind"] == "kafka":
            healthy = tcp_open(p["ports"]["client"])
        elif p["kind"] == GATEWAY:
            healthy = gateway_healthy(data["schema_registry_url"], (data.get("registry") or {}).get("ssl_ca_location"),
                                      timeout=2)
        elif data.get("registry"):
            reg = data["registry"]
            healthy = apicurio_healthy(reg["upstream"], reg["ssl_ca_location"], Path(reg["token_key"]), timeout=2)
        else:
            healthy = registry_healthy(data["schema_registry_url"], timeout=2)
        rows.append({**p, "alive": alive, "healthy": healthy, "shape": data["shape"]})
    return rows


def up(settings: Settings, shape: str | None = None, registry_storage: str | None = None,
       log=print) -> dict:
    """Start broker(s) and registry unless they already run. Returns the state (addresses, processes)."""
    plan = make_plan(settings, shape, registry_storage)
    existing = read_state(plan.state)
    if existing:
        rows = status(settings)
        # a set started before the registry gateway existed is an older layout: restarted below
        if rows and all(r["alive"] for r in rows) and any(r["kind"] == GATEWAY for r in rows):
            if existing["shape"] != plan.shape:
                raise InfraError(
                    f"the {existing['shape']} shape is already running from {plan.state}; "
                    f"run `liaison infra down` before starting the {plan.shape} shape")
            log(f"already running ({existing['shape']}): kafka {existing['bootstrap_servers']}, "
                f"registry {existing['schema_registry_url']}")
            return existing
        # half-dead set: stop what is left before starting afresh
        down(settings, log=lambda *_: None)

    check_java()
    for port, what in plan.ports():
        if port_in_use(port):
            raise InfraError(f"port {port} ({what}) is already in use on 127.0.0.1; "
                             f"free it or choose other ports with LIAISON_PORT_BASE / LIAISON_REGISTRY_PORT / "
                             f"LIAISON_REGISTRY_GATEWAY_PORT")
    jars = ensure_jars(settings, log=log)
    sec = prepare_security(plan, settings.deploy_dir)
    t0 = time.monotonic()
    procs: list[Proc] = []
    try:
        for node in plan.nodes:
            procs.append(start_kafka(plan, node, jars, settings.deploy_dir, sec, log))
            write_state(plan, procs, sec)
        for proc in procs:
            wait_healthy(proc, lambda: tcp_open(proc.ports["client"]), settings.start_timeout, "client port open")
        kafka_proc = procs[0]
        admin_conf = sec.client_config(plan.bootstrap)
        wait_healthy(kafka_proc, lambda: kafka_healthy(plan.bootstrap, len(plan.nodes), conf=admin_conf),
              settings.start_timeout, f"AdminClient (as admin, SASL_SSL) sees {len(plan.nodes)} broker(s)")
        setup_access(plan, sec, settings.deploy_dir, log)
        log(f"kafka ({plan.shape}, {len(plan.nodes)} node(s)) healthy at {plan.bootstrap} (SASL_SSL, "
            f"SCRAM-SHA-512, ACLs) after {time.monotonic() - t0:.1f}s")
        files = prepare_gateway(plan, sec)
        reg = start_registry(plan, jars, sec, files.public_key)
        procs.append(reg)
        write_state(plan, procs, sec)
        # the gateway starts while Apicurio does (its /health stays 503 until Apicurio accepts its token)
        gw = start_gateway(plan, files)
        procs.append(gw)
        write_state(plan, procs, sec)
        ca = str(sec.tls.ca_pem)
        wait_healthy(reg, lambda: apicurio_healthy(plan.registry_api_url, ca, files.token_key),
                     settings.start_timeout, f"GET {plan.registry_api_url}/subjects (HTTPS, gateway token) answers 200")
        log(f"registry ({plan.registry_storage}) healthy at {plan.registry_api_url} (HTTPS, gateway token only) "
            f"after {time.monotonic() - t0:.1f}s")
        wait_healthy(gw, lambda: gateway_healthy(plan.registry_url, ca), settings.start_timeout,
                     f"GET {plan.registry_url.split('/apis/')[0]}/health answers 200")
        log(f"registry gateway healthy at {plan.registry_url} (HTTPS, basic auth) "
            f"after {time.monotonic() - t0:.1f}s")
    except BaseException:
        write_state(plan, procs, sec)
        down(settings, log=lambda *_: None)
        raise
    return write_state(plan, procs, sec)


def down(settings: Settings, log=print) -> int:
    """Stop the gateway and the registry first, then every broker; returns how many processes were stopped."""
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    ours = []
    if data:
        procs = data["processes"]
        gateway = [p["pid"] for p in procs if p["kind"] == GATEWAY and is_ours(p["pid"], state, p["name"])]
        if gateway:
            killed = stop_pids(gateway, 10)
            if killed:
                log(f"registry gateway did not stop on SIGTERM within 10s; killed pid {killed}")
        registry = [p["pid"] for p in procs if p["kind"] == "registry" and is_ours(p["pid"], state, p["name"])]
        brokers = [p["pid"] for p in procs if p["kind"] == "kafka" and is_ours(p["pid"], state, p["name"])]
        if registry:
            killed = stop_pids(registry, 20)
            if killed:
                log(f"registry did not stop on SIGTERM within 20s; killed pid {killed}")
        if brokers:
            killed = stop_pids(brokers, 30)
            if killed:
                log(f"broker(s) did not stop on SIGTERM within 30s; killed pid(s) {killed}")
        ours = gateway + registry + brokers
    strays = [p for p in stray_pids(state) if p not in ours]
    if strays:
        stop_pids(strays, 10)
        log(f"stopped {len(strays)} stray server process(es) of {state}: {strays}")
    try:
        infra_file(state).unlink()
    except FileNotFoundError:
        pass
    return len(ours) + len(strays)

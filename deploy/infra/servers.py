"""Start, stop and inspect the local Kafka broker(s) and schema registry.

Everything runs on 127.0.0.1 from jars that Maven fetched (see deploy.infra.jars). The state of one
running set of servers lives in ``<state_dir>/infra.json``: shape, processes (pid, ports, log), and the
addresses clients use. ``up`` starts only what is missing and never restarts a server that runs (see :func:`up`),
``restart`` restarts exactly one, ``down`` stops exactly the processes recorded there (and any stray process
carrying this state directory's marker), each within a bound.

The brokers are secured (see deploy/kafka/server.properties.template and deploy.infra.security): TLS with a CA
made at setup, SASL SCRAM-SHA-512 users created at format time, the KRaft StandardAuthorizer with default deny
and the ACLs of deploy/acls.yaml applied before the registry (which authenticates as `registry`) starts.
The registry is secured too: clients reach it only through the registry gateway (HTTPS, basic auth with their
principal's credentials, partners limited to their own subjects), and Apicurio behind it speaks HTTPS only and
refuses every request without the gateway's token (deploy.infra.registry, deploy.infra.registry_gateway).

The lifecycle (:func:`up`, :func:`restart`, :func:`down`, :func:`status`) lives here; the parts, one job per module:
:mod:`~deploy.infra.plan` (shape, nodes, ports, directories), :mod:`~deploy.infra.state` (infra.json),
:mod:`~deploy.infra.process` (spawn, markers, waits, stop), :mod:`~deploy.infra.client_env` (client
security), :mod:`~deploy.infra.kafka_node` (brokers), :mod:`~deploy.infra.registry` (schema registry),
:mod:`~deploy.infra.registry_gateway` (the registry gateway's setup and start; the service: deploy.infra.gateway).
The names callers use are re-exported, so ``servers.up``, ``servers.client_env``, ... keep working.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from deploy.infra import security
from deploy.infra.client_env import Security, client_env, client_settings, prepare_security
from deploy.infra.errors import InfraError
from deploy.infra.jars import check_java, ensure_jars
from deploy.infra.kafka_node import (broker_answers, ensure_scram_users, kafka_healthy, replicas_in_sync, setup_access,
                                     start_kafka)
from deploy.infra.plan import SHAPES, KafkaNode, Plan, kafka_nodes, make_plan
from deploy.infra.process import (Proc, http_status, is_ours, pid_alive, port_in_use, stop_pids, stop_procs,
                                  stray_pids, tcp_open, wait_healthy)
from deploy.infra.registry import apicurio_ready, registry_healthy, start_registry
from deploy.infra.registry_gateway import (NAME as GATEWAY, apicurio_healthy, gateway_healthy, prepare_gateway,
                                           start_gateway)
from deploy.infra.state import infra_file, read_state, state_lock, write_state

__all__ = [
    "up", "restart", "down", "status", "decide", "Decision", "STOP_BOUNDS", "NO_QUORUM_BOUND",
    # re-exported for callers
    "SHAPES", "KafkaNode", "kafka_nodes", "Plan", "make_plan", "Proc", "Security", "prepare_security",
    "client_env", "client_settings", "read_state", "is_ours", "stray_pids", "port_in_use", "kafka_healthy",
    "ensure_scram_users", "registry_healthy", "gateway_healthy", "apicurio_healthy", "apicurio_ready",
]

#: Kept for callers written against the single-module servers (tests/integration/test_infra.py).
_alive = pid_alive

#: Seconds each kind of server gets between SIGTERM and SIGKILL (``down``, ``restart``).
STOP_BOUNDS = {GATEWAY: 5.0, "registry": 20.0, "kafka": 30.0}
#: The bound for brokers left without a controller quorum (fewer than a majority of the nodes run): a KRaft
#: broker's controlled shutdown then waits for an approval that cannot come (up to 5 minutes in Kafka 4.3),
#: so waiting longer only delays the SIGKILL.
NO_QUORUM_BOUND = 5.0


def _kind(name: str) -> str:
    return "kafka" if name.startswith("kafka-") else name


def _admin_conf(data: dict) -> dict | None:
    """The admin client configuration of the servers of an infra state, or None (unsecured, or no password)."""
    sec = data.get("security")
    if not sec:
        return None
    try:
        password = json.loads((Path(sec["credentials_dir"]) / f"{security.ADMIN}.json").read_text())["password"]
    except (OSError, ValueError, KeyError):
        return None
    return {"bootstrap.servers": data["bootstrap_servers"], "security.protocol": sec["protocol"],
            "sasl.mechanisms": sec["mechanism"], "sasl.username": security.ADMIN, "sasl.password": password,
            "ssl.ca.location": sec["ssl_ca_location"]}


def _health(p: dict, data: dict, admin: dict | None, gateway_strict: bool = True) -> tuple[bool, str]:
    """(healthy, why not) of one live recorded server. Kafka: the broker itself answers a metadata request as
    admin. Registry: ready (storage ready, every subject's latest id answers). Gateway: its /health answers 200
    (``gateway_strict=False``: answers at all; 503 while Apicurio is down is the gateway working)."""
    if p["kind"] == "kafka":
        if admin is None:
            return tcp_open(p["ports"]["client"]), "client port closed"
        return broker_answers(p["ports"]["client"], admin), "no answer to a metadata request (as admin, SASL_SSL)"
    reg = data.get("registry")
    if p["kind"] == GATEWAY:
        origin = data["schema_registry_url"].split("/apis/", 1)[0]
        code = http_status(f"{origin}/health", 3, (reg or {}).get("ssl_ca_location"))
        if gateway_strict:
            return code == 200, f"GET /health answered {code}"
        return code is not None, "GET /health does not answer"
    if reg:
        mgmt = f"https://127.0.0.1:{p['ports']['management']}"
        return apicurio_ready(reg["upstream"], mgmt, reg["ssl_ca_location"], Path(reg["token_key"]))
    return registry_healthy(data["schema_registry_url"], timeout=2), "GET /subjects does not answer 200"


def _health_all(procs: list[dict], data: dict, gateway_strict: bool = True) -> dict[str, tuple[bool, str]]:
    admin = _admin_conf(data)
    if not procs:
        return {}
    with ThreadPoolExecutor(max_workers=len(procs)) as pool:
        futures = {p["name"]: pool.submit(_health, p, data, admin, gateway_strict) for p in procs}
        return {name: f.result() for name, f in futures.items()}


def _live(state: Path, data: dict | None) -> dict[str, dict]:
    """Recorded processes that run: pid alive and carrying its server marker (a recycled pid is not ours)."""
    procs = (data or {}).get("processes", [])
    return {p["name"]: p for p in procs if pid_alive(p["pid"]) and is_ours(p["pid"], state, p["name"])}


def status(settings: Settings) -> list[dict]:
    """One row per recorded server: name, kind, ports, pid, alive, healthy, detail (why not healthy)."""
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    if not data:
        return []
    live = _live(state, data)
    health = _health_all(list(live.values()), data)
    rows = []
    for p in data["processes"]:
        alive = p["name"] in live
        healthy, why = health.get(p["name"], (False, "not running"))
        rows.append({**p, "alive": alive, "healthy": healthy, "detail": "" if healthy else why,
                     "shape": data["shape"]})
    return rows


@dataclass
class Decision:
    """What ``up`` (or ``restart``) does with each server of a plan."""

    start: list[str]
    kept: list[str]
    #: make a new gateway token key: neither Apicurio nor the gateway keeps running with the current one
    fresh_token_key: bool
    notes: list[str] = field(default_factory=list)


def decide(names: list[str], alive: set[str], token_key_exists: bool, only: set[str] | None = None) -> Decision:
    """Start what does not run (of ``only``, when given: ``restart``), keep what runs. Apicurio and the gateway
    share a token key, read by each at its start: when one of them starts while the other keeps running, the
    key on disk must be the one the other holds; when that key file is gone, the other restarts too."""
    missing = [n for n in names if n not in alive]
    notes = []
    if only is None:
        start = set(missing)
    else:
        start = {n for n in missing if n in only}
        others = [n for n in missing if n not in only]
        if others:
            notes.append(f"not running and left so by this restart: {', '.join(others)} (`liaison infra up` starts "
                         f"{'them' if len(others) > 1 else 'it'})")
    pair = ("registry", GATEWAY)
    holders = [n for n in pair if n in alive and n not in start]
    if holders and any(n in start for n in pair) and not token_key_exists:
        for n in holders:
            start.add(n)
            notes.append(f"{n} restarts too: it holds the gateway token key, whose file is gone, and the server "
                         f"starting with it must share that key")
        holders = []
    kept = [n for n in names if n in alive and n not in start]
    return Decision([n for n in names if n in start], kept, fresh_token_key=not holders or not token_key_exists,
                    notes=notes)


def up(settings: Settings, shape: str | None = None, registry_storage: str | None = None,
       log=print) -> dict:
    """Start what is missing of the broker(s), the registry and its gateway; never restart a server that runs.

    A server runs when its recorded pid is alive and carries its server marker. A running server that does
    not answer its health check is not restarted (it may be slow: a journal replay, a GC pause): ``up`` waits
    for it like for one it started, and when it still does not answer, fails naming it and leaves it running
    (``liaison infra restart NAME`` restarts it). The shape and the registry storage of a running set are kept
    when not given. One command at a time per state directory (:func:`~deploy.infra.state.state_lock`): an `up`
    started while another runs waits for it. Returns the state (addresses, processes)."""
    with state_lock(settings.state_dir, "up", log):
        return _converge(settings, shape, registry_storage, None, log)


def restart(settings: Settings, name: str, log=print) -> dict:
    """Restart exactly server ``name`` (kafka-1..3, registry, registry-gateway): a bounded stop, then a start
    like ``up``'s, waiting until it is healthy (a broker: back in the cluster; the registry: ready)."""
    with state_lock(settings.state_dir, "restart", log):
        return _restart(settings, name, log)


def _restart(settings: Settings, name: str, log) -> dict:
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    if not data:
        raise InfraError(f"no servers recorded in {state}; `liaison infra up` starts them")
    plan = make_plan(settings, data["shape"], data.get("registry_storage"))
    if name not in plan.names:
        raise InfraError(f"unknown server {name!r}: one of {', '.join(plan.names)}")
    live = _live(state, data)
    if name == "registry" and plan.registry_storage == "kafkasql" and not any(_kind(n) == "kafka" for n in live):
        raise InfraError("no broker runs, and the registry's KafkaSQL storage needs one: `liaison infra up`")
    if name in live:
        p = live[name]
        t0 = time.monotonic()
        bound = _stop_bound(name, live, data)
        killed = stop_procs({p["pid"]: bound})
        log(f"{name}: stopped pid {p['pid']} in {time.monotonic() - t0:.1f}s"
            + (f" (SIGKILL: no exit within {bound:.0f}s of SIGTERM)" if killed else ""))
    return _converge(settings, data["shape"], plan.registry_storage, {name}, log)


def _converge(settings: Settings, shape: str | None, registry_storage: str | None, only: set[str] | None,
              log) -> dict:
    state = Path(settings.state_dir).resolve()
    existing = read_state(state)
    live = _live(state, existing)
    if live:
        shape = shape or existing["shape"]
        if "registry" in live:
            registry_storage = registry_storage or existing.get("registry_storage")
    plan = make_plan(settings, shape, registry_storage)
    if live:
        if existing["shape"] != plan.shape:
            raise InfraError(f"the {existing['shape']} shape is already running from {plan.state}; "
                             f"run `liaison infra down` before starting the {plan.shape} shape")
        if "registry" in live and existing.get("registry_storage") != plan.registry_storage:
            raise InfraError(f"the registry runs with {existing.get('registry_storage')} storage; run "
                             f"`liaison infra down` before starting it with {plan.registry_storage}")
        for name, p in live.items():
            if name not in plan.names or p["ports"] != plan.server_ports(name):
                raise InfraError(f"{name} (pid {p['pid']}) runs on ports {p['ports']}, not this configuration's "
                                 f"{plan.server_ports(name) if name in plan.names else 'none'}; "
                                 f"run `liaison infra down` first")
    keep_pids = {p["pid"] for p in live.values()}
    strays = [pid for pid in stray_pids(state) if pid not in keep_pids]
    if strays:
        stop_procs({pid: 10.0 for pid in strays})
        log(f"stopped {len(strays)} unrecorded server process(es) of {state}: {strays}")

    d = decide(plan.names, set(live), (plan.gateway_dir / "token-key.pem").exists(), only)
    for note in d.notes:
        log(note)
    if d.kept:
        # a running server's files must stay: new certificates or passwords would lock the restarted ones out
        if not security.tls_complete(plan.shape_dir):
            raise InfraError(f"servers run ({', '.join(d.kept)}) but TLS files under {plan.shape_dir / 'tls'} are "
                             f"missing; run `liaison infra down` first (new certificates would be made)")
        users = (existing.get("security") or {}).get("users", []) + [security.CONTROLLER]
        lost = security.missing_credentials(plan.shape_dir, users)
        if lost:
            raise InfraError(f"servers run ({', '.join(d.kept)}) but the credentials of {', '.join(lost)} are "
                             f"missing from {plan.credentials_dir}; run `liaison infra down` first")
    sec = prepare_security(plan, settings.deploy_dir)
    kept = {n: Proc(**live[n]) for n in d.kept}
    # the gateway's /health is 503 while Apicurio is not ready: that gateway works; it must answer 200 only
    # when the registry keeps running and is ready
    health = _health_all([live[n] for n in d.kept], existing, gateway_strict=False) if d.kept else {}
    if health.get(GATEWAY, (False,))[0] and health.get("registry", (False,))[0]:
        health[GATEWAY] = _health(live[GATEWAY], existing, None)
    suspects = [n for n in d.kept if not health[n][0]]
    if not d.start and not suspects:
        log(f"already running ({plan.shape}): every server healthy, none started: "
            f"kafka {existing['bootstrap_servers']}, registry {existing['schema_registry_url']}")
        return existing
    if d.kept:
        log("running, kept: " + ", ".join(f"{n} (pid {kept[n].pid})" for n in d.kept))
    for n in d.start:
        was = (existing or {}).get("processes", [])
        pid = next((p["pid"] for p in was if p["name"] == n), None)
        if pid is not None:
            log(f"{n}: not running (pid {pid} gone); starting it")
    for n in suspects:
        log(f"{n} (pid {kept[n].pid}) runs but does not answer ({health[n][1]}); not restarted: waiting for it")

    jars = None
    if d.start:
        check_java()
        for port, what in plan.ports(d.start):
            if port_in_use(port):
                raise InfraError(f"port {port} ({what}) is already in use on 127.0.0.1; "
                                 f"free it or choose other ports with LIAISON_PORT_BASE / LIAISON_REGISTRY_PORT / "
                                 f"LIAISON_REGISTRY_GATEWAY_PORT")
        jars = ensure_jars(settings, log=log)
    procs: dict[str, Proc] = dict(kept)
    started: list[str] = []

    def save() -> dict:
        return write_state(plan, [procs[n] for n in plan.names if n in procs], sec)

    timeout = settings.start_timeout
    t0 = time.monotonic()
    try:
        kafka_start = [node for node in plan.nodes if node.name in d.start]
        for node in kafka_start:
            procs[node.name] = start_kafka(plan, node, jars, settings.deploy_dir, sec, log)
            started.append(node.name)
            save()
        kafka_wait = [node for node in plan.nodes if node.name in d.start or node.name in suspects]
        admin_conf = sec.client_config(plan.bootstrap)
        for node in kafka_wait:
            wait_healthy(procs[node.name], lambda port=node.broker_port: broker_answers(port, admin_conf), timeout,
                         "answers a metadata request as admin, SASL_SSL", started=node.name in started)
        if kafka_wait:
            running = [n for n in plan.nodes if n.name in procs]
            wait_healthy(procs[kafka_wait[0].name],
                         lambda: kafka_healthy(plan.bootstrap, len(running), conf=admin_conf), timeout,
                         f"AdminClient (as admin, SASL_SSL) sees {len(running)} broker(s)",
                         started=kafka_wait[0].name in started)
            if kafka_start:
                setup_access(plan, sec, settings.deploy_dir, log)
            log(f"kafka ({plan.shape}): {', '.join(n.name for n in kafka_wait)} healthy at {plan.bootstrap} "
                f"(SASL_SSL, SCRAM-SHA-512, ACLs) after {time.monotonic() - t0:.1f}s")
            if kafka_start and len(kafka_start) < len(running):
                _wait_in_sync(plan, {n.node_id for n in kafka_start}, admin_conf, timeout, log)
        reg_start, gw_start = "registry" in d.start, GATEWAY in d.start
        if reg_start or gw_start:
            files = prepare_gateway(plan, sec, fresh_key=d.fresh_token_key)
        if reg_start:
            procs["registry"] = start_registry(plan, jars, sec, files.public_key)
            started.append("registry")
            save()
        if gw_start:
            # the gateway starts while Apicurio does (its /health stays 503 until Apicurio accepts its token)
            procs[GATEWAY] = start_gateway(plan, files)
            started.append(GATEWAY)
            save()
        ca = str(sec.tls.ca_pem)
        if reg_start or "registry" in suspects:
            token_key = plan.gateway_dir / "token-key.pem"
            mgmt = f"https://127.0.0.1:{plan.registry_mgmt_port}"
            t_reg = time.monotonic()
            detail = {}

            def ready():
                ok, why = apicurio_ready(plan.registry_api_url, mgmt, ca, token_key)
                detail["why"] = why
                return ok, why

            wait_healthy(procs["registry"], ready, timeout,
                         "storage ready and the latest version of every subject answers by id",
                         started=reg_start)
            log(f"registry ({plan.registry_storage}) ready at {plan.registry_api_url} (HTTPS, gateway token only; "
                f"{detail['why']}) after {time.monotonic() - t_reg:.1f}s")
        if "registry" in procs and (gw_start or reg_start or GATEWAY in suspects):
            wait_healthy(procs[GATEWAY], lambda: gateway_healthy(plan.registry_url, ca), timeout,
                         f"GET {plan.registry_url.split('/apis/')[0]}/health answers 200", started=gw_start)
            log(f"registry gateway healthy at {plan.registry_url} (HTTPS, basic auth) "
                f"after {time.monotonic() - t0:.1f}s")
        elif gw_start:
            origin = plan.registry_url.split("/apis/")[0]
            wait_healthy(procs[GATEWAY], lambda: http_status(f"{origin}/health", 3, ca) is not None, timeout,
                         f"GET {origin}/health answers", started=True)
            log(f"registry gateway listening at {plan.registry_url}; the registry does not run, so its /health "
                f"answers 503 until it does")
    except BaseException:
        if not kept:
            save()
            down(settings, log=lambda *_: None)
        else:
            # leave the servers that ran before this call as they are; stop only what it started
            stop_procs({procs[n].pid: STOP_BOUNDS[_kind(n)] for n in started})
            for n in started:
                procs.pop(n)
            save()
        raise
    return save()


def _wait_in_sync(plan: Plan, node_ids: set[int], conf: dict, timeout: float, log) -> None:
    """Wait (bounded, never failing: the brokers serve meanwhile) until restarted nodes are back in the ISR of
    every partition they replicate, and say how long it took."""
    t0 = time.monotonic()
    res = None
    while time.monotonic() - t0 < timeout:
        res = replicas_in_sync(plan.bootstrap, node_ids, conf)
        if res is not None and res[1] == 0:
            log(f"kafka: node(s) {sorted(node_ids)} in the ISR of all {res[0]} partition(s) they replicate "
                f"after {time.monotonic() - t0:.1f}s")
            return
        time.sleep(0.5)
    lagging = f"{res[1]} of {res[0]}" if res else "unknown"
    log(f"kafka: node(s) {sorted(node_ids)} not yet in the ISR of {lagging} partition(s) after {timeout:.0f}s "
        f"(they catch up while serving)")


def _stop_bound(name: str, live: dict[str, dict], data: dict) -> float:
    """Seconds between SIGTERM and SIGKILL for server ``name``: its kind's bound, or NO_QUORUM_BOUND when fewer
    than a majority of the brokers run."""
    nodes = sum(1 for p in data.get("processes", []) if p["kind"] == "kafka")
    brokers_left = sum(1 for n in live if _kind(n) == "kafka")
    return STOP_BOUNDS[_kind(name)] if brokers_left > nodes // 2 else NO_QUORUM_BOUND


def _stop_group(procs: list[dict], bound_of, log) -> None:
    t0 = time.monotonic()
    killed = stop_procs({p["pid"]: bound_of(p) for p in procs})
    for p in procs:
        if p["pid"] in killed:
            log(f"{p['name']} (pid {p['pid']}) did not stop within {bound_of(p):.0f}s of SIGTERM; killed")
    log(f"stopped {', '.join(p['name'] for p in procs)} in {time.monotonic() - t0:.1f}s")


def down(settings: Settings, log=print) -> int:
    """Stop every recorded server within a bound (SIGTERM, then SIGKILL by pid after :data:`STOP_BOUNDS`):
    the gateway and the registry in parallel, then every broker in parallel. When fewer than a majority of the
    brokers run (no controller quorum: a broker's controlled shutdown then waits for an approval that cannot
    come, and the registry's Kafka clients for brokers that are gone), everything is stopped at once and killed
    after :data:`NO_QUORUM_BOUND`. Returns how many processes were stopped."""
    with state_lock(settings.state_dir, "down", log):
        return _down(settings, log)


def _down(settings: Settings, log) -> int:
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    ours = []
    if data:
        live = _live(state, data)
        nodes = sum(1 for p in data["processes"] if p["kind"] == "kafka")
        brokers = [p for p in live.values() if p["kind"] == "kafka"]
        front = [p for p in live.values() if p["kind"] != "kafka"]
        if live and nodes and len(brokers) <= nodes // 2:
            log(f"{len(brokers)} of {nodes} broker(s) run: no controller quorum; stopping every server at once, "
                f"SIGKILL after {NO_QUORUM_BOUND:.0f}s")
            _stop_group(front + brokers, lambda p: NO_QUORUM_BOUND, log)
        else:
            if front:
                _stop_group(front, lambda p: STOP_BOUNDS[p["kind"]], log)
            if brokers:
                _stop_group(brokers, lambda p: STOP_BOUNDS["kafka"], log)
        ours = [p["pid"] for p in front + brokers]
    strays = [p for p in stray_pids(state) if p not in ours]
    if strays:
        stop_pids(strays, 10)
        log(f"stopped {len(strays)} stray server process(es) of {state}: {strays}")
    left = [p for p in ours + strays if pid_alive(p)]
    if left:
        log(f"still alive after SIGKILL (stuck in the kernel?): pid(s) {left}")
    try:
        infra_file(state).unlink()
    except FileNotFoundError:
        pass
    return len(ours) + len(strays)

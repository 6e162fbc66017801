"""Start, stop and inspect the local Kafka broker(s) and schema registry.

Everything runs on 127.0.0.1 from jars that Maven fetched (see liaison.infra.jars). The state of one
running set of servers lives in ``<state_dir>/infra.json``: shape, processes (pid, ports, log), and the
addresses clients use. ``up`` is idempotent, ``down`` stops exactly the processes recorded there (and any
stray java process carrying this state directory's marker).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template

from liaison.infra.errors import InfraError
from liaison.infra.jars import ServerJars, check_java, ensure_jars
from liaison.settings import Settings

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
class Proc:
    name: str
    kind: str  # kafka | registry
    pid: int
    ports: dict[str, int]
    log: str
    started_at: float = field(default_factory=time.time)


@dataclass
class Plan:
    shape: str
    state: Path
    nodes: list[KafkaNode]
    registry_port: int
    registry_mgmt_port: int
    registry_storage: str

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.nodes)

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    @property
    def shape_dir(self) -> Path:
        return self.state / self.shape

    @property
    def logs_dir(self) -> Path:
        return self.shape_dir / "logs"

    def ports(self) -> list[tuple[int, str]]:
        out = []
        for n in self.nodes:
            out += [(n.broker_port, f"{n.name} client listener"), (n.controller_port, f"{n.name} controller listener")]
        out += [(self.registry_port, "registry HTTP"), (self.registry_mgmt_port, "registry management")]
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
    )


# ----------------------------------------------------------------------------------------- state file


def _infra_file(state: Path) -> Path:
    return state / "infra.json"


def read_state(state: Path) -> dict | None:
    try:
        return json.loads(_infra_file(state).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_state(plan: Plan, procs: list[Proc]) -> dict:
    data = {
        "shape": plan.shape,
        "bootstrap_servers": plan.bootstrap,
        "schema_registry_url": plan.registry_url,
        "registry_storage": plan.registry_storage,
        "processes": [asdict(p) for p in procs],
    }
    plan.state.mkdir(parents=True, exist_ok=True)
    tmp = _infra_file(plan.state).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(_infra_file(plan.state))
    return data


# ----------------------------------------------------------------------------------------- processes


def _marker(state: Path, name: str) -> str:
    return f"-Dliaison.server={name}@{state}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(pid: int, state: Path, name: str) -> bool:
    """The pid is alive and is the server we started (not a recycled pid)."""
    return _marker(state, name) in _cmdline(pid)


def stray_pids(state: Path) -> list[int]:
    """Every live process whose command line carries this state directory's marker."""
    tag = f"@{state}"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if "-Dliaison.server=" in cmd and tag in cmd:
                found.append(int(entry.name))
    return found


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    return p.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _tail(log: str | Path, lines: int = 5) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------- kafka


def _cluster_id(plan: Plan) -> str:
    f = plan.shape_dir / "cluster.id"
    if f.exists():
        return f.read_text().strip()
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(cid + "\n")
    return cid


def _java_cmd(java: str, heap: str, marker: str, extra: list[str] | None = None) -> list[str]:
    return [
        java, "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", marker, *(extra or []),
    ]


def _write_server_properties(plan: Plan, node: KafkaNode, deploy_dir: Path) -> Path:
    replication = len(plan.nodes) if len(plan.nodes) < 3 else 3
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in plan.nodes)
    text = Template((deploy_dir / "kafka" / "server.properties.template").read_text()).substitute(
        node_id=node.node_id, voters=voters, broker_port=node.broker_port,
        controller_port=node.controller_port, data_dir=plan.shape_dir / node.name / "data",
        replication=replication, min_isr=1 if replication == 1 else 2,
    )
    path = plan.shape_dir / node.name / "server.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _format_storage(plan: Plan, node: KafkaNode, jars: ServerJars, props: Path, log: Path) -> None:
    if (plan.shape_dir / node.name / "data" / "meta.properties").exists():
        return
    cmd = [jars.java, "-Xmx256m", f"-Dlog4j2.configurationFile={jars.log4j_config}",
           "-cp", jars.kafka_classpath, "kafka.tools.StorageTool", "format",
           "-t", _cluster_id(plan), "-c", str(props)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise InfraError(f"formatting storage for {node.name} failed (exit {rc}); see {log}")


def _start_kafka(plan: Plan, node: KafkaNode, jars: ServerJars, deploy_dir: Path) -> Proc:
    props = _write_server_properties(plan, node, deploy_dir)
    log = plan.logs_dir / f"{node.name}.log"
    _format_storage(plan, node, jars, props, log)
    heap = "1g" if plan.shape == "single" else "768m"
    cmd = _java_cmd(jars.java, heap, _marker(plan.state, node.name), [
        f"-Dlog4j2.configurationFile={jars.log4j_config}",
        f"-Dkafka.logs.dir={plan.logs_dir}",
        "-cp", jars.kafka_classpath, "kafka.Kafka", str(props),
    ])
    pid = _spawn(cmd, log)
    return Proc(node.name, "kafka", pid, {"client": node.broker_port, "controller": node.controller_port}, str(log))


def kafka_healthy(bootstrap: str, expect_brokers: int, timeout: float = 3.0) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000}).list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
        return False
    return len(md.brokers) >= expect_brokers


# ----------------------------------------------------------------------------------------- registry


def _start_registry(plan: Plan, jars: ServerJars) -> Proc:
    log = plan.logs_dir / "registry.log"
    env = {
        "QUARKUS_HTTP_HOST": "127.0.0.1",
        "QUARKUS_HTTP_PORT": str(plan.registry_port),
        "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
        "QUARKUS_MANAGEMENT_PORT": str(plan.registry_mgmt_port),
        "QUARKUS_LOG_CONSOLE_JSON": "false",
    }
    if plan.registry_storage == "kafkasql":
        env.update({"APICURIO_STORAGE_KIND": "kafkasql", "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": plan.bootstrap})
    # else: Apicurio's default storage, an in-memory H2 database (gone when the registry stops)
    # Class-data sharing archive, written by the first start and reused after: start-up is mostly class loading.
    cds = jars.registry_jar.parent / "registry-cds.jsa"
    cmd = _java_cmd(jars.registry_java, "768m", _marker(plan.state, "registry"), [
        "-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={cds}", "-XX:TieredStopAtLevel=1",
        "-jar", str(jars.registry_jar)])
    pid = _spawn(cmd, log, env=env, cwd=jars.registry_jar.parent)
    return Proc("registry", "registry", pid, {"http": plan.registry_port, "management": plan.registry_mgmt_port},
                str(log))


def registry_healthy(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


# ----------------------------------------------------------------------------------------- lifecycle


def _wait(proc: Proc, check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(proc.pid):
            _reap(proc.pid)
            raise InfraError(f"{proc.name} exited during start-up; see {proc.log}\n{_tail(proc.log)}")
        if check():
            return
        time.sleep(0.5)
    raise InfraError(f"{proc.name} did not become healthy ({what}) within {timeout:.0f}s; see {proc.log}")


def status(settings: Settings) -> list[dict]:
    """One row per recorded server: name, kind, ports, pid, alive, healthy."""
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    if not data:
        return []
    rows = []
    for p in data["processes"]:
        alive = _alive(p["pid"]) and is_ours(p["pid"], state, p["name"])
        if not alive:
            healthy = False
        elif p["kind"] == "kafka":
            healthy = _tcp_open(p["ports"]["client"])
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
        if rows and all(r["alive"] for r in rows):
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
                             f"free it or choose other ports with LIAISON_PORT_BASE / LIAISON_REGISTRY_PORT")
    jars = ensure_jars(settings, log=log)
    t0 = time.monotonic()
    procs: list[Proc] = []
    try:
        for node in plan.nodes:
            procs.append(_start_kafka(plan, node, jars, settings.deploy_dir))
            _write_state(plan, procs)
        for proc in procs:
            _wait(proc, lambda: _tcp_open(proc.ports["client"]), settings.start_timeout, "client port open")
        kafka_proc = procs[0]
        _wait(kafka_proc, lambda: kafka_healthy(plan.bootstrap, len(plan.nodes)), settings.start_timeout,
              f"AdminClient sees {len(plan.nodes)} broker(s)")
        log(f"kafka ({plan.shape}, {len(plan.nodes)} node(s)) healthy at {plan.bootstrap} "
            f"after {time.monotonic() - t0:.1f}s")
        reg = _start_registry(plan, jars)
        procs.append(reg)
        _write_state(plan, procs)
        _wait(reg, lambda: registry_healthy(plan.registry_url), settings.start_timeout,
              f"GET {plan.registry_url}/subjects answers 200")
        log(f"registry ({plan.registry_storage}) healthy at {plan.registry_url} "
            f"after {time.monotonic() - t0:.1f}s")
    except BaseException:
        _write_state(plan, procs)
        down(settings, log=lambda *_: None)
        raise
    return _write_state(plan, procs)


def _stop_pids(pids: list[int], timeout: float) -> list[int]:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        for pid in remaining:
            _reap(pid)
        remaining = [p for p in remaining if _alive(p)]
        if remaining:
            time.sleep(0.2)
    for pid in remaining:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(pid)
    return remaining


def down(settings: Settings, log=print) -> int:
    """Stop the registry first, then every broker; returns how many processes were stopped."""
    state = Path(settings.state_dir).resolve()
    data = read_state(state)
    ours = []
    if data:
        procs = data["processes"]
        registry = [p["pid"] for p in procs if p["kind"] == "registry" and is_ours(p["pid"], state, p["name"])]
        brokers = [p["pid"] for p in procs if p["kind"] == "kafka" and is_ours(p["pid"], state, p["name"])]
        if registry:
            killed = _stop_pids(registry, 20)
            if killed:
                log(f"registry did not stop on SIGTERM within 20s; killed pid {killed}")
        if brokers:
            killed = _stop_pids(brokers, 30)
            if killed:
                log(f"broker(s) did not stop on SIGTERM within 30s; killed pid(s) {killed}")
        ours = registry + brokers
    strays = [p for p in stray_pids(state) if p not in ours]
    if strays:
        _stop_pids(strays, 10)
        log(f"stopped {len(strays)} stray server process(es) of {state}: {strays}")
    try:
        _infra_file(state).unlink()
    except FileNotFoundError:
        pass
    return len(ours) + len(strays)

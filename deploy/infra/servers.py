"""Start, stop and inspect the local Kafka broker(s) and schema registry.

Everything runs on 127.0.0.1 from jars that Maven fetched (see deploy.infra.jars). The state of one
running set of servers lives in ``<state_dir>/infra.json``: shape, processes (pid, ports, log), and the
addresses clients use. ``up`` is idempotent, ``down`` stops exactly the processes recorded there (and any
stray java process carrying this state directory's marker).

The brokers are secured (see deploy/kafka/server.properties.template and deploy.infra.security): TLS with a CA
made at setup, SASL SCRAM-SHA-512 users created at format time, the KRaft StandardAuthorizer with default deny
and the ACLs of deploy/acls.yaml applied before the registry (which authenticates as `registry`) starts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
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

from deploy.infra import security
from deploy.infra.errors import InfraError
from deploy.infra.jars import ServerJars, check_java, ensure_jars
from core.settings import Settings

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

    @property
    def credentials_dir(self) -> Path:
        return security.credentials_dir(self.shape_dir)

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


def _write_state(plan: Plan, procs: list[Proc], sec: Security | None = None) -> dict:
    data = {
        "shape": plan.shape,
        "bootstrap_servers": plan.bootstrap,
        "schema_registry_url": plan.registry_url,
        "registry_storage": plan.registry_storage,
        "processes": [asdict(p) for p in procs],
    }
    if sec is not None:
        data["security"] = sec.state()
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
    return (_marker(state, name) + " ") in (_cmdline(pid) + " ")


def stray_pids(state: Path) -> list[int]:
    """Every live process whose command line carries this state directory's marker."""
    marker = re.compile(r"-Dliaison\.server=[\w.-]+@" + re.escape(str(state)) + r"(\s|$)")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if "-Dliaison.server=" in cmd and marker.search(cmd):
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


# ----------------------------------------------------------------------------------------- security


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
    return env


def client_settings(data: dict) -> Settings:
    """Settings whose clients talk to the servers of an infra state (whatever the environment says)."""
    sec = data.get("security") or {}
    return Settings(bootstrap_servers=data["bootstrap_servers"], schema_registry_url=data["schema_registry_url"],
                    security_protocol=sec.get("protocol", "PLAINTEXT"),
                    sasl_mechanism=sec.get("mechanism", security.SCRAM),
                    ssl_ca_location=sec.get("ssl_ca_location", ""), credentials_dir=sec.get("credentials_dir", ""),
                    sasl_username="", sasl_password="")


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


def _write_server_properties(plan: Plan, node: KafkaNode, deploy_dir: Path, sec: Security) -> Path:
    replication = len(plan.nodes) if len(plan.nodes) < 3 else 3
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in plan.nodes)
    controller_pw = sec.passwords[security.CONTROLLER]
    text = Template((deploy_dir / "kafka" / "server.properties.template").read_text()).substitute(
        node_id=node.node_id, voters=voters, broker_port=node.broker_port,
        controller_port=node.controller_port, data_dir=plan.shape_dir / node.name / "data",
        replication=replication, min_isr=1 if replication == 1 else 2,
        broker_jaas=security.jaas(security.SCRAM_MODULE, security.BROKER, sec.passwords[security.BROKER]),
        controller_jaas=security.jaas(security.PLAIN_MODULE, security.CONTROLLER, controller_pw,
                                      **{security.CONTROLLER: controller_pw}),
        keystore=sec.tls.keystore, keystore_password=sec.tls.keystore_password, ca_pem=sec.tls.ca_pem,
    )
    path = plan.shape_dir / node.name / "server.properties"
    security.write_private(path, text)
    return path


def _format_storage(plan: Plan, node: KafkaNode, jars: ServerJars, props: Path, log: Path, sec: Security,
                    say=print) -> None:
    """Format the node's storage with every SCRAM user (KIP-900), once. A storage formatted without them (made
    before the broker was secured) or for other credentials could never be logged into: it is discarded."""
    node_dir = plan.shape_dir / node.name
    data_dir = node_dir / "data"
    marker = node_dir / "security.json"
    if (data_dir / "meta.properties").exists():
        try:
            formatted = json.loads(marker.read_text())
        except (OSError, ValueError):
            formatted = {}
        if formatted.get("fingerprint") == sec.fingerprint():
            return
        say(f"{node.name}: storage in {data_dir} was formatted "
            + ("without SCRAM users (before the broker was secured)" if not formatted else "for other credentials")
            + "; discarding it and formatting afresh")
        shutil.rmtree(data_dir)
    # The passwords go in an argument file (0600, removed after), not on the command line any local user can read.
    argfile = node_dir / "format.args"
    args = ["kafka.tools.StorageTool", "format", "-t", _cluster_id(plan), "-c", str(props),
            *security.scram_format_args(sec.passwords, sec.users)]
    security.write_private(argfile, "\n".join(f'"{a}"' for a in args) + "\n")
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [jars.java, "-Xmx256m", f"-Dlog4j2.configurationFile={jars.log4j_config}", "-cp", jars.kafka_classpath,
           f"@{argfile}"]
    try:
        with open(log, "ab") as out:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    finally:
        argfile.unlink(missing_ok=True)
    if rc != 0:
        raise InfraError(f"formatting storage for {node.name} failed (exit {rc}); see {log}")
    security.write_private(marker, json.dumps({"fingerprint": sec.fingerprint(), "users": sec.users}) + "\n")


def _start_kafka(plan: Plan, node: KafkaNode, jars: ServerJars, deploy_dir: Path, sec: Security, say=print) -> Proc:
    props = _write_server_properties(plan, node, deploy_dir, sec)
    log = plan.logs_dir / f"{node.name}.log"
    _format_storage(plan, node, jars, props, log, sec, say)
    heap = "1g" if plan.shape == "single" else "768m"
    cmd = _java_cmd(jars.java, heap, _marker(plan.state, node.name), [
        f"-Dlog4j2.configurationFile={jars.log4j_config}",
        f"-Dkafka.logs.dir={plan.logs_dir}",
        "-cp", jars.kafka_classpath, "kafka.Kafka", str(props),
    ])
    pid = _spawn(cmd, log)
    return Proc(node.name, "kafka", pid, {"client": node.broker_port, "controller": node.controller_port}, str(log))


def kafka_healthy(bootstrap: str, expect_brokers: int, timeout: float = 3.0, conf: dict | None = None) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0,
                          **(conf or {})}).list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
        return False
    return len(md.brokers) >= expect_brokers


def ensure_scram_users(admin, sec: Security, timeout: float = 30.0) -> list[str]:
    """Create the SCRAM users the broker lacks (a principal added to deploy/acls.yaml after formatting)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    have = set()
    try:
        for user, fut in admin.describe_user_scram_credentials(sec.users, request_timeout=timeout).items():
            try:
                if fut.result().scram_credential_infos:
                    have.add(user)
            except Exception:  # noqa: BLE001 - RESOURCE_NOT_FOUND: no credential yet
                pass
    except Exception:  # noqa: BLE001 - a whole-request failure: treat every user as missing
        pass
    missing = [u for u in sec.users if u not in have]
    if missing:
        ups = [UserScramCredentialUpsertion(u, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                            sec.passwords[u].encode()) for u in missing]
        for user, fut in admin.alter_user_scram_credentials(ups, request_timeout=timeout).items():
            fut.result()
    return missing


def _setup_access(plan: Plan, sec: Security, deploy_dir: Path, say) -> None:
    """SCRAM users and the ACLs of deploy/acls.yaml (created, never pruned here), as admin."""
    from confluent_kafka.admin import AdminClient

    from deploy.acl import apply_acls, load_acls

    admin = AdminClient({**sec.client_config(plan.bootstrap), "log_level": 0})
    added = ensure_scram_users(admin, sec)
    if added:
        say(f"created SCRAM user(s) {', '.join(added)}")
    p, _ = apply_acls(load_acls(deploy_dir / "acls.yaml"), admin)
    if p.create:
        say(f"ACLs: {len(p.create)} created from deploy/acls.yaml")
    if p.drift:
        say(f"ACLs: {len(p.drift)} on the broker not in deploy/acls.yaml (see `liaison acl apply`)")


# ----------------------------------------------------------------------------------------- registry


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


def _start_registry(plan: Plan, jars: ServerJars, sec: Security | None = None) -> Proc:
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
    cmd = _java_cmd(jars.registry_java, "768m", _marker(plan.state, "registry"), [
        "-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={cds}", "-XX:TieredStopAtLevel=1",
        "-jar", str(jars.registry_jar)])
    pid = _spawn(cmd, log, env=env, cwd=cwd)
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
    sec = prepare_security(plan, settings.deploy_dir)
    t0 = time.monotonic()
    procs: list[Proc] = []
    try:
        for node in plan.nodes:
            procs.append(_start_kafka(plan, node, jars, settings.deploy_dir, sec, log))
            _write_state(plan, procs, sec)
        for proc in procs:
            _wait(proc, lambda: _tcp_open(proc.ports["client"]), settings.start_timeout, "client port open")
        kafka_proc = procs[0]
        admin_conf = sec.client_config(plan.bootstrap)
        _wait(kafka_proc, lambda: kafka_healthy(plan.bootstrap, len(plan.nodes), conf=admin_conf),
              settings.start_timeout, f"AdminClient (as admin, SASL_SSL) sees {len(plan.nodes)} broker(s)")
        _setup_access(plan, sec, settings.deploy_dir, log)
        log(f"kafka ({plan.shape}, {len(plan.nodes)} node(s)) healthy at {plan.bootstrap} (SASL_SSL, "
            f"SCRAM-SHA-512, ACLs) after {time.monotonic() - t0:.1f}s")
        reg = _start_registry(plan, jars, sec)
        procs.append(reg)
        _write_state(plan, procs, sec)
        _wait(reg, lambda: registry_healthy(plan.registry_url), settings.start_timeout,
              f"GET {plan.registry_url}/subjects answers 200")
        log(f"registry ({plan.registry_storage}) healthy at {plan.registry_url} "
            f"after {time.monotonic() - t0:.1f}s")
    except BaseException:
        _write_state(plan, procs, sec)
        down(settings, log=lambda *_: None)
        raise
    return _write_state(plan, procs, sec)


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

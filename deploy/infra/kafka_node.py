"""The Kafka nodes: server properties, storage formatted with the SCRAM users, start, health, users and ACLs."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from string import Template

from deploy.infra import security
from deploy.infra.client_env import Security
from deploy.infra.errors import InfraError
from deploy.infra.jars import ServerJars
from deploy.infra.plan import KafkaNode, Plan
from deploy.infra.process import Proc, java_cmd, server_marker, spawn

__all__ = ["start_kafka", "kafka_healthy", "broker_answers", "replicas_in_sync", "ensure_scram_users",
           "setup_access"]


def _cluster_id(plan: Plan) -> str:
    """The cluster id (22 characters of URL-safe base64, as Kafka's own), made once per shape. Never one that
    starts with "-" (like Kafka's Uuid.randomUuid): one in 64 would, and the storage tool would read it as an
    option ("argument --cluster-id/-t: expected one argument")."""
    f = plan.shape_dir / "cluster.id"
    if f.exists():
        return f.read_text().strip()
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(cid + "\n")
    return cid


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
    # --cluster-id=<id>: an id kept from before that starts with "-" is still read as the option's value
    args = ["kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id(plan)}", "-c", str(props),
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


def start_kafka(plan: Plan, node: KafkaNode, jars: ServerJars, deploy_dir: Path, sec: Security, say=print) -> Proc:
    props = _write_server_properties(plan, node, deploy_dir, sec)
    log = plan.logs_dir / f"{node.name}.log"
    _format_storage(plan, node, jars, props, log, sec, say)
    heap = "1g" if plan.shape == "single" else "768m"
    cmd = java_cmd(jars.java, heap, server_marker(plan.state, node.name), [
        f"-Dlog4j2.configurationFile={jars.log4j_config}",
        f"-Dkafka.logs.dir={plan.logs_dir}",
        "-cp", jars.kafka_classpath, "kafka.Kafka", str(props),
    ])
    pid = spawn(cmd, log)
    return Proc(node.name, "kafka", pid, {"client": node.broker_port, "controller": node.controller_port}, str(log))


def kafka_healthy(bootstrap: str, expect_brokers: int, timeout: float = 3.0, conf: dict | None = None) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0,
                          **(conf or {})}).list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not healthy yet"
        return False
    return len(md.brokers) >= expect_brokers


def broker_answers(port: int, conf: dict | None = None, timeout: float = 3.0) -> bool:
    """The broker on ``port`` itself answers a metadata request (as ``conf``'s user): alive, TLS handshake and
    SASL login served. An open port alone is not enough: a stopped (SIGSTOP) or wedged JVM still accepts TCP
    connections in the kernel's backlog."""
    address = f"127.0.0.1:{port}"
    return kafka_healthy(address, 1, timeout, conf={**(conf or {}), "bootstrap.servers": address})


def replicas_in_sync(bootstrap: str, node_ids: set[int], conf: dict | None = None,
                     timeout: float = 5.0) -> tuple[int, int] | None:
    """(partitions where one of ``node_ids`` is a replica, those where it is not yet in the ISR), or None when
    the metadata cannot be read."""
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0,
                          **(conf or {})}).list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - unreadable now: the caller tries again
        return None
    total = lagging = 0
    for topic in md.topics.values():
        for part in topic.partitions.values():
            mine = node_ids & set(part.replicas)
            if mine:
                total += 1
                if not mine <= set(part.isrs):
                    lagging += 1
    return total, lagging


def ensure_scram_users(admin, sec: Security, timeout: float = 30.0) -> list[str]:
    """Create the SCRAM users the broker lacks (a principal added to deploy/acls.yaml after formatting).

    The admin client is new: its first requests go to the bootstrap connections, which librdkafka destroys once
    the cluster's metadata names the brokers (a request in flight then fails with _DESTROY_BROKER, "Broker handle
    destroyed without termination"; seen with three nodes when users were missing). So the metadata is fetched
    first, and an upsert that fails for such a transient reason (it is idempotent) is sent again, bounded."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    # failures that say nothing about the request: the connection it went on was replaced or lost
    transient_codes = {KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT, KafkaError._TIMED_OUT,
                       KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER}

    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        pass  # the calls below fail (or not) on their own
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
        deadline = time.monotonic() + timeout
        while True:
            try:
                for _user, fut in admin.alter_user_scram_credentials(ups, request_timeout=timeout).items():
                    fut.result()
                break
            except KafkaException as e:
                err = e.args[0] if e.args else None
                transient = err is not None and (err.retriable() or err.code() in transient_codes)
                if not transient or time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
    return missing


def setup_access(plan: Plan, sec: Security, deploy_dir: Path, say, jars: ServerJars | None = None) -> None:
    """SCRAM users, the ACLs of deploy/acls.yaml (created, never pruned here), then the client quotas of
    deploy/quotas.yaml (set where missing or different, never pruned here), as admin."""
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
    _apply_quotas(plan, sec, deploy_dir, say, jars)


def _apply_quotas(plan: Plan, sec: Security, deploy_dir: Path, say, jars: ServerJars | None) -> None:
    from core.settings import Settings
    from deploy.quotas import QuotaError, apply_quotas, config_command, load_quotas

    try:
        declared = load_quotas(deploy_dir / "quotas.yaml")
        tool = config_command(plan.bootstrap, sec.client_config(plan.bootstrap), plan.shape_dir / "tools",
                              settings=Settings(deploy_dir=deploy_dir), jars=jars)
        q, _ = apply_quotas(declared, tool)
    except (OSError, QuotaError) as e:
        raise InfraError(f"client quotas: {e}") from None
    if q.set:
        say(f"quotas: {len(q.set)} set from deploy/quotas.yaml")
    if q.drift:
        say(f"quotas: {len(q.drift)} on the broker not in deploy/quotas.yaml (see `liaison quotas apply`)")

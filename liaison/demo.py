"""`liaison demo`: the main job end to end on the embedded default, then a clean stop.

servers up -> topics -> schemas -> forwarder (a separate process) -> simulators -> read back:
per-type counts on the internal topics, per-partner released / withheld / dead-lettered from the audit
topic, three sample released records per partner -> forwarder stopped (SIGTERM) -> servers down (if the
demo started them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import schemas
from liaison import REPO_ROOT, governance, topics
from liaison.infra import servers
from liaison.infra.errors import InfraError
from liaison.readback import committed_offsets, end_offsets, read_between
from liaison.settings import get_settings

console = Console()


def _step(text: str) -> None:
    console.print(f"[bold cyan]==>[/bold cyan] {text}", highlight=False)


def demo(rate: float = typer.Option(300.0, help="simulated events per second"),
         duration: float = typer.Option(8.0, help="seconds of simulation"),
         seed: int = typer.Option(7, help="simulator seed"),
         keep_running: bool = typer.Option(False, help="leave the servers running at the end")) -> None:
    """Run the liaison bus end to end on local servers and print what happened."""
    settings = get_settings()
    external = bool(settings.bootstrap_servers)
    started_here = False
    fwd = None
    try:
        if not external:
            _step("starting Kafka (KRaft) and the schema registry on 127.0.0.1")
            already = servers.read_state(Path(settings.state_dir).resolve())
            data = servers.up(settings, "single", "kafkasql", log=lambda m: console.print(f"    {m}", highlight=False))
            started_here = not already
            console.print(f"    kafka {data['bootstrap_servers']}  registry {data['schema_registry_url']}")
        _step("applying deploy/topics.yaml")
        created, drift, notes = topics.apply_topics(topics.load_topics())
        console.print(f"    {len(created)} created, {len(drift)} drift" + (f" ({notes[0]})" if notes else ""))
        _step("registering schemas (BACKWARD_TRANSITIVE)")
        ids = governance.register_all()
        console.print(f"    {len(ids)} subjects, ids {sorted(set(ids.values()))}")

        internal = [schemas.topic_for(t) for t in schemas.MESSAGE_TYPES]
        partner_topics = [t.name for t in topics.load_topics() if t.name.startswith(topics.PARTNER_PREFIX)]
        watched = internal + partner_topics + ["liaison.audit.decisions", "liaison.deadletter"]
        start = end_offsets(watched)

        _step("starting the forwarder (liaison forward --instance demo)")
        log_path = Path(settings.state_dir) / "single" / "logs" / "forwarder-demo.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fwd = subprocess.Popen([sys.executable, "-m", "liaison", "forward", "--instance", "demo"],
                               stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                               env={**os.environ, "LIAISON_BOOTSTRAP_SERVERS": settings.kafka_bootstrap(),
                                    "LIAISON_SCHEMA_REGISTRY_URL": settings.registry_url()})
        console.print(f"    pid {fwd.pid}, log {log_path}")

        _step(f"simulating naval, air and intel components: {rate:.0f} events/s for {duration:.0f}s (seed {seed})")
        from producers.cli import run_simulation

        delivered, elapsed = run_simulation({"naval", "air", "intel"}, rate, duration, seed)
        console.print(f"    {sum(delivered.values())} delivered in {elapsed:.1f}s")

        _step("waiting for the forwarder to catch up")
        targets = end_offsets(internal)
        deadline = time.monotonic() + 90
        while committed_offsets("liaison-forwarder", internal) != targets:
            if fwd.poll() is not None:
                raise RuntimeError(f"the forwarder exited with {fwd.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the forwarder did not catch up within 90s; see {log_path}")
            time.sleep(0.5)
        end = end_offsets(watched)
        msgs = read_between(start, end)
        _report(msgs, delivered)
    except InfraError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    finally:
        if fwd is not None and fwd.poll() is None:
            _step("stopping the forwarder (SIGTERM: finishes its transaction)")
            fwd.send_signal(signal.SIGTERM)
            try:
                fwd.wait(30)
            except subprocess.TimeoutExpired:
                fwd.kill()
                fwd.wait()
        if started_here and not keep_running:
            _step("stopping the servers the demo started")
            servers.down(settings, log=lambda m: console.print(f"    {m}", highlight=False))
    _step("done")


def _report(msgs: list, delivered: Counter) -> None:
    from confluent_kafka.serialization import MessageField, SerializationContext

    from consumers.codec import InputDecoder, audit_schema
    from liaison import serde

    client = serde.registry_client()
    decoder = InputDecoder(client, validate=False)
    deser = serde.avro_deserializer(client)
    by_topic: dict[str, list] = {}
    for m in msgs:
        by_topic.setdefault(m.topic(), []).append(m)

    t = Table(title="internal topics: per-type counts read back from Kafka")
    for col in ("type", "topic", "sent", "read back"):
        t.add_column(col, justify="right" if col in ("sent", "read back") else "left")
    for name in schemas.MESSAGE_TYPES:
        topic = schemas.topic_for(name)
        n = sum(1 for m in by_topic.get(topic, []) if decoder.decode(topic, m.value())[0] == name)
        t.add_row(name, topic, str(delivered[name]), str(n))
    console.print(t)

    audit = [deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
             for m in by_topic.get("liaison.audit.decisions", [])]
    counts = Counter((a["partner"], a["decision"]) for a in audit)
    partners = sorted({a["partner"] for a in audit})
    t = Table(title="forwarder decisions (from liaison.audit.decisions)")
    for col in ("partner", "released", "withheld", "dead-lettered", "total"):
        t.add_column(col, justify="left" if col == "partner" else "right")
    for p in partners:
        r, w, d = counts[(p, "RELEASE")], counts[(p, "WITHHOLD")], counts[(p, "DEAD_LETTER")]
        t.add_row(p, str(r), str(w), str(d), str(r + w + d))
    console.print(t)
    rules = Counter((a["partner"], a["rule"]) for a in audit if a["decision"] == "WITHHOLD")
    for p in partners:
        top = ", ".join(f"{rule} {n}" for (pp, rule), n in rules.most_common() if pp == p)
        console.print(f"    {p} withheld by: {top}", highlight=False)

    for p in partners:
        prefix = f"{topics.PARTNER_PREFIX}{p.lower()}."
        released = [m for topic, ms in sorted(by_topic.items()) if topic.startswith(prefix) for m in ms]
        console.print(f"[bold]{p}[/bold]: {len(released)} released records; three samples:")
        seen_types = []
        for m in released:
            if m.topic() in seen_types:
                continue
            seen_types.append(m.topic())
            value = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
            console.print(f"  [dim]{m.topic()}[/dim] {json.dumps(value, default=str)[:400]}", highlight=False)
            if len(seen_types) == 3:
                break

"""`liaison demo`: the main job end to end on the embedded default, then a clean stop.

servers up -> topics -> schemas -> forwarder, ingress guards, ledger (separate processes) -> our simulators and
the partners' (publishing to us as their principals, bad input included) -> held releases falling due -> read
back: per-type counts on the internal topics, per-recipient released / withheld / held / released from the hold /
dead-lettered from the audit topic, what is still held and when it falls due, three sample released records per
recipient, what the guards accepted and quarantined (by check), what each component received, the reciprocity
ledger's table, the naval component's and the officers' feeds -> services stopped (SIGTERM) -> servers down (if
the demo started them). The give-and-take half lives in :mod:`liaison.demo_exchange`.

The forwarder runs on a variant of deploy/policies written to ``<state>/demo/policies``: RUS strike reports
bucketed to ``--bucket`` seconds (20) instead of the hour, so that the demo shows strike reports held until
their bucket ends and then released (the shipped hour would hold them past the demo's end).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import schemas

from core import REPO_ROOT
from core import topics as names
from core.audit import rows_of
from core.topics import topic_for
from deploy import governance, topics
from deploy.infra import servers
from deploy.infra.errors import InfraError
from liaison import demo_exchange as exchange_demo
from liaison.demo_console import CONSOLE_PRINCIPALS, free_port, start_console
from core.readback import caught_up, committed_offsets, end_offsets, read_between
from core.settings import get_settings

#: The RUS strike-report buckets (time and label.created_at) of the shipped policy, shortened for the demo.
SHIPPED_BUCKET = "{bucket: {seconds: 3600}}"

console = Console(width=None if sys.stdout.isatty() else 120)


def _step(text: str) -> None:
    console.print(f"[bold cyan]==>[/bold cyan] {text}", highlight=False)


def demo(rate: float = typer.Option(300.0, help="simulated events per second"),
         duration: float = typer.Option(25.0, help="seconds of simulation (Ctrl-C stops earlier)"),
         seed: int = typer.Option(7, help="simulator seed"),
         feed_lines: int = typer.Option(5, help="lines of each partner's feed to show"),
         bucket: int = typer.Option(20, help="seconds of the RUS strike-report buckets in the demo's policies"),
         partner_rate: float = typer.Option(20.0, help="records per second each simulated partner sends us"),
         console_port: int = typer.Option(8090, help="port of the web console (any free one if taken)"),
         hold: bool = typer.Option(False, help="after the report, keep the services and the console running "
                                               "until Ctrl-C"),
         keep_running: bool = typer.Option(False, help="leave the servers running at the end")) -> None:
    """Run the liaison bus end to end on local secured servers and print what happened."""
    settings = get_settings()
    external = bool(settings.bootstrap_servers)
    started_here = False
    fwd = None
    web = None
    services: dict = {}
    partner_sims: dict = {}
    stop_sim = threading.Event()
    try:
        if not external:
            _step("starting Kafka (KRaft; TLS + SASL/SCRAM, ACL authorizer) and the schema registry on 127.0.0.1")
            already = servers.read_state(Path(settings.state_dir).resolve())
            data = servers.up(settings, "single", "kafkasql", log=lambda m: console.print(f"    {m}", highlight=False))
            started_here = not already
            console.print(f"    kafka {data['bootstrap_servers']}  registry {data['schema_registry_url']}")
        _step("applying deploy/topics.yaml and deploy/acls.yaml")
        created, drift, notes = topics.apply_topics(topics.load_topics())
        console.print(f"    topics: {len(created)} created, {len(drift)} drift" + (f" ({notes[0]})" if notes else ""))
        from deploy import acl

        acl_plan, _ = acl.apply_acls(acl.load_acls())
        console.print(f"    ACLs: {len(acl_plan.create)} created, {acl_plan.present} present, "
                      f"{len(acl_plan.drift)} drift", highlight=False)
        _step("registering schemas (BACKWARD_TRANSITIVE)")
        ids = governance.register_all()
        console.print(f"    {len(ids)} subjects, ids {sorted(set(ids.values()))}")

        internal = [topic_for(t) for t in schemas.MESSAGE_TYPES]
        declared = [t.name for t in topics.load_topics()]
        partner_topics = [t for t in declared if t.startswith(names.PARTNER_PREFIX)]
        exchange = [t for t in declared if t.startswith((names.INBOUND_PREFIX, names.ORIGIN_PREFIX,
                                                          names.QUARANTINE_PREFIX, names.COMPONENT_PREFIX))]
        watched = internal + partner_topics + exchange + [names.AUDIT_TOPIC, names.DEADLETTER_TOPIC, names.HOLD_TOPIC,
                                                          names.INGRESS_AUDIT_TOPIC]
        start = end_offsets(watched)
        demo_started = time.time()

        policies = demo_policies(Path(settings.state_dir) / "demo" / "policies", bucket)
        _step(f"starting the forwarder as principal 'forwarder' (liaison forward --instance demo --policies "
              f"{policies}: RUS strike reports bucketed to {bucket} s, held until their bucket ends)")
        log_path = Path(settings.state_dir) / "single" / "logs" / "forwarder-demo.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # each service's /metrics, /healthz and /readyz, which the console's operations view shows
        ports = {name: free_port() for name in ("forwarder", *(f"ingress-{c}" for c in exchange_demo.PARTNERS),
                                                "ledger", "deconflict")}
        fwd = subprocess.Popen([sys.executable, "-m", "liaison", "forward", "--instance", "demo",
                                "--policies", str(policies), "--metrics-port", str(ports["forwarder"])],
                               stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        console.print(f"    pid {fwd.pid}, log {log_path}")
        _step("starting the ingress guards (liaison ingress --partner RUS|USA, principal 'ingress'), the "
              "reciprocity ledger (liaison ledger run, principal 'ledger') and deconfliction (liaison deconflict, "
              "principal 'deconflict'; its ETA buffer scaled to the simulation's compressed sorties)")
        eta_buffer = exchange_demo.eta_buffer_s(rate, seed)
        services = exchange_demo.start_services(log_path.parent, policies,
                                                lambda m: console.print(f"    {m}", highlight=False), eta_buffer,
                                                metrics_ports=ports)
        _step("starting the web console (liaison console: it holds no credentials; each user signs in as a "
              "principal and reads what the broker lets that principal read)")
        web, url = start_console(log_path.parent / "console-demo.log", policies, ports, console_port)
        creds = Path(settings.security().credentials_file("operations")).parent if settings.security() else None
        console.print(f"    [bold]console: {url}[/bold]  (pid {web.pid}, log {log_path.parent / 'console-demo.log'})",
                      highlight=False, soft_wrap=True)
        console.print(f"    sign in with the password in {creds}/<principal>.json, as:", highlight=False, soft_wrap=True)
        for principal, what in CONSOLE_PRINCIPALS.items():
            console.print(f"      {principal:<16} {what}", highlight=False, soft_wrap=True)
        _step(f"simulating the partners publishing to us (liaison simulate partner, as partner-rus / partner-usa): "
              f"{partner_rate:.0f} records/s each for {duration:.0f}s, good records and bad input of every class")
        partner_sims = exchange_demo.simulate_partners(partner_rate, duration, seed, log_path.parent, rate)

        _step(f"simulating naval, air and intel components (principals producer-naval/-air/-intel): "
              f"{rate:.0f} events/s for {duration:.0f}s, seed {seed}")
        from producers.cli import run_simulation

        sim_result: dict = {}

        def simulate():
            try:
                sim_result["delivered"], sim_result["elapsed"] = run_simulation(
                    {"naval", "air", "intel"}, rate, duration, seed, stop=stop_sim)
            except Exception as e:  # noqa: BLE001 - reported below
                sim_result["error"] = e

        sim = threading.Thread(target=simulate, daemon=True)
        sim.start()
        from operations.lag.collect import Collector
        from operations.lag.monitor import Monitor

        with Collector(groups=["liaison-forwarder"]) as collector:
            monitor = Monitor(collector, interval=5.0)
            while sim.is_alive():
                sim.join(5.0)
                _lag_table(monitor.poll_once(), live=True)
            if "error" in sim_result:
                raise sim_result["error"]
            delivered = sim_result["delivered"]
            console.print(f"    {sum(delivered.values())} delivered in {sim_result['elapsed']:.1f}s")

            for code, p in partner_sims.items():
                p.wait(duration + 120)
            _step("waiting for the ingress guards, then the forwarder, to catch up")
            exchange_demo.wait_caught_up(services, 120, lambda m: console.print(f"    {m}", highlight=False))
            origin = [t for t in exchange if t.startswith(names.ORIGIN_PREFIX)]
            targets = end_offsets(internal + origin)
            # a busy machine is slower, not stuck: give up only after 90 s without any progress
            deadline, done = time.monotonic() + 90, -1
            while (committed := committed_offsets("liaison-forwarder", internal + origin)) != targets and not \
                    caught_up("liaison-forwarder", internal + origin):
                if fwd.poll() is not None:
                    raise RuntimeError(f"the forwarder exited with {fwd.returncode}; see {log_path}")
                if sum(committed.values()) > done:
                    deadline, done = time.monotonic() + 90, sum(committed.values())
                if time.monotonic() > deadline:
                    behind = {f"{t}/{p}": (committed.get((t, p)), end) for (t, p), end in targets.items()
                              if committed.get((t, p)) != end}
                    raise RuntimeError(f"the forwarder made no progress for 90s (committed, end: "
                                       f"{dict(list(behind.items())[:6])}); see {log_path}")
                time.sleep(0.5)
            _lag_table(monitor.poll_once(), live=False)
        _wait_for_due_holds(start, fwd, log_path, horizon_s=bucket + 30)
        _step("waiting for the ledger to count both audits")
        exchange_demo.wait_ledger(services, 90, lambda m: console.print(f"    {m}", highlight=False))
        end = end_offsets(watched)
        msgs = read_between(start, end)
        _report(msgs, delivered)
        exchange_demo.report(msgs, console, {c: (log_path.parent / f"simulate-partner-{c.lower()}-demo.log").read_text()
                                             for c in partner_sims})
        _step("liaison ledger: given and received per partner and category (the give-and-take balance)")
        res = subprocess.run([sys.executable, "-m", "liaison", "ledger"], capture_output=True, text=True, timeout=120,
                             cwd=REPO_ROOT)
        for line in res.stdout.splitlines():
            console.print(f"    {line}", highlight=False, soft_wrap=True)
        if res.returncode != 0:
            console.print(f"    [red]ledger exited {res.returncode}:[/red] {res.stderr.strip()[-300:]}")
        _step(f"liaison subscribe --component naval: the first {feed_lines} lines of the carrier group's air picture")
        res = subprocess.run([sys.executable, "-m", "liaison", "subscribe", "--component", "naval", "--since",
                              f"{int(time.time() - demo_started) + 5}s", "--max-records", str(feed_lines),
                              "--idle-exit", "5"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        for line in res.stdout.splitlines()[:feed_lines + 2]:
            console.print(f"    {line}", highlight=False, soft_wrap=True)
        if res.returncode != 0:
            console.print(f"    [red]subscribe exited {res.returncode}:[/red] {res.stderr.strip()[-300:]}")

        for partner in ("RUS", "USA"):
            _step(f"liaison subscribe --partner {partner}: the first {feed_lines} lines of the {partner} officer's feed")
            since = f"{int(time.time() - demo_started) + 5}s"
            res = subprocess.run([sys.executable, "-m", "liaison", "subscribe", "--partner", partner, "--since", since,
                                  "--max-records", str(feed_lines), "--idle-exit", "5"],
                                 capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
            for line in res.stdout.splitlines()[:feed_lines + 2]:
                console.print(f"    {line}", highlight=False, soft_wrap=True)
            if res.returncode != 0:
                console.print(f"    [red]subscribe exited {res.returncode}:[/red] {res.stderr.strip()[-300:]}")
        _step("the RUS officer tries USA's feed (must be refused by the broker)")
        res = subprocess.run([sys.executable, "-m", "liaison", "subscribe", "--partner", "USA", "--as", "RUS",
                              "--max-records", "1", "--idle-exit", "5"], capture_output=True, text=True, timeout=120,
                             cwd=REPO_ROOT)
        console.print(f"    exit {res.returncode}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ''}",
                      highlight=False)
        if web is not None and hold:
            _step(f"the console keeps serving at {url} with the services running: Ctrl-C stops them")
            while web.poll() is None:
                try:
                    web.wait(60)
                except subprocess.TimeoutExpired:
                    pass
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping cleanly[/yellow]")
    except InfraError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    finally:
        stop_sim.set()
        exchange_demo.stop(partner_sims)
        if web is not None:
            _step("stopping the console")
            exchange_demo.stop({"console": web})
        if services:
            _step("stopping the ingress guards and the ledger (SIGTERM: each finishes its transaction)")
            exchange_demo.stop(services)
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


def _lag_table(report, live: bool) -> None:
    """One compact table per reading: the forwarder group's lag per internal topic, and its status."""
    g = report.group("liaison-forwarder")
    if g is None or (g.error and not g.partitions):
        console.print("    lag: the forwarder's consumer group is not formed yet")
        return
    per_topic: dict[str, list] = {}
    for p in g.partitions:
        per_topic.setdefault(p.topic, []).append(p)
    t = Table(title=f"{'live ' if live else ''}lag of liaison-forwarder: {g.status} ({g.reason}); "
                    f"{g.members} member(s)", title_justify="left")
    for col in ("internal topic", "partitions", "committed", "end", "lag (records)", "lag (s)", "status"):
        t.add_column(col, justify="left" if col in ("internal topic", "status") else "right")
    for topic, ps in sorted(per_topic.items()):
        lag_s = [p.lag_seconds for p in ps if p.lag_seconds is not None]
        worst = max((p.status for p in ps), key=_severity)
        t.add_row(topic.removeprefix(names.INTERNAL_PREFIX), str(len(ps)), str(sum(p.committed or 0 for p in ps)), str(sum(p.end_offset or 0 for p in ps)),
                  str(sum(p.lag_records or 0 for p in ps)), f"{max(lag_s):.1f}" if lag_s else "-", worst)
    console.print(t)


def _severity(status: str) -> int:
    return ["OK", "WARNING", "STALLED", "STOPPED", "ERROR"].index(status) if status in (
        "OK", "WARNING", "STALLED", "STOPPED", "ERROR") else 0


def _report(msgs: list, delivered: Counter) -> None:
    from confluent_kafka.serialization import MessageField, SerializationContext

    from consumers.shell.codec import InputDecoder
    from core import serde

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
        topic = topic_for(name)
        n = sum(1 for m in by_topic.get(topic, []) if decoder.decode(topic, m.value())[0] == name)
        t.add_row(name, topic, str(delivered[name]), str(n))
    console.print(t)

    audit = rows_of(deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
                    for m in by_topic.get(names.AUDIT_TOPIC, []))  # one row per recipient decision
    counts = Counter((a["partner"], a["decision"]) for a in audit)
    partners = sorted({a["partner"] for a in audit})
    t = Table(title="forwarder decisions (from liaison.audit.decisions): released + withheld + held = input - "
                    "dead-lettered")
    for col in ("partner", "released", "of which from the hold", "withheld", "held (waiting)", "dead-lettered",
                "input"):
        t.add_column(col, justify="left" if col == "partner" else "right")
    for p in partners:
        r, w, d = counts[(p, "RELEASE")] + counts[(p, "RELEASED")], counts[(p, "WITHHOLD")], counts[(p, "DEAD_LETTER")]
        h = counts[(p, "HELD")] - counts[(p, "RELEASED")]
        t.add_row(p, str(r), str(counts[(p, "RELEASED")]), str(w), str(h), str(d), str(r + w + h + d))
    console.print(t)
    _held_report(audit)
    rules = Counter((a["partner"], a["rule"]) for a in audit if a["decision"] == "WITHHOLD")
    for p in partners:
        top = ", ".join(f"{rule} {n}" for (pp, rule), n in rules.most_common() if pp == p)
        console.print(f"    {p} withheld by: {top}", highlight=False)

    for p in partners:
        prefix = names.recipient_prefix(p)
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


def demo_policies(dest: Path, bucket: int) -> Path:
    """deploy/policies copied to ``dest`` with RUS strike reports bucketed to ``bucket`` seconds."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(get_settings().deploy_dir / "policies", dest)
    rus = dest / "RUS.yaml"
    text = rus.read_text()
    if text.count(SHIPPED_BUCKET) != 2:
        raise RuntimeError(f"{rus}: expected the strike report's two hour buckets ({SHIPPED_BUCKET})")
    rus.write_text(text.replace(SHIPPED_BUCKET, f"{{bucket: {{seconds: {bucket}}}}}"))
    return dest


def _audits(start: dict) -> list[dict]:
    from confluent_kafka.serialization import MessageField, SerializationContext

    from core import serde

    deser = serde.avro_deserializer()
    return rows_of(deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
                   for m in read_between(start, end_offsets([names.AUDIT_TOPIC])))


def _wait_for_due_holds(start: dict, fwd, log_path: Path, horizon_s: float) -> None:
    """Until every held record falling due within ``horizon_s`` has been released (the demo's short buckets;
    RUS's foreign-fighter reports wait for the end of their day, past the demo)."""
    _step("waiting for held records to fall due and be released (never before their bucket ends)")
    deadline = time.monotonic() + horizon_s + 30
    shown = None
    while True:
        audit = _audits(start)
        horizon = time.time() + horizon_s
        released = {_key(a) for a in audit if a["decision"] == "RELEASED"}
        soon = [a for a in audit if a["decision"] == "HELD" and a["due_at"].timestamp() <= horizon
                and _key(a) not in released]
        line = f"    {len(released)} released from the hold; {len(soon)} due within {horizon_s:.0f}s" + (
            f", next at {min(a['due_at'] for a in soon):%H:%M:%S}" if soon else "")
        if line != shown:
            console.print(line, highlight=False)
            shown = line
        if not soon:
            return
        if fwd.poll() is not None:
            raise RuntimeError(f"the forwarder exited with {fwd.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            console.print(f"    [yellow]{len(soon)} held record(s) not released yet[/yellow]")
            return
        time.sleep(2.0)


def _key(a: dict) -> tuple:
    return a["input_topic"], a["input_partition"], a["input_offset"], a["partner"]


def _held_report(audit: list[dict]) -> None:
    """Per partner and type: held, released from the hold (with their due times), still held (until when)."""
    released = {_key(a): a for a in audit if a["decision"] == "RELEASED"}
    rows: dict[tuple[str, str], list[dict]] = {}
    for a in audit:
        if a["decision"] == "HELD":
            rows.setdefault((a["partner"], a["message_type"]), []).append(a)
    if not rows:
        console.print("    nothing held: no released record had a time bucket still open")
        return
    t = Table(title="held releases (liaison.hold): released when their time buckets end, never before")
    for col in ("partner", "type", "held", "released from the hold", "due (released)", "latest release after due",
                "still held", "due (still held)"):
        t.add_column(col, justify="left" if col in ("partner", "type") or col.startswith("due") else "right")
    for (p, type_name), held in sorted(rows.items()):
        out = [released[_key(a)] for a in held if _key(a) in released]
        waiting = [a for a in held if _key(a) not in released]
        late = max(((r["decided_at"] - r["due_at"]).total_seconds() for r in out), default=None)
        t.add_row(p, type_name, str(len(held)), str(len(out)), _span([r["due_at"] for r in out]),
                  "-" if late is None else f"{late:.1f} s", str(len(waiting)), _span([a["due_at"] for a in waiting]))
    console.print(t)


def _span(times: list) -> str:
    """First .. last of some UTC times: the time of day when all fall on one day, else dates too."""
    if not times:
        return "-"
    lo, hi = min(times), max(times)
    fmt = "%H:%M:%S" if lo.date() == hi.date() == datetime.now(timezone.utc).date() else "%Y-%m-%d %H:%M"
    return f"{lo:{fmt}}" if lo == hi else f"{lo:{fmt}} .. {hi:{fmt}}"

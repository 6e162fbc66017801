"""The give-and-take half of `liaison demo`: the partners publish to us through the ingress guard, our components
receive their feeds, and the reciprocity ledger balances the exchange.

Processes (each as its own principal, logs next to the forwarder's): `liaison ingress --partner RUS|USA`
(`ingress`), `liaison ledger run` (`ledger`), `liaison simulate partner --partner RUS|USA` (`partner-rus`,
`partner-usa`: good records and a share of bad input of every class). Read back at the end: per partner what the
guard accepted and quarantined (by check, from liaison.audit.ingress), what each component received (by source),
the ledger's table (`liaison ledger`) and the first lines of the naval component's feed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from rich.table import Table

from core import REPO_ROOT
from core import topics as names
from core.readback import caught_up, committed_offsets, end_offsets

PARTNERS = ("RUS", "USA")
LEDGER_GROUP = "liaison-ledger"


def _liaison(*args: str, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "liaison", *args], stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, cwd=REPO_ROOT)


#: the ETA uncertainty deconfliction assumes for a real sortie (5 minutes) and the length of one (2 hours): the
#: demo flies a sortie in seconds of event time, so the buffer shrinks in proportion (else every two routes that
#: cross would conflict whatever their times)
REAL_ETA_BUFFER_S, REAL_SORTIE_S = 300.0, 7200.0


def eta_buffer_s(rate: float, seed: int) -> float:
    """The deconfliction ETA buffer for our simulation at ``rate``: 300 s scaled by its sortie's event time."""
    from producers.simulate.simulator import Simulator

    sortie_s = Simulator({"naval", "air", "intel"}, seed=seed).sortie_seconds(rate)
    return round(max(1.0, REAL_ETA_BUFFER_S * sortie_s / REAL_SORTIE_S), 1)


def start_services(log_dir: Path, policies: Path, say, eta_buffer: float = REAL_ETA_BUFFER_S,
                   metrics_ports: dict[str, int] | None = None) -> dict[str, subprocess.Popen]:
    """The ingress guards (one per partner), the ledger and deconfliction (with ``eta_buffer`` seconds of ETA
    uncertainty); ``metrics_ports``: name (``ingress-RUS``...) -> port of its /metrics, /healthz and /readyz."""
    procs, ports = {}, metrics_ports or {}

    def metrics(name: str) -> list[str]:
        return ["--metrics-port", str(ports[name])] if name in ports else []

    for code in PARTNERS:
        procs[f"ingress-{code}"] = _liaison("ingress", "--partner", code, "--policies", str(policies),
                                            *metrics(f"ingress-{code}"),
                                            log=log_dir / f"ingress-{code.lower()}-demo.log")
    procs["ledger"] = _liaison("ledger", "run", *metrics("ledger"), log=log_dir / "ledger-demo.log")
    procs["deconflict"] = _liaison("deconflict", "--instance", "demo", "--eta-buffer-s", str(eta_buffer),
                                   *metrics("deconflict"), log=log_dir / "deconflict-demo.log")
    for name, p in procs.items():
        say(f"{name}: pid {p.pid}, log {log_dir / (name.lower() + '-demo.log')}")
    return procs


def simulate_partners(rate: float, duration: float, seed: int, log_dir: Path,
                      ours_rate: float) -> dict[str, subprocess.Popen]:
    """Each partner's simulator, as that partner's principal (some of its sorties cross those of our simulator run
    of ``seed`` and ``ours_rate``); its summary goes to its log."""
    # the partners' own seed changes with every run: their message ids are new each time (the guard refuses an id
    # it has seen, and the demo's servers keep what earlier runs sent); the crossings follow our run's seed
    own_seed = str(int(time.time()))
    return {code: _liaison("simulate", "partner", "--partner", code, "--rate", str(rate), "--duration",
                           str(duration), "--seed", own_seed, "--ours-seed", str(seed), "--ours-rate", str(ours_rate),
                           log=log_dir / f"simulate-partner-{code.lower()}-demo.log") for code in PARTNERS}


def inbound_topics() -> list[str]:
    from deploy import topics

    return [t.name for t in topics.load_topics() if t.name.startswith(names.INBOUND_PREFIX)]


def wait_caught_up(procs: dict[str, subprocess.Popen], timeout: float, say) -> None:
    """Until every guard has committed its inbound topics and the deconfliction service the air topics."""
    deadline, done = time.monotonic() + timeout, -1
    pending = {f"liaison-ingress-{c.lower()}": [t for t in inbound_topics() if t.startswith(names.inbound_prefix(c))]
               for c in PARTNERS}
    # the deconfliction service: our air plans and tracks and the partners' (once the guards have let them in)
    air = [names.topic_for(t) for t in ("AirMissionPlan", "AirTrack")]
    pending["liaison-deconflict"] = air + [names.origin_topic(c, t) for c in PARTNERS for t in ("AirMissionPlan",
                                                                                                 "AirTrack")]
    while pending:
        progress = 0
        for group, topic_list in list(pending.items()):
            committed = committed_offsets(group, topic_list)
            progress += sum(committed.values())
            if committed == end_offsets(topic_list) or caught_up(group, topic_list):
                pending.pop(group)
        if progress > done:  # slower on a busy machine, not stuck: the timeout counts from the last progress
            deadline, done = time.monotonic() + timeout, progress
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}; see its log")
        if pending and time.monotonic() > deadline:
            say(f"[yellow]not caught up within {timeout:.0f}s: {', '.join(pending)}[/yellow]")
            return
        if pending:
            time.sleep(0.5)


def wait_ledger(procs: dict[str, subprocess.Popen], timeout: float, say) -> None:
    audits = [names.AUDIT_TOPIC, names.INGRESS_AUDIT_TOPIC]
    deadline, done = time.monotonic() + timeout, -1
    while (committed := committed_offsets(LEDGER_GROUP, audits)) != end_offsets(audits) and not \
            caught_up(LEDGER_GROUP, audits):
        if sum(committed.values()) > done:
            deadline, done = time.monotonic() + timeout, sum(committed.values())
        if procs["ledger"].poll() is not None:
            raise RuntimeError(f"the ledger exited with {procs['ledger'].returncode}; see its log")
        if time.monotonic() > deadline:
            say(f"[yellow]the ledger did not catch up within {timeout:.0f}s[/yellow]")
            return
        time.sleep(0.5)


def stop(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def report(msgs: list, console, sims: dict[str, str]) -> None:
    """Ingress decisions per partner and check, component feeds per source, from the records read back."""
    from confluent_kafka.serialization import MessageField, SerializationContext

    from core import serde

    deser = serde.avro_deserializer()
    ingress = [deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
               for m in msgs if m.topic() == names.INGRESS_AUDIT_TOPIC]
    inbound = Counter(m.topic().split(".")[2].upper() for m in msgs if m.topic().startswith(names.INBOUND_PREFIX))
    t = Table(title="ingress guard (from liaison.audit.ingress): inbound = accepted + quarantined")
    for col in ("partner", "inbound", "accepted", "quarantined", "quarantined by check"):
        t.add_column(col, justify="left" if col in ("partner", "quarantined by check") else "right")
    for code in PARTNERS:
        mine = [a for a in ingress if a["partner"] == code]
        acc = sum(a["decision"] == "ACCEPT" for a in mine)
        by_check = Counter(a["check"] for a in mine if a["decision"] == "QUARANTINE")
        t.add_row(code, str(inbound[code]), str(acc), str(sum(by_check.values())),
                  ", ".join(f"{c} {n}" for c, n in sorted(by_check.items())))
    console.print(t)
    for code, summary in sims.items():
        refused = [line.strip() for line in summary.splitlines() if "refused" in line.lower()]
        if refused:
            console.print(f"    {code} simulator: {refused[-1][:200]}", highlight=False)

    feeds = Counter()
    for m in msgs:
        if m.topic().startswith(names.COMPONENT_PREFIX):
            component, source = names.source_of_recipient_topic(m.topic())
            feeds[(component, source)] += 1
    t = Table(title="component feeds (liaison.component.<name>.*): our records and the partners', need-to-know")
    for col in ("component", "source", "records"):
        t.add_column(col, justify="right" if col == "records" else "left")
    for (component, source), n in sorted(feeds.items()):
        t.add_row(component, source, str(n))
    console.print(t)
    alerts = [deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
              for m in msgs if m.topic() == names.topic_for("DeconflictionAlert")]
    t = Table(title="deconfliction alerts (liaison deconflict): our sorties and tracks against the partners'")
    for col in ("partner", "kind", "NEW", "UPDATED", "CLEARED", "to our air component", "to the partner"):
        t.add_column(col, justify="left" if col in ("partner", "kind") else "right")
    by = Counter((a["partner"], a["kind"], a["status"]) for a in alerts)
    fed = Counter(m.topic() for m in msgs if m.topic().endswith(".deconfliction.alert"))
    for partner, kind in sorted({(p, k) for p, k, _ in by}):
        t.add_row(partner, kind, *(str(by[(partner, kind, s)]) for s in ("NEW", "UPDATED", "CLEARED")),
                  "", "")
    for partner in sorted({p for p, _k, _s in by}):
        t.add_row(partner, "(all)", "", "", "", str(fed[names.recipient_topic("air", "DeconflictionAlert")]),
                  str(fed[names.recipient_topic(partner, "DeconflictionAlert")]))
    console.print(t)
    for a in [a for a in alerts if a["status"] == "NEW"][:3]:
        v, w = a["volume"], a["window"]
        console.print(f"    {a['kind']} {a['partner']}: ours {a['ours']['callsign']} / theirs {a['theirs']['callsign']} "
                      f"within {a['lateral_nm']:.1f} NM, {v['floor_ft']}-{v['ceiling_ft']} ft, around "
                      f"{v['centre']['lat']:.3f},{v['centre']['lon']:.3f} from {w['start']:%H:%M:%S} to "
                      f"{w['end']:%H:%M:%S}", highlight=False)
    usa_leak = sum(1 for m in msgs if m.topic().startswith(names.PARTNER_PREFIX) and ".origin." in m.topic())
    console.print(f"    partner records reaching another partner (third-party rule, default never): {usa_leak}",
                  highlight=False)

"""Helpers of the forwarder's fault suite (tests/faults/test_forwarder_faults.py): the servers of this suite,
stopping a forwarder and keeping its log, the figures of a run, waiting for decisions, paced load, HTTP probes."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from core import settings as settings_mod
from core.readback import end_offsets, read_between
from core.topics import DEADLETTER_TOPIC
from deploy.infra import servers
from producers.publisher import Publisher
from producers.simulate import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from fault_helpers import ALL, by_recipient, recipients  # noqa: E402
from forwarder_helpers import INTERNAL, audit_key, audits, decision_audits  # noqa: E402
from tests.conftest import TEST_PORT_BASE, TEST_REGISTRY_PORT, TEST_STATE  # noqa: E402


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def infra_settings() -> settings_mod.Settings:
    return settings_mod.Settings(state_dir=TEST_STATE, port_base=TEST_PORT_BASE, registry_port=TEST_REGISTRY_PORT,
                                 registry_storage="mem", bootstrap_servers="", schema_registry_url="")


def stop(p, logs=None, timeout=90, name: str = "forwarder") -> str:
    """SIGTERM (SIGKILL after ``timeout``); its log, also kept in <test state>/fault-logs/<name>.log."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except Exception:  # noqa: BLE001 - never leave one running
        p.kill()
        p.wait(10)
    p.stdout.close()
    text = logs.finish() if logs is not None else p.stderr.read()
    kept = Path(TEST_STATE) / "fault-logs" / f"{name}.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(text)
    return text


def figures(name: str, models: dict, msgs) -> dict:
    """Records in, and per partner released / withheld / held / dead-lettered, duplicates, missing."""
    inputs = {(m.topic(), m.partition(), m.offset()) for m in msgs if m.topic() in INTERNAL}
    records = audits(msgs)
    per_key = Counter(audit_key(a) for a in decision_audits(records))
    partners = sorted({a["partner"] for a in records})
    out = {"records in": len(inputs), "dead-letter topic": sum(1 for m in msgs if m.topic() == DEADLETTER_TOPIC)}
    for code in partners:
        mine = Counter(a["decision"] for a in records if a["partner"] == code)
        keys = {k[:3] for k in per_key if k[3] == code}
        out[code] = {"released": mine["RELEASE"] + mine["RELEASED"], "withheld": mine["WITHHOLD"],
                     "held": mine["HELD"] - mine["RELEASED"], "dead-lettered": mine["DEAD_LETTER"],
                     "duplicates": sum(n - 1 for k, n in per_key.items() if k[3] == code and n > 1),
                     "missing": len(inputs - keys)}
    print(f"\n[{name}] " + json.dumps(out))
    return out


def wait_decided(start, n_inputs: int, partners: int | None = None, timeout: float = 240.0, extra=()) -> list:
    """Until every input in the window has one decision audit per recipient (``partners``: those of
    deploy/policies when not given) and the feed topics show every release the audits record (commit markers
    reach partitions on their own); the messages read."""
    partners = recipients() if partners is None else partners
    deadline = time.monotonic() + timeout
    while True:
        msgs = read_between(start, end_offsets(ALL + list(extra)))
        decided = audits(msgs)
        released = sum(a["decision"] in ("RELEASE", "RELEASED") for a in decided)
        partner_records = sum(len(v) for v in by_recipient(msgs).values())
        if len(decision_audits(decided)) >= partners * n_inputs and partner_records >= released:
            return msgs
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(decision_audits(decided))} of {partners * n_inputs} decisions after "
                                 f"{timeout:.0f}s")
        time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def until(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.25)


def paced(components, seconds: float, rate: float, seed: int, pub: Publisher, stop_at=None, into: dict | None = None,
          flush_s: float = 60.0) -> dict:
    """Publish ``rate`` records/s for ``seconds`` of wall time (the load during a fault); returns them by id, and
    keeps them in ``into`` as they go (what was published before a failure stays counted). Each quarter second's
    records are flushed within ``flush_s`` (Publisher.flush raises PublishError for what is still queued)."""
    sent = {} if into is None else into
    sim = Simulator(set(components), seed=seed, start=now())
    models = [m for _, m in sim.events(rate, seconds)]
    t0, chunk = time.monotonic(), max(1, int(rate / 4))
    for i in range(0, len(models), chunk):
        for m in models[i:i + chunk]:
            pub.publish(m)
            sent[str(m.label.message_id)] = m
        pub.flush(flush_s)
        ahead = t0 + (i + chunk) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)  # pacing of the load generator, not a wait for the system under test
    return sent


def kill_server(name: str) -> int:
    """kill -9 one server of this suite by the pid infra.json records; returns once it is gone."""
    data = servers.read_state(Path(TEST_STATE))
    [pid] = [p["pid"] for p in data["processes"] if p["name"] == name]
    os.kill(pid, signal.SIGKILL)
    until(f"{name} (pid {pid}) gone", lambda: not servers.is_ours(pid, Path(TEST_STATE).resolve(), name), 30)
    return pid

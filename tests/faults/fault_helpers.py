"""Shared by the fault suite's tests on the real servers (test_group_faults.py, test_network_faults.py): load
published in the background, the forwarder's stderr, the consumer group as the broker describes it, the
accounting read back with read_committed, and network cuts made with iptables.

The accounting (:func:`figures`, :func:`assert_accounting`, :func:`check_recipient_records`), per recipient
(partners and our components: deploy/policies serves both, each on its own feed topics): released + withheld +
held = input - dead-lettered (from the audit: released = RELEASE + RELEASED, held = HELD - RELEASED); one decision
audit per (input, recipient); every audited release on the recipient's topics exactly once (matched by content
and envelope), so duplicates and missing are counted, not only asserted.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import forwarder_helpers  # noqa: E402
from forwarder_helpers import (COMPONENT_TOPICS, INTERNAL, ORIGIN_TOPICS, POLICIES, ForwarderLog,  # noqa: E402
                               audit_key, audits, canonical, decision_audits, start_forwarder)

from core import kafka, serde  # noqa: E402
from core.readback import committed_offsets, end_offsets, read_between  # noqa: E402
from core.topics import COMPONENT_PREFIX, HOLD_TOPIC, PARTNER_PREFIX, source_of_recipient_topic  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from producers.simulate import Simulator  # noqa: E402
from release import SecretStore, decide, envelope, load_policies  # noqa: E402
from schemas.models import to_avro  # noqa: E402

__all__ = ["ALL", "INTERNAL", "ForwarderLog", "Load", "NetCut", "OwnCluster", "assert_accounting", "by_recipient",
           "check_recipient_records", "committed_offsets", "recipients",
           "done", "end_offsets", "figures", "forwarder_run", "group_assignment", "plain_lines", "read_complete",
           "start_forwarder", "stop_forwarder", "wait_until"]


#: Every topic the forwarder writes or reads, the recipients' feeds of both kinds included: partner topics and our
#: components' topics (deploy/policies has component policies too: naval, air, intel), to read a window back.
ALL = forwarder_helpers.ALL + [t for t in COMPONENT_TOPICS if t not in forwarder_helpers.ALL]


def recipients(policies_dir=POLICIES) -> int:
    """How many recipients (partners and components) the policies of ``policies_dir`` serve: each input gets one
    decision audit per recipient."""
    return len(load_policies(policies_dir, SecretStore()))


def by_recipient(msgs) -> dict[str, list]:
    """The feed records of ``msgs`` per recipient, as the audit names it (a partner's code, a component's name)."""
    out: dict[str, list] = {}
    for m in msgs:
        if m.topic().startswith((PARTNER_PREFIX, COMPONENT_PREFIX)):
            out.setdefault(source_of_recipient_topic(m.topic())[0], []).append(m)
    return out


def check_recipient_records(models: dict, msgs, policies_dir=POLICIES) -> dict[str, Counter]:
    """tests/integration/forwarder_helpers.check_partner_records for every recipient, partners and components:
    every feed record is the pure decision's view of an input whose audit says RELEASE (at once) or RELEASED
    (from the hold), with that release's envelope (key, headers, timestamp): no more, no fewer, no duplicate. An
    input's audit is HELD or RELEASE exactly when decide() releases it, HELD exactly when its envelope was not
    yet due. Returns recipient -> Counter of decisions."""
    policies = load_policies(policies_dir, SecretStore())
    records = audits(msgs)
    want: dict[str, Counter] = {code: Counter() for code in policies}
    decided: dict[str, Counter] = {code: Counter() for code in policies}
    for a in records:
        decided[a["partner"]][a["decision"]] += 1
        if a["decision"] == "DEAD_LETTER":
            continue
        m = models[a["message_id"]]
        name = type(m).__name__
        policy = policies[a["partner"]]
        d = decide(name, to_avro(m), policy)
        if a["decision"] in ("RELEASE", "HELD", "RELEASED"):
            assert d.decision == "RELEASE", (a, d)
            e = envelope(name, d, policy)
            due_at = int(a["due_at"].timestamp() * 1000) if a["due_at"] is not None else None
            decided_at = int(a["decided_at"].timestamp() * 1000)
            if a["decision"] == "RELEASE":
                assert e.due_ms is None or e.due_ms <= decided_at, a
            else:
                assert due_at == e.due_ms and (a["decision"] == "RELEASED") == (decided_at >= e.due_ms), a
            if a["decision"] != "HELD":
                want[a["partner"]][(a["output_topic"], e.key, tuple(e.headers), e.timestamp_ms,
                                    canonical(d.released))] += 1
        else:
            assert d.decision == "WITHHOLD" or a["rule"] == "hold-bound", (a, d)
    deser = serde.avro_deserializer()
    got: dict[str, Counter] = {code: Counter() for code in policies}
    for code, ms in by_recipient(msgs).items():
        for m in ms:
            view = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
            got.setdefault(code, Counter())[(m.topic(), m.key(), tuple(m.headers() or []), m.timestamp()[1],
                                             canonical(view))] += 1
    for code in set(policies) | set(got):
        assert max(want.get(code, Counter()).values(), default=1) == 1, f"{code}: one expected view twice"
        missing, extra = want.get(code, Counter()) - got[code], got[code] - want.get(code, Counter())
        assert not missing and not extra, f"{code}: {sum(missing.values())} missing, {sum(extra.values())} extra " \
                                          f"(or duplicated); e.g. {list(missing)[:1]} {list(extra)[:1]}"
    return decided


@dataclass(frozen=True)
class OwnCluster:
    """Where a fault test's own cluster-shape servers live: a state directory next to the session's
    (``<LIAISON_TEST_STATE>-<tag>``) and ports derived from the session's Kafka port base, so that two fault
    suites with their own LIAISON_TEST_STATE / LIAISON_TEST_PORT_BASE never share (and stop, or kill as strays)
    each other's cluster servers. Slot ``n`` takes base + 10n .. base + 10n + 8: Kafka nodes base + 10n .. + 5
    (client, controller per node), Apicurio base + 10n + 6 (management + 7), the gateway base + 10n + 8.
    The session's single shape uses base, base + 1 only. LIAISON_TEST_<ENV>_PORT_BASE and
    LIAISON_TEST_<ENV>_REGISTRY_PORT override the two (as before). On a busy machine keep the ports outside the
    ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 here): any outgoing connection may hold
    one of those for a while, and `up` then refuses it ("port N (kafka-2 client listener) is already in use",
    seen with base 59092)."""

    state: Path
    port_base: int
    registry_port: int

    @classmethod
    def of(cls, tag: str, env: str, slot: int) -> OwnCluster:
        from tests.conftest import TEST_PORT_BASE, TEST_STATE

        base = TEST_PORT_BASE + 10 * slot
        return cls(Path(f"{Path(TEST_STATE).resolve()}-{tag}"),
                   int(os.environ.get(f"LIAISON_TEST_{env}_PORT_BASE", base)),
                   int(os.environ.get(f"LIAISON_TEST_{env}_REGISTRY_PORT", base + 6)))

    @property
    def ports(self) -> list[int]:
        return ([self.port_base + i for i in range(6)]
                + [self.registry_port, self.registry_port + 1, self.registry_port + 2])

    def settings(self):
        from core import settings as settings_mod

        return settings_mod.Settings(state_dir=self.state, port_base=self.port_base,
                                     registry_port=self.registry_port, registry_gateway_port=self.registry_port + 2,
                                     registry_storage="mem", bootstrap_servers="", schema_registry_url="")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def wait_until(what: str, cond, timeout: float, step: float = 1.0, alive=None):
    """Poll ``cond()`` until it returns something true (returned); fail naming ``what`` after ``timeout`` s, or
    at once when ``alive()`` returns false (a process that should run has exited)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        if alive is not None and not alive():
            raise AssertionError(f"{what}: the process it waits on exited first")
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


# ---------------------------------------------------------------------------------------------- load


class Load:
    """Simulator records published by a background thread at ``rate`` per second (one Publisher, its own
    producers per component), until :meth:`stop` or ``seconds`` worth of records. A cut broker makes the
    producers queue and retry; :meth:`stop` flushes and raises what the Publisher raised (a record not
    delivered)."""

    def __init__(self, seed: int, rate: float = 100.0, seconds: float = 120.0,
                 components=("naval", "air", "intel")):
        self.models = [m for _, m in Simulator(set(components), seed=seed, start=now()).events(rate, seconds)]
        self.rate = rate
        self.sent: dict[str, object] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"load-{seed}")

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with Publisher() as pub:
                t0 = time.monotonic()
                for i, m in enumerate(self.models):
                    delay = t0 + i / self.rate - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    if self._stop.is_set():
                        break
                    pub.publish(m)
                    self.sent[str(m.label.message_id)] = m
        except BaseException as e:  # noqa: BLE001 - handed to the test by stop()
            self.error = e

    def wait_sent(self, n: int, timeout: float = 120.0) -> None:
        wait_until(f"{n} records published", lambda: len(self.sent) >= n or self.error, timeout, step=0.2)
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 180.0) -> dict[str, object]:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the publisher did not flush within {timeout:.0f}s"
        if self.error is not None:
            raise AssertionError(f"publishing failed: {self.error}") from self.error
        return self.sent

    def close(self) -> None:
        """Cleanup: stop publishing (bounded), whatever happened; raises nothing."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)


def publish_now(seed: int, n: int, components=("naval", "air", "intel")) -> dict[str, object]:
    models = [m for _, m in Simulator(set(components), seed=seed, start=now()).events(1000.0, n / 1000.0)]
    with Publisher() as pub:
        for m in models:
            pub.publish(m)
    return {str(m.label.message_id): m for m in models}


# ---------------------------------------------------------------------------------------------- forwarder


def forwarder_run(group: str, instance: str, *extra: str) -> tuple[subprocess.Popen, ForwarderLog]:
    p = start_forwarder(group, instance, *extra)
    return p, ForwarderLog(p)


def stop_forwarder(p: subprocess.Popen, logs: ForwarderLog, timeout: float = 120.0) -> int:
    """SIGTERM (if it still runs), wait for the exit within ``timeout``; the exit code."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(30)
        logs.finish()
        raise AssertionError(f"forwarder pid {p.pid} did not exit within {timeout:.0f}s of SIGTERM:\n"
                             + "".join(logs.lines[-20:]))
    logs.finish()
    if p.stdout:
        p.stdout.close()
    return p.returncode


def kill_quietly(p: subprocess.Popen | None) -> None:
    """Cleanup: SIGKILL a forwarder this test started, if it still runs."""
    if p is not None and p.poll() is None:
        p.kill()
        p.wait(30)


def plain_lines(logs: ForwarderLog) -> list[str]:
    """The forwarder's stderr lines that are neither JSON log events nor librdkafka's own log lines: what it
    says to the operator (an error line, a traceback)."""
    out = []
    for line, event in zip(logs.lines, logs.events):
        if event or not line.strip() or line.startswith("librdkafka "):
            continue
        try:
            json.loads(line)
            continue
        except ValueError:
            out.append(line.rstrip("\n"))
    return out


def event_counts(logs: ForwarderLog, *names: str) -> dict[str, int]:
    return {n: logs.count(n) for n in names}


def json_events(logs: ForwarderLog, event: str) -> list[dict]:
    out = []
    for line, e in zip(logs.lines, logs.events):
        if e == event:
            out.append(json.loads(line))
    return out


# ---------------------------------------------------------------------------------------------- group


def group_assignment(group: str) -> dict[str, set[tuple[str, int]]]:
    """The group's members (group.instance.id, else member id) -> their assigned partitions, as the broker
    describes the group (admin)."""
    admin = kafka.admin()
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    except Exception:  # noqa: BLE001 - a coordinator moving: no answer this time
        return {}
    return {(m.group_instance_id or m.member_id): {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
            for m in desc.members}


def done(group: str, topics: list[str] | None = None) -> bool:
    """The group has committed every internal partition up to its end: every input is forwarded."""
    topics = topics or INTERNAL
    ends = end_offsets(topics)
    got = committed_offsets(group, topics)
    return all(got.get(tp, 0) >= e for tp, e in ends.items())


# ---------------------------------------------------------------------------------------------- accounting


def read_complete(start: dict, n_inputs: int | None = None, timeout: float = 60.0) -> list:
    """The records of every topic from ``start`` to the current (read_committed) end. With ``n_inputs``: read
    again (bounded) until the audit holds a decision for each of them and each partner and the partner topics
    show every audited release (commit markers reach each partition on their own)."""
    deadline = time.monotonic() + timeout
    while True:
        msgs = read_between(start, end_offsets(ALL), timeout=120)
        if n_inputs is None:
            return msgs
        records = audits(msgs)
        released = sum(a["decision"] in ("RELEASE", "RELEASED") for a in records)
        if (len(decision_audits(records)) >= recipients() * n_inputs
                and sum(len(v) for v in by_recipient(msgs).values()) >= released) or time.monotonic() > deadline:
            return msgs
        time.sleep(1.0)


def figures(label: str, sent: dict, msgs: list, only: set | None = None) -> dict:
    """Count, per partner, what the audit and the partner topics (read_committed) hold for the inputs of the
    window (``only``: those input coordinates only, e.g. the inputs a group has committed). Printed; returned."""
    policies = load_policies(POLICIES, SecretStore())
    partners = sorted(policies)
    inputs = {(m.topic(), m.partition(), m.offset()) for m in msgs if m.topic() in INTERNAL}
    if only is not None:
        inputs &= only
    records = [a for a in audits(msgs) if (a["input_topic"], a["input_partition"], a["input_offset"]) in inputs]
    stray = [a for a in audits(msgs) if (a["input_topic"], a["input_partition"], a["input_offset"]) not in inputs
             and a["decision"] != "RELEASED"]
    per_key = Counter(audit_key(a) for a in decision_audits(records))
    deser = serde.avro_deserializer()
    got: dict[str, Counter] = {c: Counter() for c in partners}
    for code, ms in by_recipient(msgs).items():
        for m in ms:
            view = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
            got.setdefault(code, Counter())[(m.topic(), m.key(), tuple(m.headers() or []), m.timestamp()[1],
                                             canonical(view))] += 1
    want: dict[str, Counter] = {c: Counter() for c in partners}
    unknown = 0
    for a in records:
        if a["decision"] not in ("RELEASE", "RELEASED"):
            continue
        m = sent.get(a["message_id"])
        if m is None:
            unknown += 1
            continue
        name, policy = type(m).__name__, policies[a["partner"]]
        d = decide(name, to_avro(m), policy)
        e = envelope(name, d, policy)
        want[a["partner"]][(a["output_topic"], e.key, tuple(e.headers), e.timestamp_ms, canonical(d.released))] += 1
    out = {"label": label, "published": len(sent), "input": len(inputs),
           "audit_duplicates": sum(n - 1 for n in per_key.values()),
           "audit_missing": len(inputs) * len(partners) - len(per_key), "stray_audits": len(stray),
           "unknown_message_ids": unknown, "forwarders": dict(Counter(a["forwarder"] for a in decision_audits(records)
                                                                      if a["partner"] == partners[0])),
           "partners": {}}
    for code in partners:
        mine = Counter(a["decision"] for a in records if a["partner"] == code)
        out["partners"][code] = {
            "released": mine["RELEASE"] + mine["RELEASED"], "withheld": mine["WITHHOLD"],
            "held": mine["HELD"] - mine["RELEASED"], "dead_lettered": mine["DEAD_LETTER"],
            "partner_records": sum(got[code].values()),
            "duplicates": sum((got[code] - want[code]).values()),
            "missing": sum((want[code] - got[code]).values())}
    parts = "; ".join(f"{c}: released {f['released']}, withheld {f['withheld']}, held {f['held']}, dead-lettered "
                      f"{f['dead_lettered']}, partner records {f['partner_records']}, duplicates {f['duplicates']}, "
                      f"missing {f['missing']}" for c, f in out["partners"].items())
    print(f"\n[{label}] records in {out['input']} (published {out['published']}); {parts}; audit duplicates "
          f"{out['audit_duplicates']}, audits missing {out['audit_missing']}; inputs decided per forwarder "
          f"{out['forwarders']}", flush=True)
    return out


def assert_accounting(f: dict, published_all: bool = True) -> None:
    if published_all:
        assert f["input"] == f["published"], f"{f['published']} published but {f['input']} on the internal topics"
    assert f["audit_duplicates"] == 0 and f["audit_missing"] == 0, f
    assert f["stray_audits"] == 0 and f["unknown_message_ids"] == 0, f
    for code, p in f["partners"].items():
        assert p["released"] + p["withheld"] + p["held"] == f["input"] - p["dead_lettered"], (code, f)
        assert p["duplicates"] == 0, f"{code}: {p['duplicates']} duplicate partner record(s): {f}"
        assert p["missing"] == 0, f"{code}: {p['missing']} audited release(s) missing on the partner topics: {f}"


# ---------------------------------------------------------------------------------------------- network cuts


def iptables() -> str:
    path = shutil.which("iptables")
    if path is None:
        pytest.fail("iptables is not installed, and the network fault tests need it to cut a broker off: "
                    "`make test-deps` installs it (apt-get install iptables)", pytrace=False)
    return path


def _ipt(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([iptables(), "-w", "10", *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        pytest.fail(f"iptables {' '.join(args)} failed (exit {r.returncode}; root and CAP_NET_ADMIN are needed): "
                    f"{r.stderr.strip()}", pytrace=False)
    return r


def rules_with(comment: str) -> list[str]:
    """`iptables -S` lines carrying ``comment`` (filter table)."""
    r = _ipt("-S", check=False)
    marks = (f"--comment {comment}", f'--comment "{comment}"')
    return [line for line in r.stdout.splitlines() if any(m in line for m in marks)]


def remove_rules(comment: str) -> int:
    """Delete every filter rule carrying ``comment``; how many were removed."""
    if shutil.which("iptables") is None:
        return 0
    n = 0
    for line in rules_with(comment):
        args = shlex.split(line)
        if args and args[0] == "-A":
            args[0] = "-D"
            if _ipt(*args, check=False).returncode == 0:
                n += 1
    return n


class NetCut:
    """DROP rules cutting the servers' ports off on the loopback interface, every rule carrying ``comment``
    (``liaison-fault-<uuid>``): INPUT on lo to the port, OUTPUT on lo from the port, between loopback
    addresses only. A connection to a cut port hangs (no reset), like a broker behind a broken network."""

    def __init__(self, comment: str):
        self.comment = comment
        self.active: list[list[str]] = []

    def _specs(self, port: int) -> list[list[str]]:
        tail = ["-m", "comment", "--comment", self.comment, "-j", "DROP"]
        return [["INPUT", "-i", "lo", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-p", "tcp", "--dport", str(port),
                 *tail],
                ["OUTPUT", "-o", "lo", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-p", "tcp", "--sport", str(port),
                 *tail]]

    def probe(self) -> None:
        """Fail now (never skip) when iptables is missing or may not change the rules."""
        spec = self._specs(1)[0]
        _ipt("-A", *spec)
        _ipt("-D", *spec)

    def cut(self, ports: list[int]) -> None:
        for port in ports:
            for spec in self._specs(port):
                _ipt("-A", *spec)
                self.active.append(spec)

    def heal(self) -> None:
        while self.active:
            _ipt("-D", *self.active.pop(), check=False)
        remove_rules(self.comment)
        left = rules_with(self.comment)
        assert not left, f"iptables rules left after healing: {left}"


def port_hangs(port: int, timeout: float = 2.0) -> bool:
    """A TCP connect to 127.0.0.1:port neither succeeds nor is refused within ``timeout`` (a cut port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return False
    except socket.timeout:
        return True
    except OSError:
        return False


def port_open(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def hold_and_internal() -> list[str]:
    """Every topic the forwarder's group consumes: the internal topics, the partner-origin ones (subscribed by
    pattern, liaison.origin.*) and the hold."""
    return INTERNAL + ORIGIN_TOPICS + [HOLD_TOPIC]

"""Fault suite on the real servers, cluster shape (3 brokers, replication 3, min.insync.replicas 2): brokers
killed (-9, by their recorded pid) under load, then started again with `servers.up(...)`, which restarts exactly
the dead ones.

Own servers: state directory <LIAISON_TEST_STATE>-cfault (.state/test-cfault by default), ports derived from
LIAISON_TEST_PORT_BASE (fault_helpers.OwnCluster, slot 1): Kafka base+10..base+15, registry base+16 (management
base+17, gateway base+18); LIAISON_TEST_CFAULT_PORT_BASE / LIAISON_TEST_CFAULT_REGISTRY_PORT override; in-memory
registry storage (the fault here is the brokers; a KafkaSQL registry would go down
with them). Every client of this process and the forwarder subprocess are pointed at them for the module.

- (a) one broker (the forwarder group's coordinator) killed while the forwarder has a transaction open, a
  publisher producing simulator records with acks=all meanwhile: with two of three brokers serving, the
  publisher's records are still acknowledged and the forwarder commits a batch within OUTAGE_PROGRESS_S of the
  kill (by itself: a librdkafka call hung on the dead coordinator is given up and its clients rebuilt by its
  supervisor); then the broker is restarted.
- (b) two brokers (the coordinator and one more) killed: no controller quorum, and no partition can reach
  min.insync.replicas. The producers block (nothing produced after the kill is acknowledged until the brokers
  are back) or fail visibly (a delivery error reported for the record); after both are restarted the forwarder
  resumes by itself.

After either: every record the publisher had acknowledged is on the internal topics (once) and audited for
each partner; every published record is either acknowledged or reported failed (none unaccounted for); one
decision audit per (input, partner); per partner released + withheld + held = input - dead-lettered (released =
RELEASE + RELEASED, held = HELD - RELEASED: RUS strike and foreign-fighter reports wait in liaison.hold to the end
of their hour / day and are counted as held, not waited for); the partner topics (read_committed) hold every
audited release exactly once (matched by content and envelope): 0 duplicates, 0 missing; and the forwarder
process started at the beginning is the one still running at the end (its pid unchanged: no manual restart; the
restarts of its own supervisor, `--supervise`, are counted from its log and printed).

Each test prints its figures: records published / acknowledged / failed / in, per partner released, withheld,
held, dead-lettered, duplicates, missing, and the outage (kill -9 until `up` returned).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from forwarder_helpers import (INTERNAL, POLICIES, ForwarderLog, audit_key, audits, canonical,  # noqa: E402
                               decision_audits, fresh_group, header, start_forwarder)

from fault_helpers import ALL, OwnCluster, by_recipient, check_recipient_records, recipients  # noqa: E402

from consumers.forwarder import cli as fwd_cli  # noqa: E402
from consumers.shell import clients as shell_clients  # noqa: E402
from consumers.shell import txn as fwd_txn  # noqa: E402

from core import kafka, serde  # noqa: E402
from core import settings as settings_mod  # noqa: E402
from core.readback import committed_offsets, end_offsets, read_between  # noqa: E402
from deploy.infra import servers  # noqa: E402
from deploy.infra.process import pid_alive  # noqa: E402
from producers.publisher import Publisher, PublishError  # noqa: E402
from producers.simulate import Simulator  # noqa: E402
from release import SecretStore, decide, envelope, load_policies  # noqa: E402
from schemas.models import to_avro  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.cluster, pytest.mark.integration]

OWN = OwnCluster.of("cfault", "CFAULT", slot=1)
STATE, PORT_BASE, REGISTRY_PORT = OWN.state, OWN.port_base, OWN.registry_port
RATE = 100.0  # records per second published
#: (a) how long after the kill the forwarder must have committed a batch while one broker of three is dead, each
#: term a bound of its own: the open batch's records are delivered once the dead leader's partitions have moved
#: (the broker session timeout, 9 s), else the batch is given up at TRANSACTION_BOUND_S; the send_offsets (or abort)
#: that then hangs on the dead coordinator is given up by the watchdog (CALL_TIMEOUT_S + GRACE_S); the clients are
#: closed (CONSUMER_CLOSE_S), the supervisor restarts after RESTART_BACKOFF_S; the new forwarder starts (measured in
#: the run, added there) and commits its first transaction within TRANSACTION_BOUND_S. Was 90 s: measured 103 s
#: under load (flush 46 s, send_offsets hung 45 s, start 8 s, first commit 5 s).
OUTAGE_PROGRESS_S = (fwd_txn.TRANSACTION_BOUND_S + fwd_txn.CALL_TIMEOUT_S + fwd_txn.GRACE_S
                     + shell_clients.CONSUMER_CLOSE_S + fwd_cli.RESTART_BACKOFF_S + fwd_txn.TRANSACTION_BOUND_S)
#: each test's pytest timeout; the publisher's records last as long (it is stopped by the test, never runs out first:
#: 170 s of records ran out before `up` returned under load, and nothing was acknowledged after it)
TEST_TIMEOUT_S = 720
#: (b) how long after `up` returned (every broker back) the forwarder may take to commit a batch, each term a bound
#: of its own: a transactional call hung on the coordinator that was gone (librdkafka#5456, #5511), or the abort of a
#: batch whose transaction bound passed during the outage, is given up by the watchdog (CALL_TIMEOUT_S + GRACE_S);
#: its clients are closed (CONSUMER_CLOSE_S); the supervisor waits its backoff (at most RESTART_BACKOFF_CAP_S:
#: restarts during the outage doubled it); the new forwarder starts (as long as its first start took in this run,
#: measured) and its init_transactions, which fences the old producer, takes at most INIT_TRANSACTIONS_S; its
#: first transaction at most TRANSACTION_BOUND_S. Measured here (2 cores): 7 s (the static consumer fenced after its
#: session timed out: restarted at once) to 49 s (send_offsets_to_transaction hung until the watchdog) after `up`.
RESUME_AFTER_UP_S = (fwd_txn.CALL_TIMEOUT_S + fwd_txn.GRACE_S + shell_clients.CONSUMER_CLOSE_S
                     + fwd_cli.RESTART_BACKOFF_CAP_S + shell_clients.INIT_TRANSACTIONS_S + fwd_txn.TRANSACTION_BOUND_S)
EVENTS = ("batch committed", "kafka client error", "transaction aborted, batch will be reprocessed",
          "transaction call retried", "transaction abort retried", "forwarder restarting")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _settings() -> settings_mod.Settings:
    return OWN.settings()


def _quiet(*_a, **_k) -> None:
    return None


def wait_until(what: str, cond, timeout: float, step: float = 0.5, alive=None):
    """Poll ``cond()`` until it returns something true (returned); fail naming ``what`` after ``timeout`` s, or
    at once when ``alive()`` says the process it waits on has exited."""
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


@pytest.fixture(scope="module")
def cluster():
    """The cluster shape started in its own state directory and ports, topics applied, schemas registered, the
    partners' keys made in it; every client pointed at it for the module; stopped afterwards (nothing left)."""
    from deploy import governance, topics

    s = _settings()
    saved = dict(os.environ)
    try:  # servers an interrupted run left are kept, its dead ones started: `up` converges
        t0 = time.monotonic()
        data = servers.up(s, "cluster", "mem", log=_quiet)
        print(f"\n[cluster] up in {time.monotonic() - t0:.1f}s at {data['bootstrap_servers']}", flush=True)
        os.environ.update(servers.client_env(data))
        os.environ["LIAISON_STATE_DIR"] = str(STATE)  # the forwarder's schema cache, the partners' keys
        settings_mod.get_settings.cache_clear()
        topics.apply_topics(topics.load_topics())
        governance.register_all()
        SecretStore().ensure("RUS"), SecretStore().ensure("USA")
        yield s
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings_mod.get_settings.cache_clear()
        servers.down(s, log=_quiet)
        left = [p for p in servers.stray_pids(STATE.resolve()) if pid_alive(p)]
        assert left == [], f"servers of {STATE} still running: {left}"


# ---------------------------------------------------------------------------------------------- servers


def _pids(s) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in servers.read_state(Path(s.state_dir).resolve())["processes"]}


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(n for n in before if before[n] != after.get(n))


def _kill9(*pids: int) -> float:
    """kill -9 the pids, wait until they are gone; the wall-clock time of the kill."""
    t = time.time()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_until(f"{pids} gone after SIGKILL", lambda: not any(pid_alive(p) for p in pids), 10, step=0.02)
    return t


def _coordinator(group: str) -> int:
    """The node id of the group's coordinator, as the cluster answers (admin)."""
    admin = kafka.admin()  # kept referenced until the answer: a collected client never resolves its futures

    def ask():
        try:
            desc = admin.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
            return desc.coordinator.id + 1  # +1: node 0 would read as "no answer"
        except Exception:  # noqa: BLE001 - a coordinator still loading: ask again
            return None
    return wait_until(f"the coordinator of {group}", ask, 60, step=1.0) - 1


# ---------------------------------------------------------------------------------------------- load


class _Tracked:
    """A Producer whose delivery reports also tell the load, per message id, acknowledged or failed (and when)."""

    def __init__(self, inner, load: Load):
        self._inner, self._load = inner, load

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None, **kw):
        mid = dict(headers or [])["message_id"].decode()
        load = self._load

        def cb(err, msg):
            if on_delivery is not None:
                on_delivery(err, msg)
            load.report(mid, err)

        self._inner.produce(topic, value=value, key=key, headers=headers, on_delivery=cb, **kw)
        load.produced(mid)
        self._inner.poll(0)  # serve delivery reports as they come: acknowledgement times stay close

    def __getattr__(self, name):
        return getattr(self._inner, name)


class Load:
    """Simulator records published at RATE per second by a background thread through one Publisher (acks=all,
    idempotent, a producer per component principal), every delivery report kept per message id: acknowledged
    (with its time) or failed (with the error). stop() flushes and keeps what flush() raised."""

    def __init__(self, seed: int, seconds: float = TEST_TIMEOUT_S):
        self._events = Simulator({"naval", "air", "intel"}, seed=seed, start=_now()).events(RATE, seconds)
        self.published: dict[str, object] = {}  # message id -> model
        self.produced_at: dict[str, float] = {}
        self.acked: dict[str, float] = {}  # message id -> time.time() of its acknowledgement
        self.failed: dict[str, str] = {}  # message id -> delivery error
        self.errors: list[str] = []  # what the Publisher raised (publish or flush)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.pub = Publisher(producer_factory=lambda conf, who: _Tracked(kafka.producer(conf, principal=who), self))
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"load-{seed}")

    def produced(self, mid: str) -> None:
        with self._lock:
            self.produced_at[mid] = time.time()

    def report(self, mid: str, err) -> None:
        with self._lock:
            if err is None:
                self.acked[mid] = time.time()
            else:
                self.failed[mid] = str(err)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            for i, (_t, m) in enumerate(self._events):
                delay = t0 + i / RATE - time.monotonic()
                if (delay > 0 and self._stop.wait(delay)) or self._stop.is_set():
                    break
                self.published[str(m.label.message_id)] = m
                self.pub.publish(m)
        except Exception as e:  # noqa: BLE001 - a visible failure: counted and reported by the test
            self.errors.append(f"publish: {e}")
        try:
            self.pub.flush(180.0)
        except PublishError as e:
            self.errors.append(f"flush: {e}")

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return len(self.published), len(self.acked), len(self.failed)

    def acked_after(self, t: float) -> int:
        with self._lock:
            return sum(1 for a in self.acked.values() if a >= t)

    def wait_acked(self, n: int, after: float, timeout: float) -> None:
        wait_until(f"{n} record(s) acknowledged", lambda: self.acked_after(after) >= n or not self._thread.is_alive(),
                   timeout, step=0.2)
        assert self.acked_after(after) >= n, f"the publisher stopped: {self.errors}"

    def stop(self, timeout: float = 240.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the publisher did not flush within {timeout:.0f}s"

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(200)


# ---------------------------------------------------------------------------------------------- forwarder


def _event_times(logs: ForwarderLog, event: str) -> list[float]:
    """Wall-clock times (the log's own ISO timestamps) of each `event` line."""
    out = []
    for line, e in zip(list(logs.lines), list(logs.events)):
        if e == event:
            ts = json.loads(line).get("timestamp")
            if ts:
                out.append(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
    return out


def _restarts(logs: ForwarderLog) -> list[str]:
    return [line.strip() for line, e in zip(logs.lines, logs.events) if e == "forwarder restarting"]


def _stop(p, logs: ForwarderLog, timeout: float = 60.0) -> int | None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except Exception:  # noqa: BLE001 - never leave one running; reported by the exit-code assertion
        p.kill()
        p.wait(30)
        logs.finish()
        return None
    logs.finish()
    p.stdout.close()
    return p.returncode


def _done(group: str) -> bool:
    """The group committed every internal partition up to its (read_committed) end: every input forwarded."""
    try:
        ends = end_offsets(INTERNAL)
        got = committed_offsets(group, INTERNAL)
    except Exception:  # noqa: BLE001 - a broker still settling: ask again
        return False
    return all(got.get(tp, 0) >= e for tp, e in ends.items())


# ---------------------------------------------------------------------------------------------- accounting


def _read_complete(start: dict, n_inputs: int, timeout: float = 120.0) -> list:
    """Everything from ``start`` to the read_committed end; read again (bounded) until the audit holds a decision
    per input and partner and the partner topics show every audited release (markers land per partition)."""
    deadline = time.monotonic() + timeout
    while True:
        msgs = read_between(start, end_offsets(ALL), timeout=120)
        records = audits(msgs)
        released = sum(a["decision"] in ("RELEASE", "RELEASED") for a in records)
        if (len(decision_audits(records)) >= recipients() * n_inputs and
                sum(len(v) for v in by_recipient(msgs).values()) >= released) or time.monotonic() > deadline:
            return msgs
        time.sleep(1.0)


def _figures(label: str, load: Load, msgs: list, **extra) -> dict:
    policies = load_policies(POLICIES, SecretStore())
    partners = sorted(policies)
    inputs = [m for m in msgs if m.topic() in INTERNAL]
    on_topic = Counter(header(m, "message_id") for m in inputs)
    records = audits(msgs)
    per_key = Counter(audit_key(a) for a in decision_audits(records))
    coords = {(m.topic(), m.partition(), m.offset()) for m in inputs}
    audited: dict[str, set] = {c: set() for c in partners}
    for a in decision_audits(records):
        audited[a["partner"]].add(a["message_id"])
    deser = serde.avro_deserializer()
    got: dict[str, Counter] = {c: Counter() for c in partners}
    for code, ms in by_recipient(msgs).items():
        for m in ms:
            view = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
            got[code][(m.topic(), m.key(), tuple(m.headers() or []), m.timestamp()[1], canonical(view))] += 1
    want: dict[str, Counter] = {c: Counter() for c in partners}
    for a in records:
        if a["decision"] in ("RELEASE", "RELEASED"):
            m = load.published[a["message_id"]]
            name, policy = type(m).__name__, policies[a["partner"]]
            d = decide(name, to_avro(m), policy)
            e = envelope(name, d, policy)
            want[a["partner"]][(a["output_topic"], e.key, tuple(e.headers), e.timestamp_ms,
                                canonical(d.released))] += 1
    acked, failed = set(load.acked), set(load.failed)
    f = {"published": len(load.published), "acknowledged": len(acked), "failed": len(failed),
         "unaccounted": len(set(load.published) - acked - failed), "input": len(inputs),
         "lost": len(acked - set(on_topic)), "internal_duplicates": sum(n - 1 for n in on_topic.values()),
         "not_published": len(set(on_topic) - set(load.published)),
         "audit_duplicates": sum(n - 1 for n in per_key.values()),
         "audits_missing": len(coords) * len(partners) - len({k for k in per_key if k[:3] in coords}),
         "stray_audits": sum(1 for k in per_key if k[:3] not in coords),
         "acked_not_audited": {c: len(acked - audited[c]) for c in partners}, "partners": {}, **extra}
    for code in partners:
        mine = Counter(a["decision"] for a in records if a["partner"] == code)
        f["partners"][code] = {"released": mine["RELEASE"] + mine["RELEASED"], "withheld": mine["WITHHOLD"],
                               "held": mine["HELD"] - mine["RELEASED"], "dead_lettered": mine["DEAD_LETTER"],
                               "partner_records": sum(got[code].values()),
                               "duplicates": sum((got[code] - want[code]).values()),
                               "missing": sum((want[code] - got[code]).values())}
    print(f"\n[{label}] " + json.dumps(f), flush=True)
    return f


def _assert_accounting(f: dict) -> None:
    assert f["unaccounted"] == 0, f"{f['unaccounted']} published record(s) neither acknowledged nor failed: {f}"
    assert f["lost"] == 0, f"{f['lost']} acknowledged record(s) not on the internal topics: {f}"
    assert f["internal_duplicates"] == 0 and f["not_published"] == 0, f
    assert all(n == 0 for n in f["acked_not_audited"].values()), f"acknowledged but not audited: {f}"
    assert f["audit_duplicates"] == 0 and f["audits_missing"] == 0 and f["stray_audits"] == 0, f
    for code, p in f["partners"].items():
        assert p["released"] + p["withheld"] + p["held"] == f["input"] - p["dead_lettered"], (code, f)
        assert p["duplicates"] == 0, f"{code}: {p['duplicates']} duplicate partner record(s): {f}"
        assert p["missing"] == 0, f"{code}: {p['missing']} audited release(s) missing on the partner topics: {f}"


# ---------------------------------------------------------------------------------------------- the scenario


def _brokers_killed_under_load(s, label: str, how_many: int, seed: int) -> None:
    # every server runs and is healthy before the fault (a test that failed half-way may have left one dead)
    servers.up(s, log=_quiet)
    group, _ = fresh_group()
    instance = f"cf-{uuid.uuid4().hex[:6]}"
    start = end_offsets(ALL)
    load = Load(seed)
    p = logs = None
    victims: list[str] = []
    try:
        spawned = time.monotonic()
        p = start_forwarder(group, instance, "--supervise")
        logs = ForwarderLog(p)
        pid = p.pid
        alive = lambda: p.poll() is None  # noqa: E731
        logs.wait_for("forwarder started", timeout=120)
        start_s = time.monotonic() - spawned  # a start of the forwarder on this machine now (its restart: the same)
        load.start()
        logs.wait_for("batch committed", 3, timeout=120)
        coordinator = _coordinator(group)
        before = _pids(s)
        others = sorted(n for n in before if n.startswith("kafka-") and n != f"kafka-{coordinator}")
        victims = [f"kafka-{coordinator}"] + others[:how_many - 1]
        # kill while the forwarder has a transaction open (logged "batch begun", not yet "batch committed")
        logs.wait_for("batch begun", logs.count("batch begun") + 1, timeout=60)
        killed_at = _kill9(*(before[v] for v in victims))
        in_txn = [e for e in logs.events if e in ("batch begun", "batch committed")][-1:] == ["batch begun"]
        committed_at_kill = logs.count("batch committed")
        print(f"\n[{label}] killed {victims} (group coordinator: kafka-{coordinator}), forwarder inside a "
              f"transaction: {in_txn}", flush=True)
        committed_while_dead = None
        if how_many == 1:
            # two of three brokers serve: acks=all goes on once the dead leader's partitions have moved
            load.wait_acked(200, after=killed_at, timeout=90)
            # and so should the forwarder; observed here (bounded), asserted at the end, after the accounting
            try:
                wait_until("a forwarder batch committed with one broker dead",
                           lambda: logs.count("batch committed") > committed_at_kill,
                           max(1.0, killed_at + OUTAGE_PROGRESS_S + start_s - time.time()), alive=alive)
                committed_while_dead = True
            except AssertionError:
                if not alive():
                    raise
                committed_while_dead = False
        else:
            # no quorum, below min.insync.replicas everywhere: publishing goes on (queued) for 500 records
            n0 = load.counts()[0]
            wait_until("500 records published after the kill", lambda: load.counts()[0] >= n0 + 500, 60, step=0.2)
            with load._lock:
                after_kill = {m for m, t in load.produced_at.items() if t >= killed_at + 0.5}
                acked_during = sorted(m for m in after_kill if m in load.acked)
                failed_during = {m: load.failed[m] for m in after_kill if m in load.failed}
                pending = len(after_kill) - len(acked_during) - len(failed_during)
            print(f"[{label}] with {victims} dead: {len(after_kill)} record(s) produced, {len(acked_during)} "
                  f"acknowledged, {len(failed_during)} failed visibly, {pending} waiting (blocked); forwarder "
                  f"batches committed meanwhile: {logs.count('batch committed') - committed_at_kill}", flush=True)
            assert acked_during == [], "records acknowledged with two brokers of three dead (below min.insync.replicas)"
            assert pending + len(failed_during) == len(after_kill) > 0
        up_at = time.time()
        servers.up(s, log=_quiet)  # starts exactly the dead ones
        returned = time.time()
        after = _pids(s)
        assert _changed(before, after) == sorted(victims), (before, after)
        outage = returned - killed_at
        load.wait_acked(300, after=returned, timeout=120)
        wait_until(f"a forwarder batch committed after the restart (bound: {RESUME_AFTER_UP_S:.0f} s + a start, "
                   f"{start_s:.1f} s, after up returned)",
                   lambda: any(t >= up_at for t in _event_times(logs, "batch committed")),
                   max(1.0, returned + RESUME_AFTER_UP_S + start_s - time.time()), alive=alive)
        load.stop()
        wait_until("every input forwarded (the group committed the internal topics to their end)",
                   lambda: _done(group), 180, step=2.0, alive=alive)
        forwarded_at = time.time()
        still_running = p.poll() is None
        rc = _stop(p, logs)
    except BaseException:
        if logs is not None:
            print(f"[{label}] the forwarder's last log lines:\n" + "".join(logs.lines[-40:]), flush=True)
        raise
    finally:
        load.close()
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(30)
        if logs is not None:  # kept for reading afterwards: <state>/fault-logs/<instance>.log
            kept = STATE / "fault-logs" / f"{instance}.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text("".join(logs.lines))
            print(f"[{label}] the forwarder's log: {kept}", flush=True)
        if victims and not all(r["alive"] for r in servers.status(s)):
            try:
                servers.up(s, log=_quiet)  # the next test starts with every broker
            except Exception as e:  # noqa: BLE001 - the test's own failure is the one to report
                print(f"[{label}] cleanup: up failed: {e}", flush=True)
    after_kill = [t for t in _event_times(logs, "batch committed") if t >= killed_at]
    resumed = min((t for t in after_kill if t >= up_at), default=None)
    events = {e: logs.count(e) for e in EVENTS}
    print(f"[{label}] outage (kill -9 until up returned) {outage:.1f}s (up {returned - up_at:.1f}s); first batch "
          f"committed after the kill {after_kill[0] - killed_at if after_kill else float('nan'):.1f}s after it, "
          f"after the restart {resumed - up_at if resumed else float('nan'):.1f}s after up began; every input "
          f"forwarded {forwarded_at - killed_at:.1f}s after the kill; forwarder pid {pid} ran throughout: "
          f"{still_running}, exit {rc}; events {events}; publisher errors {[e[:300] for e in load.errors]}",
          flush=True)
    for line in _restarts(logs):
        print(f"[{label}] supervisor: {line}")
    msgs = _read_complete(start, len(load.published))
    published, acked, failed = load.counts()
    f = _figures(label, load, msgs, outage_s=round(outage, 1), restarts_by_supervisor=events["forwarder restarting"],
                 batches_committed_with_brokers_dead=sum(1 for t in after_kill if t < up_at),
                 first_commit_s_after_kill=round(after_kill[0] - killed_at, 1) if after_kill else None,
                 forwarder_resumed_s_after_up_began=round(resumed - up_at, 1) if resumed else None)
    assert still_running, "the forwarder exited:\n" + "".join(logs.lines[-30:])
    assert rc == 0, "".join(logs.lines[-30:])
    if how_many == 1:
        assert load.errors == [] and failed == 0, f"delivery failures with two of three brokers up: {load.errors}"
    _assert_accounting(f)
    check_recipient_records(load.published, msgs)
    if how_many == 1:
        assert committed_while_dead, (
            f"the forwarder committed no batch in the {OUTAGE_PROGRESS_S + start_s:.0f}s after kafka-{coordinator} "
            f"(its group's coordinator) was killed, with two of three brokers serving (the publisher got "
            f"{load.acked_after(killed_at)} acknowledgements after the kill); it went on only once the broker "
            f"was back: {f}")


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_a_one_broker_killed_under_load_then_restarted_nothing_lost_nothing_duplicated(cluster):
    _brokers_killed_under_load(cluster, "cluster: one broker kill -9 under load, up", 1, seed=5501)


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_b_two_brokers_killed_producers_block_or_fail_visibly_then_the_forwarder_resumes(cluster):
    _brokers_killed_under_load(cluster, "cluster: two brokers kill -9 under load, up", 2, seed=5502)

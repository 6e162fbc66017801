"""Fault suite on the real servers: the forwarder's consumer group and its transactions under process faults.

- Two forwarder instances (different --instance) in one group share the partitions; kill -9 one under load:
  the other takes its partitions over (after the static member's session timeout, and once the killed
  instance's open transaction is aborted by the coordinator), 0 duplicates, 0 missing.
- Two processes with the same instance id: the second fences the first, which exits 3 with one line on stderr
  (and, under --supervise as in production, is not restarted to fence the newer back); nothing duplicated or
  missing.
- SIGTERM right after "batch begun" (before "batch committed"): exit 0, the batch committed or aborted whole
  (read_committed: the audit and the partner topics hold exactly the inputs below the group's committed
  offsets), then a restart forwards the rest: 0 duplicates, 0 missing.

Each test prints its figures (records in, per partner released / withheld / held / dead-lettered, duplicates,
missing). Run with own servers, e.g. LIAISON_TEST_STATE=.state/test-gfault LIAISON_TEST_PORT_BASE=53092
LIAISON_TEST_REGISTRY_PORT=53081 .venv/bin/pytest -m faults tests/faults/test_group_faults.py
"""

from __future__ import annotations

import signal
import uuid

import pytest

from fault_helpers import (ALL, Load, assert_accounting, check_recipient_records, committed_offsets, done, end_offsets,
                           event_counts, figures, forwarder_run, group_assignment, hold_and_internal, json_events,
                           kill_quietly, plain_lines, publish_now, read_complete, recipients, stop_forwarder,
                           wait_until)
from forwarder_helpers import INTERNAL, audits, decision_audits, fresh_group
from core.readback import read_between

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _tag() -> str:
    return uuid.uuid4().hex[:6]


def test_two_instances_share_the_group_and_a_killed_one_hands_its_partitions_over(bus):
    group, _ = fresh_group()
    tag = _tag()
    a, b = f"gf-{tag}-a", f"gf-{tag}-b"
    a_tid, b_tid = f"liaison-forwarder-{a}", f"liaison-forwarder-{b}"
    everything = set(end_offsets(hold_and_internal()))
    start = end_offsets(ALL)
    load = Load(seed=4101, rate=100.0, seconds=100.0)
    pa = pb = None
    try:
        pa, la = forwarder_run(group, a, "--supervise")
        pb, lb = forwarder_run(group, b, "--supervise")
        la.wait_for("forwarder started", timeout=120)
        lb.wait_for("forwarder started", timeout=120)
        load.start()
        both_alive = lambda: pa.poll() is None and pb.poll() is None  # noqa: E731

        def shared():
            g = group_assignment(group)
            return g if set(g) == {a_tid, b_tid} and all(g.values()) and set().union(*g.values()) == everything \
                else None

        shares = wait_until("both instances assigned partitions (group description)", shared, 120, alive=both_alive)
        assert not shares[a_tid] & shares[b_tid]
        print(f"\nassigned: {a_tid} {len(shares[a_tid])} partition(s), {b_tid} {len(shares[b_tid])} partition(s) "
              f"of {len(everything)}")
        la.wait_for("batch committed", timeout=120)
        lb.wait_for("batch committed", timeout=120)
        # kill -9 B right after it began a transaction, records still coming in
        n = lb.count("batch begun") + 1
        lb.wait_for("batch begun", n, timeout=120)
        pb.send_signal(signal.SIGKILL)
        pb.wait(30)
        lb.finish()
        in_txn = [e for e in lb.events if e in ("batch begun", "batch committed")][-1:] == ["batch begun"]
        b_batches = lb.count("batch committed")
        load.wait_sent(len(load.sent) + 500, timeout=60)
        sent = load.stop()

        def took_over():
            g = group_assignment(group)
            return set(g) == {a_tid} and g[a_tid] == everything

        wait_until(f"{a_tid} holds every partition after {b_tid} was killed", took_over, 120,
                   alive=lambda: pa.poll() is None)
        wait_until("every input forwarded (the group committed the internal topics to their end)",
                   lambda: done(group), 180, step=2.0, alive=lambda: pa.poll() is None)
        rc = stop_forwarder(pa, la)
    finally:
        load.close()
        kill_quietly(pa), kill_quietly(pb)
    print(f"killed {b_tid} after {b_batches} committed batch(es), inside a transaction: {in_txn}; {a_tid} events "
          f"{event_counts(la, 'batch committed', 'transaction aborted', 'kafka client error', 'forwarder restarting')}"
          f", exit {rc}")
    msgs = read_complete(start, len(sent))
    f = figures("two instances, kill -9 one under load", sent, msgs)
    assert rc == 0, "".join(la.lines[-20:])
    assert_accounting(f)
    check_recipient_records(sent, msgs)
    assert set(f["forwarders"]) == {a_tid, b_tid}, f["forwarders"]  # both forwarded inputs


def test_a_second_process_with_the_same_instance_fences_the_first(bus):
    group, _ = fresh_group()
    name = f"gf-{_tag()}-x"
    tid = f"liaison-forwarder-{name}"
    start = end_offsets(ALL)
    load = Load(seed=4202, rate=100.0, seconds=100.0)
    p1 = p2 = None
    try:
        # both under --supervise, as in production (deploy/systemd/liaison-forward@.service)
        p1, l1 = forwarder_run(group, name, "--supervise")
        l1.wait_for("forwarder started", timeout=120)
        load.start()
        l1.wait_for("batch committed", 2, timeout=120)
        p2, l2 = forwarder_run(group, name, "--supervise")
        try:
            rc1 = p1.wait(120)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: reported by the assertion below
            rc1 = None
        l1.finish()
        l2.wait_for("batch committed", timeout=120)
        load.wait_sent(len(load.sent) + 300, timeout=60)
        sent = load.stop()
        wait_until("every input forwarded by the newer process", lambda: done(group), 180, step=2.0,
                   alive=lambda: p2.poll() is None)
        rc2 = stop_forwarder(p2, l2)
    finally:
        load.close()
        kill_quietly(p1), kill_quietly(p2)
    lines = plain_lines(l1)
    print(f"\nolder process: exit {rc1}, its lines on stderr besides the JSON events: {lines}; events "
          f"{event_counts(l1, 'batch committed', 'kafka client error', 'forwarder restarting')}; newer: exit {rc2}, "
          f"events {event_counts(l2, 'batch committed', 'kafka client error', 'forwarder restarting')}")
    msgs = read_complete(start, len(sent))
    f = figures("same instance id twice", sent, msgs)
    assert rc1 == 3, f"the older process did not exit 3 (fenced) within 120 s: {rc1}\n" + "".join(l1.lines[-60:])
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: forwarder {tid} fenced by another instance with the same transactional.id"), \
        lines
    assert "Traceback" not in "".join(l1.lines)
    assert l1.count("forwarder restarting") == 0, "the fenced process restarted (and would fence the newer back)"
    assert l2.count("forwarder restarting") == 0, "".join(l2.lines[-20:])
    assert rc2 == 0, "".join(l2.lines[-20:])
    assert_accounting(f)
    check_recipient_records(sent, msgs)


def _inputs_below(msgs, committed: dict) -> set:
    return {(m.topic(), m.partition(), m.offset()) for m in msgs
            if m.topic() in INTERNAL and m.offset() < committed.get((m.topic(), m.partition()), 0)}


def test_sigterm_during_a_batch_commits_or_aborts_it_whole_then_a_restart_completes_it(bus):
    group, _ = fresh_group()
    name = f"gf-{_tag()}-t"
    start = end_offsets(ALL)
    sent = publish_now(seed=4303, n=6000)
    committed_records = 0  # the records of every batch a "batch committed" line reported, over the attempts
    landed = []
    for attempt in range(1, 4):
        p, logs = forwarder_run(group, name)
        try:
            logs.wait_for("forwarder started", timeout=120)
            n = logs.count("batch begun") + 1
            logs.wait_for("batch begun", n, timeout=120)
            p.send_signal(signal.SIGTERM)
            begun_at, committed_at = logs.count("batch begun"), logs.count("batch committed")
            rc = stop_forwarder(p, logs, timeout=180)
        finally:
            kill_quietly(p)
        inside = committed_at < begun_at  # the signal came before the batch's commit was logged
        batch = json_events(logs, "batch begun")[-1]
        commits = json_events(logs, "batch committed")
        whole = len(commits) == logs.count("batch begun")  # the signalled batch's commit logged after the signal
        outcome = "committed whole" if whole else "aborted" if logs.count("transaction aborted") else "not committed"
        committed_records += sum(c["records"] for c in commits)
        # read_committed: the audit and the partner topics hold exactly the inputs below the committed offsets
        offsets = committed_offsets(group, INTERNAL)
        msgs = read_between(start, end_offsets(ALL), timeout=120)
        below = _inputs_below(msgs, offsets)
        f = figures(f"SIGTERM attempt {attempt}: during batch {begun_at} ({batch['records']} records) -> {outcome}, "
                    f"exit {rc}", sent, msgs, only=below)
        assert rc == 0, "".join(logs.lines[-20:])
        assert_accounting(f, published_all=False)
        assert len(below) == committed_records, (len(below), committed_records)
        if inside and whole:
            # the signalled batch's inputs (one decision time) are all there, every partner's decision of each
            records = decision_audits(audits(msgs))
            last = max(a["decided_at"] for a in records)
            in_batch = {(a["input_topic"], a["input_partition"], a["input_offset"]) for a in records
                        if a["decided_at"] == last}
            assert len(in_batch) == batch["records"] == commits[-1]["records"], (len(in_batch), batch, commits[-1])
            assert sum(a["decided_at"] == last for a in records) == recipients() * batch["records"]
        landed.append(inside)
        if inside:
            break
    assert any(landed), "no SIGTERM landed between a batch's begin and its commit in 3 attempts"
    # a restart forwards the rest
    p, logs = forwarder_run(group, name, "--max-idle", "5")
    try:
        rc = p.wait(240)
    finally:
        kill_quietly(p)
    logs.finish()
    assert rc == 0, "".join(logs.lines[-20:])
    msgs = read_complete(start, len(sent))
    f = figures("SIGTERM during a batch, then a restart", sent, msgs)
    assert_accounting(f)
    check_recipient_records(sent, msgs)

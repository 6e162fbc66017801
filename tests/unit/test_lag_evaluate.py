"""operations.lag.evaluate on synthetic windows: figures, every status, aggregation, edge cases."""

from __future__ import annotations

import json

import pytest

from operations.lag.evaluate import (ERROR, NO_COMMIT, OK, STALLED, STOPPED, WARNING, Thresholds, evaluate,
                                  lag_records, lag_seconds)
from operations.lag.model import (LOOKUP_EMPTY, LOOKUP_FOUND, LOOKUP_SKIPPED, LOOKUP_UNKNOWN, GroupObs, PartitionObs,
                               Snapshot)

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0  # epoch seconds of the first synthetic poll
TOPIC = "liaison.internal.air.track"


def part(committed, end, p=0, topic=TOPIC, age=None, t=None, lookup=None, first=None, hwm=None, error=None):
    """A partition observation; `age` seconds = how old the record at the committed offset is at time t."""
    ts = None
    if age is not None:
        lookup = lookup or LOOKUP_FOUND
        first = committed if first is None else first
        ts = int((t - age) * 1000)
    if lookup is None:
        lookup = LOOKUP_SKIPPED if committed is None or end is None or end <= committed else LOOKUP_UNKNOWN
    return PartitionObs(topic, p, committed, end, hwm if hwm is not None else end, lookup, first, ts, error)


def snap(i, *groups, interval=5.0, error=None):
    """Poll number i (taken at T0 + i*interval) with the given GroupObs."""
    return Snapshot(T0 + i * interval, {g.group: g for g in groups}, error, 0.1)


def group(name, parts, members=1, state="STABLE", error=None):
    return GroupObs(name, state, members, {(p.topic, p.partition): p for p in parts}, error)


def series(points, members=1, name="g", interval=5.0):
    """A window from [(committed, end), ...] (or (committed, end, age_s)) for one partition."""
    out = []
    for i, pt in enumerate(points):
        c, e, *rest = pt
        t = T0 + i * interval
        age = rest[0] if rest else (1.0 if e is not None and c is not None and e > c else None)
        out.append(snap(i, group(name, [part(c, e, age=age, t=t)], members=members), interval=interval))
    return out


def status(window, th=None, name="g"):
    g = evaluate(window, th).group(name)
    return g.status, g.partitions[0].status if g.partitions else None


# ---------------------------------------------------------------------------------------------- figures


def test_lag_records_plain_offset_lag():
    assert lag_records(part(10, 25)) == (15, False)


def test_lag_records_no_commit_is_none_not_zero():
    assert lag_records(part(None, 25)) == (None, False)
    assert lag_records(part(10, None)) == (None, False)
    assert lag_records(part(10, 25, error="topic or partition not found (deleted?)")) == (None, False)


def test_lag_records_negative_clamped_and_flagged():
    assert lag_records(part(30, 25)) == (0, True)


def test_lag_records_commit_marker_only_is_zero():
    # committed "last record + 1" points at the commit marker; LSO = marker + 1; no data in between
    assert lag_records(part(5, 6, lookup=LOOKUP_EMPTY)) == (0, False)


def test_lag_records_counts_from_first_data_record():
    # committed at a marker followed by 5 aborted records and their marker; data starts at 12, LSO 15
    assert lag_records(part(5, 15, lookup=LOOKUP_FOUND, first=12)) == (3, False)
    # the first data record found lies beyond the snapshot's LSO: nothing unconsumed as of the snapshot
    assert lag_records(part(5, 15, lookup=LOOKUP_FOUND, first=15)) == (0, False)


def test_lag_records_unknown_lookup_falls_back_to_offset_lag():
    assert lag_records(part(5, 15, lookup=LOOKUP_UNKNOWN)) == (10, False)


def test_lag_seconds_age_of_record_at_committed_offset():
    t = T0 + 100
    assert lag_seconds(part(10, 25, age=42.5, t=t), t) == pytest.approx(42.5)


def test_lag_seconds_zero_when_caught_up_none_when_unknown():
    assert lag_seconds(part(25, 25), T0) == 0.0
    assert lag_seconds(part(5, 6, lookup=LOOKUP_EMPTY), T0) == 0.0
    assert lag_seconds(part(10, 25, lookup=LOOKUP_UNKNOWN), T0) is None
    assert lag_seconds(part(None, 25), T0) is None


def test_lag_seconds_future_timestamp_clamped_to_zero():
    assert lag_seconds(part(10, 25, age=-30.0, t=T0), T0) == 0.0


# ---------------------------------------------------------------------------------------------- statuses


def test_ok_when_consuming_with_some_lag():
    assert status(series([(0, 50), (50, 100), (100, 150), (150, 200), (200, 250), (250, 300)])) == (OK, OK)


def test_quiet_topic_never_flagged():
    # committed offset unchanged for minutes, no lag: never STALLED/STOPPED, with or without members
    window = series([(40, 40)] * 12)
    assert status(window) == (OK, OK)
    assert status(series([(40, 40)] * 12, members=0)) == (OK, OK)
    assert evaluate(window).group("g").partitions[0].committed_unchanged_s == pytest.approx(55.0)


def test_stalled_when_commit_does_not_move_while_lag_persists():
    assert status(series([(0, 10), (10, 20), (10, 25)])) == (STALLED, STALLED)
    reason = evaluate(series([(0, 10), (10, 20), (10, 25)])).group("g").reason
    assert "not moving for 5.0s over 2 polls" in reason


def test_single_poll_cannot_stall():
    assert status(series([(10, 20)])) == (OK, OK)


def test_not_stalled_when_the_lag_just_appeared():
    # a record arrived just before the second poll on a partition the consumer had caught up on
    assert status(series([(10, 10), (10, 11)])) == (OK, OK)


def test_stall_needs_the_polls_to_span_the_minimum_time():
    window = series([(10, 20), (10, 25)], interval=0.2)
    assert status(window) == (OK, OK)
    assert status(window, Thresholds(stall_min_seconds=0.1)) == (STALLED, STALLED)


def test_stopped_after_stop_seconds():
    window = series([(0, 10)] + [(10, 20 + i) for i in range(7)])  # stuck from poll 1 to poll 7: 30 s
    assert status(window) == (STOPPED, STOPPED)
    assert status(window[:-1]) == (STALLED, STALLED)  # 25 s
    assert status(window, Thresholds(stop_seconds=60)) == (STALLED, STALLED)


def test_stopped_at_once_when_the_group_has_no_active_members():
    assert status(series([(10, 20), (10, 21)], members=0)) == (STOPPED, STOPPED)
    assert "no active members" in evaluate(series([(10, 20), (10, 21)], members=0)).group("g").reason


def test_single_snapshot_memberless_group_with_old_records_is_stopped():
    assert status(series([(10, 20, 3600.0)], members=0)) == (STOPPED, STOPPED)
    assert status(series([(10, 20, 2.0)], members=0)) == (OK, OK)  # could be an assign() consumer, judge later
    assert status(series([(10, 20, 3600.0)], members=1)) == (OK, OK)  # a member is there: needs two polls


def test_warning_when_lag_grows_over_the_window():
    pts = [(0, 100, 12.0), (50, 160, 14.0), (100, 230, 16.0), (150, 310, 18.0), (200, 400, 20.0)]
    assert status(series(pts)) == (WARNING, WARNING)
    assert "lag growing over 5 polls: 100 -> 200" in evaluate(series(pts)).group("g").reason


def test_no_warning_for_young_records_or_a_dip_or_too_few_polls():
    young = [(0, 100, 1.0), (50, 160, 1.0), (100, 230, 1.0), (150, 310, 1.0), (200, 400, 1.0)]
    assert status(series(young)) == (OK, OK)
    dip = [(0, 100, 12.0), (50, 160, 14.0), (150, 170, 16.0), (160, 310, 18.0), (200, 400, 20.0)]
    assert status(series(dip)) == (OK, OK)
    assert status(series(dip[:4])) == (OK, OK)
    assert status(series([(0, 100, 12.0), (50, 160, 14.0), (100, 230, 16.0), (150, 310, 18.0)]),
                  Thresholds(warn_polls=4)) == (WARNING, WARNING)


def test_error_when_the_group_cannot_be_read():
    w = [snap(0, group("g", [], error="describe failed: _TIMED_OUT: timed out"))]
    assert status(w) == (ERROR, None)
    assert evaluate(w).group("g").reason.startswith("describe failed")


def test_error_partition_makes_the_group_error():
    w = [snap(0, group("g", [part(10, 10, p=0), part(5, None, p=1, error="end offset: topic deleted?")]))]
    g = evaluate(w).group("g")
    assert g.status == ERROR
    assert [p.status for p in g.partitions] == [OK, ERROR]
    assert g.lag_records == 0  # the unreadable partition does not add a 0 or a NaN


def test_failed_poll_makes_every_known_group_error_without_stale_figures():
    w = series([(10, 20), (20, 30)]) + [snap(2, error="_TRANSPORT: all brokers down")]
    r = evaluate(w)
    assert r.error == "_TRANSPORT: all brokers down"
    assert [(g.group, g.status, g.partitions) for g in r.groups] == [("g", ERROR, ())]


def test_failed_poll_in_between_is_skipped_not_a_break():
    w = series([(0, 10), (10, 20)])
    w.append(snap(2, error="_TIMED_OUT"))
    w.append(snap(3, group("g", [part(10, 30, age=5.0, t=T0 + 15)])))
    assert status(w) == (STALLED, STALLED)


# ---------------------------------------------------------------------------------------------- groups


def test_group_status_is_the_worst_partition():
    t = T0 + 5
    w = [snap(0, group("g", [part(0, 10, p=0, age=1, t=T0), part(0, 10, p=1, age=1, t=T0),
                             part(5, 5, p=2)])),
         snap(1, group("g", [part(10, 20, p=0, age=1, t=t), part(0, 15, p=1, age=6, t=t),
                             part(5, 5, p=2)]))]
    g = evaluate(w).group("g")
    assert [p.status for p in g.partitions] == [OK, STALLED, OK]
    assert g.status == STALLED
    assert g.reason.startswith(f"1 partition(s) STALLED, e.g. {TOPIC}[1]")
    assert g.lag_records == 10 + 15
    assert g.max_lag_seconds == pytest.approx(6.0)


def test_no_commit_partitions_are_explicit_and_left_out_of_totals():
    w = [snap(0, group("g", [part(10, 15, p=0, age=3, t=T0), part(None, 99, p=1)]))]
    g = evaluate(w).group("g")
    p0, p1 = g.partitions
    assert (p1.status, p1.committed, p1.lag_records, p1.lag_seconds) == (NO_COMMIT, None, None, None)
    assert g.status == OK
    assert g.partitions_without_commit == 1
    assert g.lag_records == 5
    assert "1 partition(s) without commit" in g.reason


def test_negative_lag_clamped_and_explained():
    g = evaluate([snap(0, group("g", [part(30, 25)]))]).group("g")
    p = g.partitions[0]
    assert (p.lag_records, p.clamped, p.status) == (0, True, OK)
    assert "clamped" in p.reason and g.lag_records == 0


def test_unknown_lag_seconds_counted_not_guessed():
    g = evaluate([snap(0, group("g", [part(10, 15, lookup=LOOKUP_UNKNOWN), part(3, 3, p=1)]))]).group("g")
    assert g.partitions[0].lag_seconds is None
    assert g.lag_seconds_unknown == 1
    assert g.max_lag_seconds == 0.0


def test_group_without_offsets_is_ok_and_groups_are_sorted():
    r = evaluate([snap(0, group("b", [part(1, 1)]), group("a", [], members=0, state="EMPTY"))])
    assert [g.group for g in r.groups] == ["a", "b"]
    assert (r.group("a").status, r.group("a").reason) == (OK, "no committed offsets")


def test_kill_and_restart_timeline():
    """A consumer committing every poll; killed after poll 3; restarted after poll 10; caught up at poll 12.
    Records arrive at 100/s. STALLED by the second poll after the kill, STOPPED after stop_seconds, OK after."""
    window, statuses = [], []
    th = Thresholds()
    end = committed = 0
    for i in range(16):
        t = T0 + i * 5.0
        end += 500
        if i <= 3:
            committed = end - 40  # healthy: ~0.4 s behind
        elif 11 <= i <= 12:
            committed = min(end, committed + 3000)  # catching up
        elif i > 12:
            committed = end
        age = 0.0 if committed >= end else (t - (T0 + (committed / 100.0)))
        window.append(snap(i, group("g", [part(committed, end, age=max(age, 0.01), t=t)])))
        window = window[-th.window_for(5.0):]
        statuses.append(evaluate(window, th).group("g").status)
    assert statuses[:4] == [OK] * 4
    # killed right after poll 3: the 40 records waiting at poll 3 still wait at poll 4 -> STALLED
    assert statuses[4:9] == [STALLED] * 5
    assert statuses[9:11] == [STOPPED] * 2  # stuck since poll 3: 30 s at poll 9
    assert statuses[11:] == [OK] * 5


def test_thresholds_validation_and_window():
    with pytest.raises(ValueError):
        Thresholds(stall_polls=1)
    with pytest.raises(ValueError):
        Thresholds(stop_seconds=0)
    assert Thresholds().window_for(5.0) == 12
    assert Thresholds(stop_seconds=120).window_for(5.0) == 26
    assert Thresholds().window_for(1.0) == 32


def test_report_is_json_serialisable():
    d = evaluate(series([(10, 20), (10, 25)])).to_dict()
    text = json.dumps(d)
    assert "NaN" not in text
    assert d["groups"][0]["partitions"][0]["status"] == STALLED
    assert d["taken_at_iso"].startswith("2027-")


def test_ok_reasons_say_what_was_seen():
    def reason(window):
        return evaluate(window).group("g").partitions[0].reason

    assert reason(series([(10, 20)])).endswith("one reading, movement not judged yet")
    assert reason(series([(0, 10), (10, 20)])).endswith("committed offset moving")
    assert reason(series([(10, 10), (10, 12)])).endswith("new records since the last poll")


def test_deleted_group_is_explicit_while_the_window_remembers_it():
    w = [snap(0, group("gone", [part(5, 9, age=2, t=T0)]), group("g", [part(1, 1)])),
         snap(1, group("g", [part(1, 1)]))]
    gone = evaluate(w).group("gone")
    assert (gone.status, gone.state, gone.partitions, gone.lag_records) == (OK, "DELETED", (), 0)
    assert evaluate(w[1:]).group("gone") is None

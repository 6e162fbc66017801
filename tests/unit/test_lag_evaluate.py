"""operations.lag.evaluate on synthetic windows: figures, every status, aggregation, edge cases. Lag in
seconds comes from end-offset samples (operations.lag.samples): here the window's own, or a table given."""

from __future__ import annotations

import json

import pytest

from operations.lag.evaluate import (ERROR, NO_COMMIT, OK, STALLED, STOPPED, WARNING, Thresholds, evaluate,
                                     lag_age, lag_offsets)
from operations.lag.model import ConsumerMark, GroupObs, PartitionObs, Snapshot
from operations.lag.samples import AT_LEAST, AT_MOST, EXACT, INTERPOLATED, EndOffsetTable

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0  # epoch seconds of the first synthetic poll
TOPIC = "liaison.internal.air.track"
K = (TOPIC, 0)


def part(committed, end, p=0, topic=TOPIC, hwm=None, error=None):
    return PartitionObs(topic, p, committed, end, hwm if hwm is not None else end, error)


def snap(i, *groups, interval=5.0, error=None):
    """Poll number i (taken at T0 + i*interval) with the given GroupObs."""
    return Snapshot(T0 + i * interval, {g.group: g for g in groups}, error, 0.1)


def group(name, parts, members=1, state="STABLE", error=None):
    return GroupObs(name, state, members, {(p.topic, p.partition): p for p in parts}, error)


def series(points, members=1, name="g", interval=5.0):
    """A window from [(committed, end), ...] for one partition, one poll every `interval` seconds."""
    return [snap(i, group(name, [part(c, e)], members=members), interval=interval)
            for i, (c, e) in enumerate(points)]


def history(*points, key=K):
    """An end-offset table from (seconds after T0, end offset) samples."""
    t = EndOffsetTable()
    for ts, end in points:
        t.record(key, T0 + ts, end)
    return t


def status(window, th=None, name="g", ends=None):
    g = evaluate(window, th, ends).group(name)
    return g.status, g.partitions[0].status if g.partitions else None


# ---------------------------------------------------------------------------------------------- figures


def test_lag_offsets_is_end_minus_committed():
    assert lag_offsets(part(10, 25)) == (15, False)


def test_lag_offsets_counts_markers_it_cannot_see():
    # committed at a commit marker, then 5 aborted records + abort marker, then 3 records + commit marker:
    # 1 + 5 + 1 + 3 + 1 offsets up to the LSO, of which 3 are data records. Without READ: 10, an upper bound.
    assert lag_offsets(part(10, 21)) == (11, False)


def test_lag_offsets_no_commit_is_none_not_zero():
    assert lag_offsets(part(None, 25)) == (None, False)
    assert lag_offsets(part(10, None)) == (None, False)
    assert lag_offsets(part(10, 25, error="topic or partition not found (deleted?)")) == (None, False)


def test_lag_offsets_negative_clamped_and_flagged():
    assert lag_offsets(part(30, 25)) == (0, True)


def test_lag_age_from_the_samples():
    t = history((0, 0), (10, 100))
    age = lag_age(part(49, 100), T0 + 20, t)
    assert (age.kind, age.estimated) == (INTERPOLATED, True)
    assert age.seconds == pytest.approx(15.0)
    assert lag_age(part(100, 100), T0 + 20, t).kind == EXACT  # caught up: exactly 0
    assert lag_age(part(None, 100), T0 + 20, t) is None
    assert lag_age(part(5, 100), T0 + 20, EndOffsetTable()) is None  # nothing dates it


def test_lag_age_lower_bound_when_the_commit_is_older_than_every_sample():
    t = history((0, 50), (5, 60))
    age = lag_age(part(10, 60), T0 + 5, t)
    assert (age.kind, age.seconds, age.high) == (AT_LEAST, 5.0, None)


def test_consumer_mark_bounds_the_age_only_for_the_offset_it_describes():
    t = history((0, 50), (5, 60))
    p = part(10, 60)
    marked = lag_age(p, T0 + 5, t, ConsumerMark(10, int((T0 - 95) * 1000)))
    assert (marked.kind, marked.low, marked.high) == (AT_LEAST, 5.0, pytest.approx(100.0))
    assert lag_age(p, T0 + 5, t, ConsumerMark(9, int((T0 - 95) * 1000))).high is None  # another offset: ignored
    only_mark = lag_age(p, T0 + 5, EndOffsetTable(), ConsumerMark(10, int(T0 * 1000)))
    assert (only_mark.kind, only_mark.seconds) == (AT_MOST, pytest.approx(5.0))


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
    old = history((-3600, 10), (-3595, 20), (0, 20))  # the records 10..19 arrived an hour ago
    assert status(series([(10, 20)], members=0), ends=old) == (STOPPED, STOPPED)
    young = history((-2, 10), (0, 20))
    assert status(series([(10, 20)], members=0), ends=young) == (OK, OK)  # could be an assign() consumer
    assert status(series([(10, 20)], members=1), ends=old) == (OK, OK)  # a member is there: needs two polls
    # a single poll and no history: the age is only ">= 0 s", not enough to call it stopped
    assert status(series([(10, 20)], members=0)) == (OK, OK)


def test_warning_when_lag_grows_over_the_window():
    pts = [(0, 100), (50, 160), (100, 230), (150, 310), (200, 400)]
    assert status(series(pts)) == (WARNING, WARNING)
    g = evaluate(series(pts)).group("g")
    # offset 200 appeared between the polls at T0 + 5 (end 160) and T0 + 10 (end 230): ~12 s before T0 + 20
    assert "lag growing over 5 polls: 100 -> 200 offsets, oldest unconsumed record waiting ~12.1s" in g.reason
    assert (g.max_lag_seconds_kind, g.estimated) == (INTERPOLATED, True)


def test_no_warning_for_young_records_or_a_dip_or_too_few_polls():
    young = [(90, 100), (180, 200), (270, 300), (360, 400), (450, 500)]  # lag grows, but each record < 5 s old
    assert status(series(young)) == (OK, OK)
    dip = [(0, 100), (50, 160), (150, 170), (160, 310), (200, 400)]
    assert status(series(dip)) == (OK, OK)
    assert status(series(dip[:4])) == (OK, OK)
    assert status(series([(0, 100), (50, 160), (100, 230), (150, 310)]), Thresholds(warn_polls=4)) == (WARNING,
                                                                                                       WARNING)


def test_warning_when_the_age_is_only_a_lower_bound():
    # polls 1 s apart; the commit predates every sample: ">= 4 s" might be much older; growing lag is enough
    pts = [(0, 100), (10, 160), (20, 230), (30, 310), (40, 400)]
    p = evaluate(series(pts, interval=1.0)).group("g").partitions[0]
    assert (p.status, p.lag_seconds_text) == (WARNING, "≥4.0")


# ---------------------------------------------------------------------------------------------- markers


def test_a_consumer_parked_on_a_transaction_marker_is_not_flagged():
    # read_committed consumer committed "last record + 1" = the commit marker's offset 10; LSO 11, quiet topic
    for members in (1, 0):
        w = series([(4, 11), (10, 11)] + [(10, 11)] * 10, members=members)
        g = evaluate(w).group("g")
        p = g.partitions[0]
        assert (p.status, p.lag_offsets, p.possible_marker, p.lag_seconds) == (OK, 1, True, None)
        assert "transaction marker" in p.reason and "not timed" in p.lag_seconds_note
        assert g.status == OK and "1 partition(s) possibly only at a transaction marker" in g.reason
        assert g.lag_seconds_unknown == 0


def test_one_offset_that_appeared_after_the_commit_is_a_record_and_is_judged():
    # committed 10 while the end was 10; then the end moved to 11: a record (or an aborted transaction) arrived
    w = series([(10, 10), (10, 11), (10, 11)])
    p = evaluate(w).group("g").partitions[0]
    assert (p.status, p.possible_marker) == (STALLED, False)
    assert p.lag_seconds_kind == INTERPOLATED


def test_marker_tolerance_is_a_threshold():
    w = series([(10, 11)] * 3)
    assert status(w) == (OK, OK)
    assert status(w, Thresholds(marker_offsets=0)) == (STALLED, STALLED)
    assert status(series([(10, 12)] * 3)) == (STALLED, STALLED)  # 2 offsets: more than one marker's worth
    assert status(series([(10, 12)] * 3), Thresholds(marker_offsets=2)) == (OK, OK)
    with pytest.raises(ValueError):
        Thresholds(marker_offsets=-1)


# ---------------------------------------------------------------------------------------------- lag in seconds


def test_lag_in_seconds_grows_and_becomes_a_bound_when_the_commit_predates_the_samples():
    # a consumer stopped at offset 100 while records keep arriving at 10/s; the monitor started at T0
    window, ages = [], []
    for i in range(6):
        window.append(snap(i, group("g", [part(100, 100 + 50 * (i + 1))], members=0)))
        p = evaluate(window).group("g").partitions[0]
        ages.append((p.lag_seconds, p.lag_seconds_kind, p.estimated))
    assert ages == [(5.0 * i, AT_LEAST, True) for i in range(6)]


def test_lag_in_seconds_from_the_monitors_long_table_interpolates():
    t = history((-60, 0), (-30, 300), (0, 600))
    w = [snap(0, group("g", [part(150, 600)]))]
    p = evaluate(w, ends=t).group("g").partitions[0]
    # offset 150 appeared between T0 - 60 (end 0) and T0 - 30 (end 300): ~ at T0 - 44.9
    assert (p.lag_seconds_kind, p.estimated, p.lag_seconds_low, p.lag_seconds_high) == (INTERPOLATED, True, 30.0,
                                                                                         60.0)
    assert p.lag_seconds == pytest.approx(44.9)
    assert p.lag_seconds_text == "~44.9"


def test_consumer_marks_reach_the_report():
    t = history((0, 50), (5, 60))
    w = [snap(1, group("fwd", [part(10, 60)]))]
    marks = {("fwd", TOPIC, 0): ConsumerMark(10, int((T0 - 15) * 1000))}
    p = evaluate(w, ends=t, marks=marks).group("fwd").partitions[0]
    assert (p.lag_seconds_kind, p.lag_seconds_low, p.lag_seconds_high) == (AT_LEAST, 5.0, pytest.approx(20.0))


def test_json_carries_the_kind_and_the_estimated_flag():
    d = evaluate(series([(0, 10), (0, 20)])).to_dict()
    p = d["groups"][0]["partitions"][0]
    assert {k: p[k] for k in ("lag_offsets", "lag_seconds", "lag_seconds_kind", "estimated", "lag_seconds_low",
                              "lag_seconds_high", "lag_seconds_text", "possible_marker")} == {
        "lag_offsets": 20, "lag_seconds": 5.0, "lag_seconds_kind": AT_LEAST, "estimated": True,
        "lag_seconds_low": 5.0, "lag_seconds_high": None, "lag_seconds_text": "≥5.0", "possible_marker": False}
    g = d["groups"][0]
    assert (g["max_lag_seconds"], g["max_lag_seconds_kind"], g["estimated"], g["max_lag_seconds_text"]) == (
        5.0, AT_LEAST, True, "≥5.0")
    assert "lag_records" not in p and "lag_records" not in g


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
    w.append(snap(3, group("g", [part(10, 30)])))
    assert status(w) == (STALLED, STALLED)


# ---------------------------------------------------------------------------------------------- groups


def test_group_status_is_the_worst_partition():
    w = [snap(0, group("g", [part(0, 10, p=0), part(0, 10, p=1), part(5, 5, p=2)])),
         snap(1, group("g", [part(10, 20, p=0), part(0, 15, p=1), part(5, 5, p=2)]))]
    g = evaluate(w).group("g")
    assert [p.status for p in g.partitions] == [OK, STALLED, OK]
    assert g.status == STALLED
    assert g.reason.startswith(f"1 partition(s) STALLED, e.g. {TOPIC}[1]")
    assert g.lag_offsets == g.lag_records == 10 + 15
    # p1's offset 0 was there at the first poll already: >= 5 s; p0's offset 10 appeared in (T0, T0 + 5]: ~0.5 s
    p0, p1, p2 = g.partitions
    assert (p1.lag_seconds, p1.lag_seconds_kind, p1.lag_seconds_text) == (5.0, AT_LEAST, "≥5.0")
    assert (p0.lag_seconds_kind, p0.lag_seconds_low, p0.lag_seconds_high) == (INTERPOLATED, 0.0, 5.0)
    assert (p2.lag_seconds, p2.lag_seconds_kind, p2.estimated) == (0.0, EXACT, False)
    assert (g.max_lag_seconds, g.max_lag_seconds_kind, g.max_lag_seconds_text) == (5.0, AT_LEAST, "≥5.0")


def test_no_commit_partitions_are_explicit_and_left_out_of_totals():
    w = [snap(0, group("g", [part(10, 15, p=0), part(None, 99, p=1)]))]
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
    w = [snap(0, group("g", [part(10, 15), part(3, 3, p=1)]))]
    g = evaluate(w, ends=EndOffsetTable()).group("g")  # a table that knows nothing of this partition
    assert g.partitions[0].lag_seconds is None
    assert g.partitions[0].lag_seconds_note == "no end-offset sample dates the committed offset yet"
    assert g.lag_seconds_unknown == 1
    assert (g.max_lag_seconds, g.max_lag_seconds_kind) == (0.0, EXACT)


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
        end += 500
        if i <= 3:
            committed = end - 40  # healthy: ~0.4 s behind
        elif 11 <= i <= 12:
            committed = min(end, committed + 3000)  # catching up
        elif i > 12:
            committed = end
        window.append(snap(i, group("g", [part(committed, end)])))
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
    w = [snap(0, group("gone", [part(5, 9)]), group("g", [part(1, 1)])),
         snap(1, group("g", [part(1, 1)]))]
    gone = evaluate(w).group("gone")
    assert (gone.status, gone.state, gone.partitions, gone.lag_records) == (OK, "DELETED", (), 0)
    assert evaluate(w[1:]).group("gone") is None


def test_a_hold_topic_waiting_by_design_is_not_stalled_while_the_forwarder_runs():
    from core.topics import HOLD_TOPIC

    points = [(10, 20)] * 12  # held records: the forwarder's committed offset waits at the first not yet due
    held = [snap(i, group("liaison-forwarder", [part(c, e, topic=HOLD_TOPIC)])) for i, (c, e) in enumerate(points)]
    g = evaluate(held).group("liaison-forwarder")
    assert (g.status, g.partitions[0].status) == (OK, OK)
    assert g.lag_offsets == 10 and "until they fall due" in g.partitions[0].reason
    # a dead forwarder (no member) is still STOPPED on its hold partitions; other topics are judged as ever
    dead = [snap(i, group("liaison-forwarder", [part(c, e, topic=HOLD_TOPIC)], members=0)) for i, (c, e) in
            enumerate(points)]
    assert evaluate(dead).group("liaison-forwarder").status == STOPPED
    assert status(series(points)) == (STOPPED, STOPPED)
    # and the exemption is a threshold: empty, the hold topic is judged like any other
    assert evaluate(held, Thresholds(holding_topics=())).group("liaison-forwarder").status == STOPPED

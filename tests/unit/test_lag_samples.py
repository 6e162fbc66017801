"""operations.lag.samples: the table of (time, end offset) samples that dates offsets without reading records."""

from __future__ import annotations

import bisect

import pytest

from operations.lag.model import GroupObs, PartitionObs, Snapshot
from operations.lag.samples import (AT_LEAST, AT_MOST, EXACT, INTERPOLATED, ZERO, Age, EndOffsetTable, apply_index,
                                    bounded_by_consumer, wants_of)

pytestmark = pytest.mark.unit

K = ("liaison.internal.air.track", 0)
T0 = 1_800_000_000.0


def table(*points, key=K, **kwargs) -> EndOffsetTable:
    t = EndOffsetTable(**kwargs)
    for ts, end in points:
        t.record(key, T0 + ts, end)
    return t


# ---------------------------------------------------------------------------------------------- dating offsets


def test_interpolated_between_the_two_samples_around_the_moment_the_end_passed_the_offset():
    t = table((0, 0), (10, 100))
    age = t.age(K, 49, T0 + 20)
    # end grows 10 offsets/s from 0 at T0: it reaches 50 (passes offset 49) at T0 + 5
    assert age.kind == INTERPOLATED and age.estimated
    assert age.seconds == pytest.approx(15.0)
    assert (age.low, age.high) == (pytest.approx(10.0), pytest.approx(20.0))  # certain: between the two samples
    assert age.text() == "~15.0"
    assert t.age(K, 99, T0 + 20).seconds == pytest.approx(10.0)  # the last offset before the sample at T0 + 10


def test_older_than_the_oldest_sample_is_only_a_lower_bound_never_extrapolated():
    t = table((100, 50), (105, 60))
    age = t.age(K, 10, T0 + 130)
    assert (age.kind, age.seconds, age.low, age.high) == (AT_LEAST, 30.0, 30.0, None)
    assert age.estimated and age.text() == "≥30.0"
    assert t.span(K, T0 + 130) == 30.0


def test_nothing_to_date_when_no_sample_shows_the_end_beyond_the_offset():
    t = table((0, 10), (5, 10))
    assert t.age(K, 10, T0 + 9) is None
    assert t.age(K, 12, T0 + 9) is None
    assert t.age(("other", 0), 1, T0) is None
    assert t.bracket(K, 10) is None


def test_a_plateau_keeps_its_first_and_last_sighting_so_the_bracket_is_tight():
    t = table((0, 10), (5, 10), (10, 10), (15, 10), (20, 30))
    assert t.samples(K) == [(T0, 10), (T0 + 15, 10), (T0 + 20, 30)]
    # offset 10 appeared after the last sighting of end 10 (T0 + 15), by T0 + 20
    assert t.bracket(K, 10) == (T0 + 15, T0 + 20)
    assert t.age(K, 10, T0 + 20).high == pytest.approx(5.0)


def test_exact_zero_and_age_text():
    assert (ZERO.kind, ZERO.estimated, ZERO.text()) == (EXACT, False, "0.0")
    assert Age(4.0, 0.0, 4.0, AT_MOST).text() == "≤4.0"


def test_samples_not_later_than_the_last_are_ignored():
    t = table((0, 10), (5, 20))
    t.record(K, T0 + 5, 25)
    t.record(K, T0 + 1, 30)
    assert t.samples(K) == [(T0, 10), (T0 + 5, 20)]


# ---------------------------------------------------------------------------------------------- bounded, reset


def test_bounded_size_keeps_the_span_and_recent_resolution():
    t = EndOffsetTable(max_samples=16)
    for i in range(2000):  # 5 s polls, 7 records per poll
        t.record(K, T0 + 5 * i, 7 * i)
    s = t.samples(K)
    assert len(s) == 16
    assert s[0] == (T0, 0) and s[-1] == (T0 + 5 * 1999, 7 * 1999)  # span never shrinks
    times = [ts for ts, _ in s]
    assert times == sorted(times) and [e for _, e in s] == sorted(e for _, e in s)
    # a record of the last poll interval is still dated within one interval
    now = T0 + 5 * 1999
    recent = t.age(K, 7 * 1999 - 1, now)
    assert recent.high - recent.low <= 5.0 + 1e-9
    # an old one is dated with a wider but true bracket: offset 700 appeared in (T0 + 495, T0 + 500]
    old = t.age(K, 700, now)
    assert old.kind == INTERPOLATED and old.low <= now - (T0 + 500) and old.high >= now - (T0 + 495)


def test_reset_when_the_end_offset_goes_backwards():
    t = table((0, 100), (5, 120))
    assert t.record(K, T0 + 10, 3) is True  # deleted and re-created (or truncated)
    assert t.samples(K) == [(T0 + 10, 3)] and t.resets(K) == 1
    age = t.age(K, 0, T0 + 12)
    assert (age.kind, age.seconds) == (AT_LEAST, 2.0)  # nothing older is believed any more


def test_reset_when_the_topic_id_changes_even_if_the_end_grew():
    t = EndOffsetTable()
    t.record(K, T0, 100, "id-1")
    t.record(K, T0 + 5, 150, "id-1")
    assert t.record(K, T0 + 10, 400, "id-2") is True
    assert t.samples(K) == [(T0 + 10, 400)]
    assert t.record(K, T0 + 15, 410, None) is False  # an unknown id is no evidence of a new topic


def snapshot(t, *parts, group="g", error=None):
    return Snapshot(T0 + t, {group: GroupObs(group, "STABLE", 1, {(p.topic, p.partition): p for p in parts})}
                    if not error else {}, error)


def test_record_snapshot_once_per_partition_and_forgets_idle_partitions():
    t = EndOffsetTable(forget_after_s=60)
    two = Snapshot(T0, {
        "a": GroupObs("a", "STABLE", 1, {K: PartitionObs(K[0], 0, 1, 10)}),
        "b": GroupObs("b", "STABLE", 1, {K: PartitionObs(K[0], 0, 5, 10),
                                         ("x", 0): PartitionObs("x", 0, 1, None, error="end offset: gone")})})
    assert t.record_snapshot(two) == []
    assert t.samples(K) == [(T0, 10)] and ("x", 0) not in t
    t.record_snapshot(snapshot(30, PartitionObs("y", 0, 0, 1)))
    assert K in t
    t.record_snapshot(snapshot(61, PartitionObs("y", 0, 0, 2)))
    assert K not in t and len(t) == 1
    assert t.record_snapshot(snapshot(70, error="down")) == []


def test_from_window_and_wants():
    w = [snapshot(0, PartitionObs(K[0], 0, 5, 10)), snapshot(5, PartitionObs(K[0], 0, 5, 20),
                                                             PartitionObs("z", 0, 3, 3), PartitionObs("n", 0, None, 9))]
    assert EndOffsetTable.from_window(w).samples(K) == [(T0, 10), (T0 + 5, 20)]
    assert wants_of(w[-1]) == {(K, 5)}


# ---------------------------------------------------------------------------------------------- time index


class FakeIndex:
    """A partition's log: record i has timestamp ts[i] (ms); answers "first offset with timestamp >= T" below
    the end, like ListOffsets by timestamp under read_committed."""

    def __init__(self, ts_ms: list[int]):
        self.ts = ts_ms

    def __call__(self, requests):
        out = []
        for req in requests:
            ans = {}
            for key, t in req.items():
                i = bisect.bisect_left(self.ts, int(t * 1000))
                ans[key] = (i, self.ts[i]) if i < len(self.ts) else None
            out.append(ans)
        return out


def test_time_index_dates_history_before_the_first_poll():
    # 3,600 records, one per second, the last one written 10 minutes before the monitor's first poll
    now = T0
    ts = [int((now - 600 - 3600 + i) * 1000) for i in range(3600)]
    index = FakeIndex(ts)
    t = EndOffsetTable()
    t.record(K, now, 3600)
    wants = {(K, 1000)}
    assert t.age(K, 1000, now).kind == AT_LEAST  # the polls alone know nothing older than now
    first = t.plan_history(wants, now)
    assert len(first) >= 10 and all(set(r) == {K} for r in first)
    assert t.plan_history(wants, now) == []  # asked once per reset
    apply_index(t, first, index(first))
    for _ in range(6):
        reqs = t.plan_refine(wants, now)
        if not reqs:
            break
        apply_index(t, reqs, index(reqs))
    age = t.age(K, 1000, now)
    true = now - ts[1000] / 1000
    assert age.kind == INTERPOLATED and age.low <= true <= age.high
    assert age.seconds == pytest.approx(true, abs=max(1.0, 0.02 * true))
    # samples still ordered: times increasing, ends non-decreasing
    s = t.samples(K)
    assert [x for x, _ in s] == sorted({x for x, _ in s}) and [e for _, e in s] == sorted(e for _, e in s)


def test_time_index_samples_that_contradict_the_polls_are_dropped():
    t = table((0, 10), (5, 20))
    # "the first record at or after T0 - 60 s is offset 15": impossible, the end was 10 at T0
    assert t.add_index(K, T0 - 60, (15, int((T0 - 50) * 1000))) == 0
    assert t.add_index(K, T0 + 10, (12, 0)) == 0  # at or after the last poll: the polls know better
    assert t.add_index(K, T0 - 60, (4, int((T0 - 30) * 1000))) == 2
    assert t.samples(K)[:2] == [(T0 - 60, 4), (T0 - 30, 5)]
    assert t.add_index(K, T0 - 120, None) == 0  # "nothing that recent" would say the end was 20 at T0 - 120
    assert t.add_index(("unknown", 0), T0, None) == 0


def test_refine_spreads_several_offsets_of_one_partition_over_requests():
    t = table((0, 0), (100, 1000))
    reqs = t.plan_refine({(K, 100), (K, 500), (K, 900)}, T0 + 100)
    assert [len(r) for r in reqs] == [1, 1, 1]
    assert all(T0 < r[K] < T0 + 100 for r in reqs)
    assert t.plan_refine({(K, 100)}, T0 + 100, min_resolution_s=1000) == []


def test_constructor_checks():
    with pytest.raises(ValueError):
        EndOffsetTable(max_samples=2)


# ---------------------------------------------------------------------------------------------- consumer figures


def test_the_consumers_figure_tightens_the_upper_bound():
    assert bounded_by_consumer(None, 40.0) == Age(40.0, 0.0, 40.0, AT_MOST)
    at_least = Age(30.0, 30.0, None, AT_LEAST)
    assert bounded_by_consumer(at_least, 45.0) == Age(30.0, 30.0, 45.0, AT_LEAST)
    interp = Age(15.0, 10.0, 20.0, INTERPOLATED)
    assert bounded_by_consumer(interp, 12.0) == Age(12.0, 10.0, 12.0, INTERPOLATED)
    assert bounded_by_consumer(interp, 5.0) == Age(5.0, 5.0, 5.0, INTERPOLATED)  # clocks disagree: both lower
    assert bounded_by_consumer(ZERO, 5.0) is ZERO
    assert bounded_by_consumer(interp, None) is interp

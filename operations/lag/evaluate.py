"""Lag figures and health status over a sliding window of snapshots. Pure: no Kafka, no clock.

Figures, per (group, topic, partition), from the latest snapshot (the monitor reads offsets, never records):

- lag in offsets (`lag_offsets`): end - committed, where end is the last stable offset (LSO, the end of what
  read_committed consumers can read). On a plain topic that is the number of records not yet consumed, equal to
  Kafka's `kafka-consumer-groups --describe`. On a transactional topic it also counts the control records
  (one commit/abort marker per transaction and partition) and aborted records between the committed offset and
  the LSO: an upper bound on the data records waiting, exact only where no transaction ended in that range. A
  read_committed consumer commits "last record + 1", the offset of the marker that follows, so a caught-up one
  shows 1 (Kafka's tool too, KAFKA-6607); without reading the log nobody can tell that marker from one record,
  see "possible marker" below. Negative values (committed beyond the end: truncated or re-created topic) are
  clamped to 0 and flagged. No commit: no figure (None), never 0.
- lag in seconds: how long the oldest unconsumed record has been waiting, i.e. now - the moment the end
  offset first passed the committed offset, from the monitor's table of (time, end offset) samples
  (`operations.lag.samples`), interpolated between samples (`~`, bounds given), or a lower bound when the
  committed offset is older than the oldest sample (`≥`); both flagged `estimated`. 0 (exact) when lag is 0.
  A consumer's own figure (`ConsumerMark`: timestamp of the last record it committed) tightens the upper bound.
- possible marker: lag in offsets <= `marker_offsets` (default 1) on an end offset that has not moved since the
  group committed its current offset. A read_committed consumer parked after the last transaction's records
  looks exactly like that; so does a consumer that stopped one record short of an idle end. Not flagged (OK),
  no lag in seconds; it is judged as soon as the end moves again.

Status per partition, from the partition's history over the window (Burrow-style, worst first):

- ERROR      the partition (or the group) could not be read;
- STOPPED    lag > 0 and the committed offset has not moved while lag persisted for `stall_polls` polls,
             and either the group has no active members or that lasted `stop_seconds` or more; also, on a
             single snapshot, a member-less group whose oldest unconsumed record is `stop_seconds` old;
- STALLED    lag > 0 and the committed offset has not moved for `stall_polls` consecutive polls (spanning at
             least `stall_min_seconds`) with lag > 0 in each of them: records that were waiting at the
             first of those polls are still waiting;
- WARNING    lag > 0 in each of the last `warn_polls` polls, never decreasing and higher at the end, and the
             oldest unconsumed record at least `warn_min_lag_seconds` old (or only known to be older than
             some lower bound: the consumer falls behind);
- NO_COMMIT  assigned to a member but never committed (explicit state; counts as OK for the group);
- OK         everything else, in particular lag 0 (a quiet topic is never flagged) and a possible marker.

Group status = worst partition status (ERROR if the group itself could not be read). A group listed earlier
in the window but gone now is reported with state DELETED (status OK, no partitions) until the window forgets it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from operations.lag.model import ConsumerMark, GroupObs, PartitionObs, Snapshot
from operations.lag.report import GroupReport, PartitionReport, Report
from operations.lag.thresholds import Thresholds
from operations.lag.samples import AT_LEAST, EXACT, ZERO, Age, EndOffsetTable, bounded_by_consumer

OK, WARNING, STALLED, STOPPED, ERROR = "OK", "WARNING", "STALLED", "STOPPED", "ERROR"
NO_COMMIT = "NO_COMMIT"
#: group state of a group that was seen earlier in the window and is no longer listed
DELETED = "DELETED"
#: Group statuses, best first; the value is the severity exported as a number.
GROUP_STATUSES = (OK, WARNING, STALLED, STOPPED, ERROR)
PARTITION_STATUSES = (OK, NO_COMMIT, WARNING, STALLED, STOPPED, ERROR)
SEVERITY = {OK: 0, NO_COMMIT: 0, WARNING: 1, STALLED: 2, STOPPED: 3, ERROR: 4}
#: (group, topic, partition) -> the consumer's own figure for that partition
Marks = Mapping[tuple[str, str, int], ConsumerMark]


def lag_offsets(obs: PartitionObs) -> tuple[int | None, bool]:
    """(LSO - committed offset, clamped). None when there is no commit, no end offset or an error."""
    if obs.committed is None or obs.end is None or obs.error is not None:
        return None, False
    raw = obs.end - obs.committed
    return max(0, raw), raw < 0


def lag_age(obs: PartitionObs, now: float, table: EndOffsetTable, mark: ConsumerMark | None = None) -> Age | None:
    """How long, at `now`, the oldest unconsumed record of the partition has waited; None when unknown."""
    lag, _ = lag_offsets(obs)
    if lag is None:
        return None
    if lag == 0:
        return ZERO
    age = table.age(obs.key, obs.committed, now)
    if mark is not None and mark.offset == obs.committed and mark.last_record_ts_ms >= 0:
        age = bounded_by_consumer(age, now - mark.last_record_ts_ms / 1000.0)
    return age


# ---------------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class _Point:
    t: float
    committed: int
    end: int
    lag: int


def _history(window: Sequence[Snapshot], group: str, key: tuple[str, int]) -> list[_Point | None]:
    """The partition's readable observations, oldest first; None marks a poll where it was missing or
    unreadable (it breaks runs). Polls where the whole cycle or the group failed carry no evidence and
    are skipped."""
    out: list[_Point | None] = []
    for snap in window:
        if snap.error is not None:
            continue
        g = snap.groups.get(group)
        if g is None or g.error is not None:
            continue
        obs = g.partitions.get(key)
        lag, _ = lag_offsets(obs) if obs is not None else (None, False)
        if obs is None or lag is None:
            out.append(None)
            continue
        out.append(_Point(snap.taken_at, obs.committed, obs.end, lag))
    return out


def _trailing(points: list[_Point | None], keep) -> list[_Point]:
    run: list[_Point] = []
    for p in reversed(points):
        if p is None or not keep(p):
            break
        run.append(p)
    run.reverse()
    return run


def possible_marker(points: list[_Point | None], th: Thresholds) -> bool:
    """The latest lag is small enough to be the transaction marker after the last record consumed, and the end
    offset has not moved since the group's current commit was first seen (nothing new to read since)."""
    last = points[-1]
    if last is None or not 0 < last.lag <= th.marker_offsets:
        return False
    since_commit = _trailing(points, lambda p: p.committed == last.committed)
    return all(p.end == last.end for p in since_commit)


def judge_partition(points: list[_Point | None], members: int | None, th: Thresholds,
                    age: Age | None = None) -> tuple[str, str, float | None]:
    """(status, reason, committed_unchanged_s) for a partition whose latest point is points[-1] (readable,
    committed); `age` = how long its oldest unconsumed record has waited, when known. Pure."""
    last = points[-1]
    assert last is not None
    unchanged = _trailing(points, lambda p: p.committed == last.committed)
    unchanged_s = unchanged[-1].t - unchanged[0].t if len(unchanged) > 1 else 0.0
    if last.lag == 0:
        return OK, "caught up", unchanged_s
    if possible_marker(points, th):
        return (OK, f"lag {last.lag} offset(s) on an end offset that has not moved since this commit: the "
                    f"transaction marker after the last record read (read_committed consumers commit it), or "
                    f"{last.lag} record(s) not consumed; judged again when the end moves", unchanged_s)
    stuck = _trailing(points, lambda p: p.committed == last.committed and p.lag > 0)
    n, span = len(stuck), stuck[-1].t - stuck[0].t
    waited = f", oldest unconsumed record waiting {age.text()}s" if age is not None else ""
    lag = f"lag {last.lag} offset(s)"
    if n >= th.stall_polls and span >= th.stall_min_seconds:
        what = f"{lag}, committed offset {last.committed} not moving for {span:.1f}s over {n} polls{waited}"
        if members == 0:
            return STOPPED, f"no active members; {what}", unchanged_s
        if span >= th.stop_seconds:
            return STOPPED, f"{what} (>= {th.stop_seconds:g}s)", unchanged_s
        return STALLED, what, unchanged_s
    consecutive = _trailing(points, lambda p: True)
    if len(consecutive) == 1 and members == 0 and age is not None and age.seconds >= th.stop_seconds:
        return STOPPED, f"no active members; {lag}{waited}", unchanged_s
    recent = consecutive[-th.warn_polls:]
    old_enough = age is None or age.kind == AT_LEAST or age.seconds >= th.warn_min_lag_seconds
    if (len(recent) == th.warn_polls and all(p.lag > 0 for p in recent)
            and all(b.lag >= a.lag for a, b in zip(recent, recent[1:])) and recent[-1].lag > recent[0].lag
            and old_enough):
        return (WARNING, f"lag growing over {len(recent)} polls: {recent[0].lag} -> {last.lag} offsets{waited}",
                unchanged_s)
    if len(consecutive) == 1:
        return OK, f"{lag}{waited}; one reading, movement not judged yet", unchanged_s
    if consecutive[-2].committed != last.committed:
        return OK, f"{lag}{waited}, committed offset moving", unchanged_s
    return OK, f"{lag}{waited}, new records since the last poll", unchanged_s


def _partition_report(obs: PartitionObs, snap: Snapshot, window: Sequence[Snapshot], g: GroupObs,
                      th: Thresholds, table: EndOffsetTable, marks: Marks) -> PartitionReport:
    lag, clamped = lag_offsets(obs)
    common = dict(topic=obs.topic, partition=obs.partition, committed=obs.committed, end_offset=obs.end,
                  high_watermark=obs.hwm, lag_offsets=lag, clamped=clamped)
    if obs.error is not None or (obs.committed is not None and obs.end is None):
        err = obs.error or "end offset unknown"
        return PartitionReport(**common, lag_seconds=None, status=ERROR, reason=err, error=err)
    if obs.committed is None:
        return PartitionReport(**common, lag_seconds=None, status=NO_COMMIT,
                               reason="assigned, no committed offset yet")
    points = _history(window, g.group, obs.key)
    marker = possible_marker(points, th)
    age = None if marker else lag_age(obs, snap.taken_at, table, marks.get((g.group, obs.topic, obs.partition)))
    status, reason, unchanged_s = judge_partition(points, g.members, th, age)
    if obs.topic in th.holding_topics and status in (WARNING, STALLED, STOPPED) and g.members:
        status, reason = OK, f"holding {lag} record(s) until they fall due (waits by design); {reason}"
    if clamped:
        reason = f"committed offset {obs.committed} beyond end offset {obs.end}: lag clamped to 0; {reason}"
    note = None
    if marker:
        note = "possibly only the transaction marker after the last record read: not timed"
    elif age is None and lag:
        note = "no end-offset sample dates the committed offset yet"
    figures = dict(lag_seconds=None)
    if age is not None:
        figures = dict(lag_seconds=age.seconds, lag_seconds_kind=age.kind, estimated=age.estimated,
                       lag_seconds_low=age.low, lag_seconds_high=age.high)
    return PartitionReport(**common, **figures, status=status, reason=reason, committed_unchanged_s=unchanged_s,
                           lag_seconds_note=note, possible_marker=marker)


def _group_report(g: GroupObs, snap: Snapshot, window: Sequence[Snapshot], th: Thresholds,
                  table: EndOffsetTable, marks: Marks) -> GroupReport:
    parts = tuple(_partition_report(obs, snap, window, g, th, table, marks)
                  for _, obs in sorted(g.partitions.items()))
    known = [p for p in parts if p.lag_offsets is not None and p.status != ERROR]
    lag_total = sum(p.lag_offsets for p in known)
    timed = [p for p in known if p.lag_seconds is not None]
    unknown_s = sum(1 for p in known if p.lag_seconds is None and p.lag_offsets and not p.possible_marker)
    no_commit = sum(1 for p in parts if p.status == NO_COMMIT)
    max_s, kind = None, None
    if timed:
        top = max(timed, key=lambda p: p.lag_seconds)
        max_s = top.lag_seconds
        # a lower bound elsewhere may hide an older record: then the group's figure is a lower bound too
        kind = AT_LEAST if any(p.lag_seconds_kind == AT_LEAST for p in timed) else top.lag_seconds_kind
    common = dict(group=g.group, state=g.state, members=g.members, lag_offsets=lag_total,
                  max_lag_seconds=max_s, partitions=parts, partitions_without_commit=no_commit,
                  lag_seconds_unknown=unknown_s, max_lag_seconds_kind=kind,
                  estimated=kind is not None and kind != EXACT)
    if g.error is not None:
        return GroupReport(**common, status=ERROR, reason=g.error, error=g.error)
    if not parts:
        return GroupReport(**common, status=OK, reason="no committed offsets")
    worst = max(SEVERITY[p.status] for p in parts)
    if worst == 0:
        reason = "caught up" if lag_total == 0 else f"lag {lag_total} offset(s), no partition stalled"
        markers = sum(1 for p in parts if p.possible_marker)
        if markers:
            reason += f"; {markers} partition(s) possibly only at a transaction marker"
        if no_commit:
            reason += f"; {no_commit} partition(s) without commit"
        return GroupReport(**common, status=OK, reason=reason)
    bad = [p for p in parts if SEVERITY[p.status] == worst]
    status = bad[0].status
    first = bad[0]
    reason = f"{len(bad)} partition(s) {status}, e.g. {first.topic}[{first.partition}]: {first.reason}"
    return GroupReport(**common, status=status, reason=reason)


def evaluate(window: Sequence[Snapshot], thresholds: Thresholds | None = None,
             ends: EndOffsetTable | None = None, marks: Marks | None = None) -> Report:
    """Judge the latest snapshot of `window` (oldest first) against its history. `ends`: the monitor's table
    of end-offset samples, already holding the latest snapshot's (default: a table built from the window
    alone); `marks`: consumers' own figures, (group, topic, partition) -> ConsumerMark."""
    th = thresholds or Thresholds()
    if not window:
        return Report(None, 0.0, (), th, 0, "no poll yet")
    snap = window[-1]
    if snap.error is not None:
        # every group last seen is unreadable now: ERROR, without stale figures
        previous = next((s for s in reversed(window) if s.error is None), None)
        names = sorted(previous.groups) if previous else []
        groups = tuple(GroupReport(n, ERROR, f"poll failed: {snap.error}", None, None, 0, None, error=snap.error)
                       for n in names)
        return Report(snap.taken_at, snap.duration_s, groups, th, len(window), snap.error)
    table = ends if ends is not None else EndOffsetTable.from_window(window)
    marks = marks or {}
    reports = {name: _group_report(g, snap, window, th, table, marks) for name, g in snap.groups.items()}
    # groups seen earlier in the window that are gone now: an explicit DELETED state while the window remembers them
    for earlier in reversed(window[:-1]):
        if earlier.error is None:
            for name in earlier.groups.keys() - reports.keys():
                reports[name] = GroupReport(name, OK, "no longer on the cluster (deleted)", DELETED, 0, 0, None)
    return Report(snap.taken_at, snap.duration_s, tuple(reports[n] for n in sorted(reports)), th, len(window))

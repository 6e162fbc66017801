"""Lag figures and health status over a sliding window of snapshots. Pure: no Kafka, no clock.

Figures, per (group, topic, partition), from one snapshot:

- lag in records: end - committed, where end is the last stable offset (LSO, read_committed end). On
  transactional topics a committed offset may point at a commit marker (a consumer commits "last record + 1"):
  when no committed data record lies between the committed offset and the LSO the lag is 0 (Kafka's tool,
  which counts against the high watermark, shows 1 there forever: KAFKA-6607). Otherwise the lag counts from
  the first data record at or after the committed offset, so leading markers and aborted records are not
  counted (markers further inside the range are: one per transaction). Negative values (committed beyond the
  end: truncated or re-created topic) are clamped to 0 and flagged. No commit: no figure (None), never 0.
- lag in seconds: age, at the snapshot instant, of the oldest unconsumed record (the first data record at or
  after the committed offset), from its timestamp; 0 when the lag is 0; None when it could not be read.

Status per partition, from the partition's history over the window (Burrow-style, worst first):

- ERROR      the partition (or the group) could not be read;
- STOPPED    lag > 0 and the committed offset has not moved while lag persisted for `stall_polls` polls,
             and either the group has no active members or that lasted `stop_seconds` or more; also, on a
             single snapshot, a member-less group whose oldest unconsumed record is `stop_seconds` old;
- STALLED    lag > 0 and the committed offset has not moved for `stall_polls` consecutive polls (spanning at
             least `stall_min_seconds`) with lag > 0 in each of them: records that were waiting at the
             first of those polls are still waiting;
- WARNING    lag > 0 in each of the last `warn_polls` polls, never decreasing and higher at the end, and the
             oldest unconsumed record at least `warn_min_lag_seconds` old (the consumer falls behind);
- NO_COMMIT  assigned to a member but never committed (explicit state; counts as OK for the group);
- OK         everything else, in particular lag 0: a quiet topic is never flagged.

Group status = worst partition status (ERROR if the group itself could not be read). A group listed earlier
in the window but gone now is reported with state DELETED (status OK, no partitions) until the window forgets it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from operations.lag.model import LOOKUP_EMPTY, LOOKUP_FOUND, GroupObs, PartitionObs, Snapshot

OK, WARNING, STALLED, STOPPED, ERROR = "OK", "WARNING", "STALLED", "STOPPED", "ERROR"
NO_COMMIT = "NO_COMMIT"
#: group state of a group that was seen earlier in the window and is no longer listed
DELETED = "DELETED"
#: Group statuses, best first; the value is the severity exported as a number.
GROUP_STATUSES = (OK, WARNING, STALLED, STOPPED, ERROR)
PARTITION_STATUSES = (OK, NO_COMMIT, WARNING, STALLED, STOPPED, ERROR)
SEVERITY = {OK: 0, NO_COMMIT: 0, WARNING: 1, STALLED: 2, STOPPED: 3, ERROR: 4}


@dataclass(frozen=True)
class Thresholds:
    """When a partition is judged WARNING / STALLED / STOPPED. Defaults suit a 5 s poll interval: a consumer
    killed while producers run is STALLED at the second poll after the kill (<= 2 intervals), STOPPED
    after `stop_seconds`, and OK again once it has caught up (lag 0) or commits again."""

    #: consecutive polls with lag > 0 and the same committed offset for STALLED (2 = one whole interval)
    stall_polls: int = 2
    #: ... and the time those polls must span at least (guards very short intervals)
    stall_min_seconds: float = 0.5
    #: stuck this long (or at all, in a group without active members) => STOPPED
    stop_seconds: float = 30.0
    #: polls over which a never-decreasing, growing lag means WARNING
    warn_polls: int = 5
    #: ... when the oldest unconsumed record is at least this old (a healthy consumer's is ~1 s)
    warn_min_lag_seconds: float = 10.0
    #: snapshots kept in the window (at least enough to span stop_seconds; see window_for)
    window: int = 12

    def __post_init__(self) -> None:
        if self.stall_polls < 2:
            raise ValueError("stall_polls must be >= 2 (a stall is judged between two polls)")
        if self.warn_polls < 2:
            raise ValueError("warn_polls must be >= 2")
        if self.stop_seconds <= 0 or self.stall_min_seconds < 0 or self.warn_min_lag_seconds < 0:
            raise ValueError("thresholds in seconds must be positive")

    def window_for(self, interval: float) -> int:
        """Snapshots to keep at this poll interval so that every rule can be reached."""
        need_stop = math.ceil(self.stop_seconds / max(interval, 1e-3)) + 2
        return max(self.window, self.stall_polls, self.warn_polls, need_stop)


# ---------------------------------------------------------------------------------------------- figures


def lag_records(obs: PartitionObs) -> tuple[int | None, bool]:
    """(lag in records, clamped). None when there is no commit or no end offset."""
    if obs.committed is None or obs.end is None or obs.error is not None:
        return None, False
    raw = obs.end - obs.committed
    if raw <= 0:
        return 0, raw < 0
    if obs.lookup == LOOKUP_EMPTY:
        return 0, False
    if obs.lookup == LOOKUP_FOUND and obs.first_offset is not None:
        if obs.first_offset >= obs.end:
            return 0, False
        return obs.end - max(obs.committed, obs.first_offset), False
    return raw, False


def lag_seconds(obs: PartitionObs, taken_at: float) -> float | None:
    """Age in seconds, at `taken_at` (epoch s), of the oldest unconsumed record; None when unknown."""
    lag, _ = lag_records(obs)
    if lag is None:
        return None
    if lag == 0:
        return 0.0
    if obs.lookup == LOOKUP_FOUND and obs.first_ts_ms is not None and obs.first_ts_ms >= 0:
        return max(0.0, taken_at - obs.first_ts_ms / 1000.0)
    return None


# ---------------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class PartitionReport:
    topic: str
    partition: int
    committed: int | None
    end_offset: int | None
    high_watermark: int | None
    lag_records: int | None
    lag_seconds: float | None
    status: str
    reason: str
    #: committed offset was beyond the end offset; lag clamped to 0
    clamped: bool = False
    #: how long (lower bound, from the window) the committed offset has not changed
    committed_unchanged_s: float | None = None
    error: str | None = None
    #: why lag_seconds is unknown (lag > 0 but the oldest unconsumed record could not be read)
    lag_seconds_note: str | None = None


@dataclass(frozen=True)
class GroupReport:
    group: str
    status: str
    reason: str
    state: str | None
    members: int | None
    #: sum over partitions with a known lag (never includes no-commit or unreadable partitions)
    lag_records: int
    #: oldest unconsumed record over the group's partitions; None when no partition has a known figure
    max_lag_seconds: float | None
    partitions: tuple[PartitionReport, ...] = ()
    partitions_without_commit: int = 0
    #: partitions with lag > 0 whose oldest record could not be read in time
    lag_seconds_unknown: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Report:
    taken_at: float | None
    duration_s: float
    groups: tuple[GroupReport, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: snapshots in the window the statuses were judged on
    polls: int = 0
    error: str | None = None

    def group(self, name: str) -> GroupReport | None:
        return next((g for g in self.groups if g.group == name), None)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["taken_at_iso"] = (datetime.fromtimestamp(self.taken_at, timezone.utc).isoformat()
                               if self.taken_at is not None else None)
        for g in out["groups"]:
            g["partitions"] = list(g["partitions"])
        out["groups"] = list(out["groups"])
        return out


# ---------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _Point:
    t: float
    committed: int
    lag: int
    lag_s: float | None


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
        lag, _ = lag_records(obs) if obs is not None else (None, False)
        if obs is None or lag is None:
            out.append(None)
            continue
        out.append(_Point(snap.taken_at, obs.committed, lag, lag_seconds(obs, snap.taken_at)))
    return out


def _trailing(points: list[_Point | None], keep) -> list[_Point]:
    run: list[_Point] = []
    for p in reversed(points):
        if p is None or not keep(p):
            break
        run.append(p)
    run.reverse()
    return run


def judge_partition(points: list[_Point | None], members: int | None,
                    th: Thresholds) -> tuple[str, str, float | None]:
    """(status, reason, committed_unchanged_s) for a partition whose latest point is points[-1] (readable,
    committed). Pure."""
    last = points[-1]
    assert last is not None
    unchanged = _trailing(points, lambda p: p.committed == last.committed)
    unchanged_s = unchanged[-1].t - unchanged[0].t if len(unchanged) > 1 else 0.0
    if last.lag == 0:
        return OK, "caught up", unchanged_s
    stuck = _trailing(points, lambda p: p.committed == last.committed and p.lag > 0)
    n, span = len(stuck), stuck[-1].t - stuck[0].t
    age = f", oldest unconsumed record {last.lag_s:.1f}s old" if last.lag_s is not None else ""
    if n >= th.stall_polls and span >= th.stall_min_seconds:
        what = f"lag {last.lag}, committed offset {last.committed} not moving for {span:.1f}s over {n} polls{age}"
        if members == 0:
            return STOPPED, f"no active members; {what}", unchanged_s
        if span >= th.stop_seconds:
            return STOPPED, f"{what} (>= {th.stop_seconds:g}s)", unchanged_s
        return STALLED, what, unchanged_s
    consecutive = _trailing(points, lambda p: True)
    if (len(consecutive) == 1 and members == 0 and last.lag_s is not None and last.lag_s >= th.stop_seconds):
        return STOPPED, f"no active members; lag {last.lag}{age}", unchanged_s
    recent = consecutive[-th.warn_polls:]
    if (len(recent) == th.warn_polls and all(p.lag > 0 for p in recent)
            and all(b.lag >= a.lag for a, b in zip(recent, recent[1:])) and recent[-1].lag > recent[0].lag
            and (last.lag_s is None or last.lag_s >= th.warn_min_lag_seconds)):
        return (WARNING, f"lag growing over {len(recent)} polls: {recent[0].lag} -> {last.lag}{age}",
                unchanged_s)
    if len(consecutive) == 1:
        return OK, f"lag {last.lag}{age}; one reading, movement not judged yet", unchanged_s
    if consecutive[-2].committed != last.committed:
        return OK, f"lag {last.lag}{age}, committed offset moving", unchanged_s
    return OK, f"lag {last.lag}{age}, new records since the last poll", unchanged_s


def _partition_report(obs: PartitionObs, snap: Snapshot, window: Sequence[Snapshot], g: GroupObs,
                      th: Thresholds) -> PartitionReport:
    lag, clamped = lag_records(obs)
    lag_s = lag_seconds(obs, snap.taken_at)
    note = None
    if lag_s is None and lag:
        note = obs.lookup_note or "oldest unconsumed record not read"
    common = dict(topic=obs.topic, partition=obs.partition, committed=obs.committed, end_offset=obs.end,
                  high_watermark=obs.hwm, lag_records=lag, lag_seconds=lag_s, clamped=clamped,
                  lag_seconds_note=note)
    if obs.error is not None or (obs.committed is not None and obs.end is None):
        err = obs.error or "end offset unknown"
        return PartitionReport(**common, status=ERROR, reason=err, error=err)
    if obs.committed is None:
        return PartitionReport(**common, status=NO_COMMIT, reason="assigned, no committed offset yet")
    status, reason, unchanged_s = judge_partition(_history(window, g.group, obs.key), g.members, th)
    if clamped:
        reason = f"committed offset {obs.committed} beyond end offset {obs.end}: lag clamped to 0; {reason}"
    return PartitionReport(**common, status=status, reason=reason, committed_unchanged_s=unchanged_s)


def _group_report(g: GroupObs, snap: Snapshot, window: Sequence[Snapshot], th: Thresholds) -> GroupReport:
    parts = tuple(_partition_report(obs, snap, window, g, th)
                  for _, obs in sorted(g.partitions.items()))
    known = [p for p in parts if p.lag_records is not None and p.status != ERROR]
    lag_total = sum(p.lag_records for p in known)
    secs = [p.lag_seconds for p in known if p.lag_seconds is not None]
    unknown_s = sum(1 for p in known if p.lag_seconds is None)
    no_commit = sum(1 for p in parts if p.status == NO_COMMIT)
    common = dict(group=g.group, state=g.state, members=g.members, lag_records=lag_total,
                  max_lag_seconds=max(secs) if secs else None, partitions=parts,
                  partitions_without_commit=no_commit, lag_seconds_unknown=unknown_s)
    if g.error is not None:
        return GroupReport(**common, status=ERROR, reason=g.error, error=g.error)
    if not parts:
        return GroupReport(**common, status=OK, reason="no committed offsets")
    worst = max(SEVERITY[p.status] for p in parts)
    if worst == 0:
        reason = "caught up" if lag_total == 0 else f"lag {lag_total}, no partition stalled"
        if no_commit:
            reason += f"; {no_commit} partition(s) without commit"
        return GroupReport(**common, status=OK, reason=reason)
    bad = [p for p in parts if SEVERITY[p.status] == worst]
    status = bad[0].status
    first = bad[0]
    reason = f"{len(bad)} partition(s) {status}, e.g. {first.topic}[{first.partition}]: {first.reason}"
    return GroupReport(**common, status=status, reason=reason)


def evaluate(window: Sequence[Snapshot], thresholds: Thresholds | None = None) -> Report:
    """Judge the latest snapshot of `window` (oldest first) against its history."""
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
    reports = {name: _group_report(g, snap, window, th) for name, g in snap.groups.items()}
    # groups seen earlier in the window that are gone now: an explicit DELETED state while the window remembers them
    for earlier in reversed(window[:-1]):
        if earlier.error is None:
            for name in earlier.groups.keys() - reports.keys():
                reports[name] = GroupReport(name, OK, "no longer on the cluster (deleted)", DELETED, 0, 0, None)
    return Report(snap.taken_at, snap.duration_s, tuple(reports[n] for n in sorted(reports)), th, len(window))

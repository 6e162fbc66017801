"""When did the end offset pass a given offset? A bounded table of (time, end offset) samples per partition.

The lag monitor reads no record (its principal has no READ on any data topic), so it cannot look up the
timestamp of the oldest unconsumed record. It dates offsets instead: every poll records each partition's end
offset (the last stable offset) with the poll time. The record at offset `c` became readable when the end
offset first passed `c`, i.e. between the last sample with end <= c and the first sample with end > c; the
age of the oldest unconsumed record is `now` minus that moment, interpolated linearly between the two samples
(end offsets assumed to grow at a constant rate in between) and bounded by them.

Where the samples do not reach back far enough (the committed offset is older than the oldest sample: a fresh
monitor, a one-shot `liaison lag`, a reset table) the age is only known to be at least `now - oldest sample`:
kind AT_LEAST, flagged as estimated, never extrapolated beyond what was seen. History before the first poll
can be filled in from the broker's time index (ListOffsets by timestamp: "the first offset whose record
timestamp is >= T", a DESCRIBE operation, no READ): see `plan_history` / `plan_refine` / `add_index`; those
samples date a record by its own timestamp rather than by when the monitor first saw it.

A partition's samples are reset when its end offset goes backwards (topic deleted and re-created, truncation)
or its topic id changes. Pure: no Kafka, no clock (every time is passed in, epoch seconds). Not thread-safe:
one owner (the monitor) updates it; `evaluate` only reads it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from operations.lag.model import Snapshot

Key = tuple[str, int]

#: How an age was obtained.
EXACT = "exact"  # measured: 0 when caught up
INTERPOLATED = "interpolated"  # between two samples: `seconds` estimated, `low`..`high` certain
AT_LEAST = "at_least"  # older than every sample: `seconds` == `low`, a lower bound (the table's span)
AT_MOST = "at_most"  # no sample, only an upper bound from the consumer's own figures
AGE_KINDS = (EXACT, INTERPOLATED, AT_LEAST, AT_MOST)

#: Record ages probed first in the broker's time index (5 s doubling up to ~7.6 days), all in one round.
HISTORY_AGES = tuple(5.0 * 2 ** k for k in range(18))


@dataclass(frozen=True)
class Age:
    """How long the oldest unconsumed record has been waiting, seconds."""

    seconds: float
    low: float
    #: upper bound; None when unbounded (AT_LEAST)
    high: float | None
    kind: str

    @property
    def estimated(self) -> bool:
        return self.kind != EXACT

    def text(self) -> str:
        """`12.3` (exact), `~12.3` (interpolated), `≥300.0` (at least), `≤40.0` (at most)."""
        prefix = {EXACT: "", INTERPOLATED: "~", AT_LEAST: "≥", AT_MOST: "≤"}[self.kind]
        return f"{prefix}{self.seconds:.1f}"


ZERO = Age(0.0, 0.0, 0.0, EXACT)


class _Partition:
    __slots__ = ("times", "ends", "topic_id", "last_seen", "indexed", "resets")

    def __init__(self, topic_id: str | None):
        self.times: list[float] = []
        self.ends: list[int] = []
        self.topic_id = topic_id
        self.last_seen = float("-inf")
        #: the time index was asked about history before the first sample (since the last reset)
        self.indexed = False
        self.resets = 0


class EndOffsetTable:
    """(time, end offset) samples per (topic, partition): times strictly increasing, ends non-decreasing."""

    def __init__(self, max_samples: int = 128, forget_after_s: float = 3600.0):
        if max_samples < 3:
            raise ValueError("max_samples must be >= 3")
        self.max_samples = max_samples
        self.forget_after_s = forget_after_s
        self._parts: dict[Key, _Partition] = {}

    # ------------------------------------------------------------------ reading

    def __contains__(self, key: Key) -> bool:
        return key in self._parts and bool(self._parts[key].times)

    def __len__(self) -> int:
        return len(self._parts)

    def samples(self, key: Key) -> list[tuple[float, int]]:
        p = self._parts.get(key)
        return list(zip(p.times, p.ends)) if p else []

    def resets(self, key: Key) -> int:
        p = self._parts.get(key)
        return p.resets if p else 0

    def span(self, key: Key, now: float) -> float | None:
        """Seconds from the oldest sample to `now`; None without samples."""
        p = self._parts.get(key)
        return now - p.times[0] if p and p.times else None

    def bracket(self, key: Key, offset: int) -> tuple[float | None, float] | None:
        """(after, by): the end offset passed `offset` after `after` and by `by` (epoch s). `after` is None when
        it had passed it already at the oldest sample. None when no sample shows the end beyond `offset`."""
        p = self._parts.get(key)
        if not p or not p.ends or p.ends[-1] <= offset:
            return None
        i = bisect.bisect_right(p.ends, offset)  # first sample with end > offset
        return (p.times[i - 1] if i > 0 else None), p.times[i]

    def age(self, key: Key, offset: int, now: float) -> Age | None:
        """Age at `now` of the record at `offset` (for a group committed at `offset`: its oldest unconsumed
        record): `now` minus the moment the end offset first passed `offset`. INTERPOLATED between the two
        samples around that moment, AT_LEAST (the table's span) when the end had passed it at the oldest sample
        already; None when no sample shows the end beyond `offset` (nothing to date)."""
        p = self._parts.get(key)
        if not p or not p.ends or p.ends[-1] <= offset:
            return None
        i = bisect.bisect_right(p.ends, offset)
        t_hi, e_hi = p.times[i], p.ends[i]
        if i == 0:
            low = max(0.0, now - t_hi)
            return Age(low, low, None, AT_LEAST)
        t_lo, e_lo = p.times[i - 1], p.ends[i - 1]
        # end(t) linear between the samples; it passes `offset` when it reaches offset + 1
        t = t_lo + (offset + 1 - e_lo) / (e_hi - e_lo) * (t_hi - t_lo)
        low, high = max(0.0, now - t_hi), max(0.0, now - t_lo)
        return Age(min(max(now - t, low), high), low, high, INTERPOLATED)

    # ------------------------------------------------------------------ polls

    def record(self, key: Key, t: float, end: int, topic_id: str | None = None) -> bool:
        """Add a poll's end offset at time `t`. Returns True when the partition's samples were reset first
        (end offset went backwards, or another topic id: the topic was re-created)."""
        p = self._parts.get(key)
        reset = False
        if p is None:
            p = self._parts[key] = _Partition(topic_id)
        elif (topic_id is not None and p.topic_id is not None and topic_id != p.topic_id) or (
                p.ends and end < p.ends[-1]):
            resets = p.resets + 1
            p = self._parts[key] = _Partition(topic_id)
            p.resets = resets
            reset = True
        if topic_id is not None:
            p.topic_id = topic_id
        p.last_seen = max(p.last_seen, t)
        times, ends = p.times, p.ends
        if times and t <= times[-1]:
            return reset  # not later than what we have: nothing new
        if len(ends) >= 2 and ends[-1] == end and ends[-2] == end:
            times[-1] = t  # a plateau keeps its first and its last sighting
        else:
            times.append(t)
            ends.append(end)
        self._thin(p)
        return reset

    def record_snapshot(self, snap: Snapshot) -> list[Key]:
        """Record every readable end offset of a poll (once per partition, whatever the number of groups) and
        forget partitions not seen for `forget_after_s`. Returns the partitions that were reset."""
        if snap.error is not None:
            return []
        reset: list[Key] = []
        seen: set[Key] = set()
        for g in snap.groups.values():
            for key, obs in g.partitions.items():
                if key in seen or obs.end is None or obs.error is not None:
                    continue
                seen.add(key)
                if self.record(key, snap.taken_at, obs.end, obs.topic_id):
                    reset.append(key)
        cutoff = snap.taken_at - self.forget_after_s
        for key in [k for k, p in self._parts.items() if p.last_seen < cutoff]:
            del self._parts[key]
        return reset

    @classmethod
    def from_window(cls, window: Iterable[Snapshot], **kwargs) -> EndOffsetTable:
        """A table from the snapshots alone (what `evaluate` uses when given none)."""
        table = cls(**kwargs)
        for snap in window:
            table.record_snapshot(snap)
        return table

    def _thin(self, p: _Partition) -> None:
        """Over `max_samples`: drop the inner sample whose removal costs the least relative precision: the one
        whose neighbours are closest in time relative to its age (the bracket it leaves, divided by how old
        the records in it are). Old samples thin out first; the spacing tends to grow with age (about
        geometric), so recent records stay dated within a poll interval. The first and the last sample stay:
        the span never shrinks. Dropping a sample widens the bracket around it, never makes it wrong."""
        times, ends = p.times, p.ends
        while len(times) > self.max_samples:
            newest = times[-1]
            best, best_cost = 1, float("inf")
            for i in range(1, len(times) - 1):
                cost = (times[i + 1] - times[i - 1]) / (newest - times[i])
                if cost < best_cost:
                    best, best_cost = i, cost
            del times[best]
            del ends[best]

    # ------------------------------------------------------------------ the broker's time index

    def needs_history(self, key: Key, offset: int) -> bool:
        """The table cannot date `offset` (older than the oldest sample) and the time index was not asked yet."""
        p = self._parts.get(key)
        return bool(p and p.ends and not p.indexed and offset < p.ends[0])

    def plan_history(self, wants: Iterable[tuple[Key, int]], now: float,
                     ages: tuple[float, ...] = HISTORY_AGES) -> list[dict[Key, float]]:
        """First round of time-index requests: for every partition with an offset older than its oldest sample
        (and not asked since its last reset), one request per age in `ages`: {partition: now - age}. The
        partitions are marked as asked."""
        keys = sorted({k for k, o in wants if self.needs_history(k, o)})
        for k in keys:
            self._parts[k].indexed = True
        if not keys:
            return []
        oldest = {k: self._parts[k].times[0] for k in keys}
        out = []
        for a in ages:
            req = {k: now - a for k in keys if now - a < oldest[k]}
            if req:
                out.append(req)
        return out

    def plan_refine(self, wants: Iterable[tuple[Key, int]], now: float, min_resolution_s: float = 1.0,
                    relative_resolution: float = 0.02) -> list[dict[Key, float]]:
        """Next round: for each (partition, offset) whose bracket is wider than max(min_resolution_s,
        relative_resolution * age), one probe inside the bracket, at the interpolated moment kept within its
        middle half (so a round shrinks the bracket to at most 3/4, and lands close on evenly spread records).
        At most one probe per partition per request (a ListOffsets request asks one question per partition),
        so several offsets of one partition (several groups) spread over several requests."""
        lanes: dict[Key, list[float]] = {}
        for key, offset in sorted(set(wants)):
            b = self.bracket(key, offset)
            if b is None or b[0] is None:
                continue
            after, by = b
            width = by - after
            if width <= max(min_resolution_s, relative_resolution * max(0.0, now - after)):
                continue
            age = self.age(key, offset, now)
            guess = now - age.seconds if age is not None else (after + by) / 2
            probe = min(max(guess, after + width / 4), by - width / 4)
            if probe not in lanes.setdefault(key, []):
                lanes[key].append(probe)
        out: list[dict[Key, float]] = []
        for key, probes in lanes.items():
            for i, t in enumerate(probes):
                if i == len(out):
                    out.append({})
                out[i][key] = t
        return out

    def add_index(self, key: Key, asked: float, found: tuple[int, int] | None) -> int:
        """Add what the time index answered for "first offset with a timestamp >= `asked`": `found` =
        (offset, its timestamp in ms), or None when no readable record is that recent (every record below the
        end offset is older). Returns how many samples were added (a sample contradicting the table - record
        timestamps out of order, a transaction committed later - is dropped)."""
        p = self._parts.get(key)
        if not p or not p.ends:
            return 0
        if found is None:
            points = [(asked, p.ends[-1])]  # records before the current end are all older than `asked`
        else:
            offset, ts_ms = found
            points = [(asked, offset)]  # records before `offset` are older than `asked`
            if ts_ms is not None and ts_ms >= 0 and ts_ms / 1000.0 > asked:
                points.append((ts_ms / 1000.0, offset + 1))  # the record at `offset` existed at its timestamp
        added = 0
        for t, e in points:
            added += self._insert(p, t, e)
        if added:
            self._compress(p)
            self._thin(p)
        return added

    @staticmethod
    def _compress(p: _Partition) -> None:
        """A plateau (equal end offsets) keeps only its first and its last sample."""
        times, ends = p.times, p.ends
        keep = [i for i in range(len(ends))
                if i == 0 or i == len(ends) - 1 or not (ends[i - 1] == ends[i] == ends[i + 1])]
        if len(keep) < len(ends):
            p.times[:] = [times[i] for i in keep]
            p.ends[:] = [ends[i] for i in keep]

    @staticmethod
    def _insert(p: _Partition, t: float, e: int) -> int:
        times, ends = p.times, p.ends
        if t >= times[-1]:
            return 0  # the polls know better from here on
        i = bisect.bisect_left(times, t)
        if i < len(times) and times[i] == t:
            return 0
        if (i > 0 and ends[i - 1] > e) or ends[i] < e:
            return 0
        times.insert(i, t)
        ends.insert(i, e)
        return 1


def bounded_by_consumer(age: Age | None, upper_s: float | None) -> Age | None:
    """Tighten an age with the consumer's own figure: `upper_s` = now - timestamp of the last record it
    committed. The oldest unconsumed record comes after that one, so (timestamps in offset order) it has
    waited at most `upper_s`. Only the upper bound changes; a bound below the lower one (clocks that
    disagree) lowers both."""
    if upper_s is None:
        return age
    upper_s = max(0.0, upper_s)
    if age is None:
        return Age(upper_s, 0.0, upper_s, AT_MOST)
    if age.kind == EXACT:
        return age
    high = upper_s if age.high is None else min(age.high, upper_s)
    low = min(age.low, high)
    return Age(min(max(age.seconds, low), high), low, high, age.kind)


def wants_of(snap: Snapshot) -> set[tuple[Key, int]]:
    """(partition, committed offset) of every group-partition of a poll with offset lag > 0."""
    out: set[tuple[Key, int]] = set()
    if snap.error is not None:
        return out
    for g in snap.groups.values():
        for key, obs in g.partitions.items():
            if (obs.committed is not None and obs.end is not None and obs.error is None
                    and obs.end > obs.committed):
                out.add((key, obs.committed))
    return out


def apply_index(table: EndOffsetTable, requests: list[dict[Key, float]],
                answers: list[Mapping[Key, tuple[int, int] | None]]) -> int:
    """Feed one round of time-index answers (same order as `requests`; a partition missing from an answer
    could not be asked: nothing learnt)."""
    added = 0
    for req, ans in zip(requests, answers):
        for key, asked in req.items():
            if key in ans:
                added += table.add_index(key, asked, ans[key])
    return added

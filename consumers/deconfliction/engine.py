"""The deconfliction step: (state, records, now) -> (state, alerts to emit, changelog). No Kafka, no clock.

    records ("AirTrack" / "RUS/AirMissionPlan" ..., decoded dict)
        -> parse (model)           unusable records counted, skipped
        -> picture.apply           the objects that changed (dirty), but for tracks flying the path their last
                                   evaluated report predicted (dead reckoning, picture.evaluate)
        -> picture.expire(now)     stale tracks: dirty too
        -> pairs to look at        each dirty object with the other side's objects sharing an index cell, and
                                   every pair with an open alert that involves a dirty object
        -> conflicts of each pair  plan/plan, track/plan, track/track (conflicts)
        -> reconcile each pair     NEW / UPDATED / CLEARED (lifecycle)
        -> sweep                   open alerts of other pairs whose window has ended: CLEARED (PASSED)

The service calls :meth:`State.step` (in place: one state per service, rebuilt from the changelog after a
restart) or :func:`evaluate` (the same on a copy, leaving its input unchanged). ``StepResult.changelog`` is what
changed, key -> JSON-able value or None (a tombstone): ``obj/<side>/<plan|track>/<id>`` and ``alert/<alert id>``;
written to a compacted topic in the same transaction as the alerts and the consumed offsets, it rebuilds the state
with :meth:`State.from_changelog`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consumers.deconfliction.conflicts import (PLAN_PLAN, TRACK_PLAN, Conflict, conflicts_of_pieces,
                                                track_track)
from consumers.deconfliction.lifecycle import CLEARED, PASSED, Emission, OpenAlert, Party, reconcile
from consumers.deconfliction.model import Plan, RecordError, Track, parse
from consumers.deconfliction.params import Params
from consumers.deconfliction.picture import Picture, side_of

__all__ = ["State", "StepResult", "evaluate"]

Pair = tuple[str, str]  # (our object key, their object key)


@dataclass
class StepResult:
    emissions: list[Emission]
    changelog: dict[str, dict | None]
    stats: Counter = field(default_factory=Counter)   # records, skipped, stale, reckoned, pairs, piece_pairs,
    #                                                  expired


def _party(obj: Plan | Track) -> Party:
    if isinstance(obj, Plan):
        return Party("PLAN", obj.callsign, obj.sortie_id, None, obj.classification, obj.releasable_to, obj.message_id)
    return Party("TRACK", obj.callsign, obj.sortie_id, obj.track_id, obj.classification, obj.releasable_to,
                 obj.message_id)


class State:
    def __init__(self, params: Params | None = None):
        self.params = params or Params()
        self.picture = Picture(self.params)
        self.alerts: dict[str, OpenAlert] = {}
        self._by_pair: dict[Pair, set[str]] = defaultdict(set)
        self._by_object: dict[str, set[Pair]] = defaultdict(set)

    # ------------------------------------------------------------------------------------------ the step

    def step(self, records: Iterable[tuple[str, Mapping]], now_ms: int) -> StepResult:
        stats: Counter = Counter()
        log: dict[str, dict | None] = {}
        dirty: set[str] = set()
        for source, record in records:
            stats["records"] += 1
            try:
                obj = parse(source, dict(record))
            except RecordError:
                stats["skipped"] += 1
                continue
            key = self.picture.apply(obj)
            if key is None:
                stats["stale"] += 1
                continue
            if self.picture.evaluate(key, now_ms):
                dirty.add(key)
            else:
                stats["reckoned"] += 1
            log[f"obj/{key}"] = self.picture.entry(key)
        for key in self.picture.expire(now_ms):
            stats["expired"] += 1
            dirty.add(key)
            log[f"obj/{key}"] = None

        pairs: dict[Pair, set[tuple[int, int]]] = defaultdict(set)
        for key in dirty:
            mine_is_ours = side_of(key) is None
            for other, piece_pairs in self.picture.candidates(key).items():
                if mine_is_ours:
                    pairs[(key, other)].update(piece_pairs)
                else:
                    pairs[(other, key)].update((j, i) for i, j in piece_pairs)
            for pair in self._by_object.get(key, ()):
                pairs.setdefault(pair, set())

        emissions: list[Emission] = []
        for pair in sorted(pairs):
            stats["pairs"] += 1
            stats["piece_pairs"] += len(pairs[pair])
            self._reconcile(pair, self._conflicts(pair, sorted(pairs[pair]), now_ms), now_ms, emissions, log)
        for alert_id in sorted(self.alerts):  # the sweep: passed alerts of pairs nothing touched
            alert = self.alerts[alert_id]
            if alert.conflict.end_ms < now_ms:
                self._close(alert)
                log[f"alert/{alert_id}"] = None
                emissions.append(Emission(CLEARED, OpenAlert(alert.alert_id, alert.revision + 1, alert.conflict,
                                                             alert.ours, alert.theirs), PASSED))
        return StepResult(emissions, log, stats)

    def _conflicts(self, pair: Pair, piece_pairs: list[tuple[int, int]], now_ms: int) -> list[Conflict] | None:
        """Conflicts of a pair now; None when one of its objects is gone."""
        ours, theirs = (self.picture.objects.get(k) for k in pair)
        if ours is None or theirs is None:
            return None
        if isinstance(ours, Track) and isinstance(theirs, Track):
            return track_track(ours, theirs, now_ms, self.params) if piece_pairs else []
        kind = PLAN_PLAN if isinstance(ours, Plan) and isinstance(theirs, Plan) else TRACK_PLAN
        pa, pb = self.picture.pieces(pair[0], now_ms), self.picture.pieces(pair[1], now_ms)
        return conflicts_of_pieces(kind, pair[0], pair[1], [(pa[i], pb[j]) for i, j in piece_pairs], now_ms,
                                   self.params)

    def _reconcile(self, pair: Pair, found: list[Conflict] | None, now_ms: int, emissions: list[Emission],
                   log: dict) -> None:
        open_alerts = [self.alerts[a] for a in sorted(self._by_pair.get(pair, ()))]
        if not open_alerts and not found:
            return
        objs = [self.picture.objects.get(k) for k in pair]
        parties = [(c, _party(objs[0]), _party(objs[1])) for c in found or ()]
        after, out = reconcile(open_alerts, parties, now_ms, self.params, withdrawn=found is None)
        for alert in open_alerts:
            self._close(alert)
        for alert in after:
            self._open(alert)
        for e in out:
            log[f"alert/{e.alert.alert_id}"] = None if e.status == CLEARED else e.alert.to_dict()
        emissions.extend(out)

    def _open(self, alert: OpenAlert) -> None:
        pair = (alert.conflict.ours, alert.conflict.theirs)
        self.alerts[alert.alert_id] = alert
        self._by_pair[pair].add(alert.alert_id)
        for k in pair:
            self._by_object[k].add(pair)

    def _close(self, alert: OpenAlert) -> None:
        pair = (alert.conflict.ours, alert.conflict.theirs)
        self.alerts.pop(alert.alert_id, None)
        ids = self._by_pair.get(pair)
        if ids is not None:
            ids.discard(alert.alert_id)
            if not ids:
                del self._by_pair[pair]
                for k in pair:
                    pairs = self._by_object.get(k)
                    if pairs is not None:
                        pairs.discard(pair)
                        if not pairs:
                            del self._by_object[k]

    # ------------------------------------------------------------------------------------------ persistence

    def to_changelog(self) -> dict[str, dict]:
        """The whole state as changelog entries (what a compacted changelog topic holds after compaction)."""
        out: dict[str, dict] = {f"obj/{k}": v for k, v in self.picture.to_entries().items()}
        out.update({f"alert/{a}": alert.to_dict() for a, alert in self.alerts.items()})
        return out

    @classmethod
    def from_changelog(cls, entries: Iterable[tuple[str, dict | None]] | Mapping[str, dict | None],
                       params: Params | None = None) -> State:
        """Rebuild from changelog entries in log order (the last value of a key wins; None deletes it)."""
        items = entries.items() if isinstance(entries, Mapping) else entries
        latest: dict[str, dict] = {}
        for key, value in items:
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
        state = cls(params)
        state.picture = Picture.from_entries({k[4:]: v for k, v in latest.items() if k.startswith("obj/")},
                                             state.params)
        for key, value in latest.items():
            if key.startswith("alert/"):
                state._open(OpenAlert.from_dict(value))
        return state

    def copy(self) -> State:
        return State.from_changelog(self.to_changelog(), self.params)


def evaluate(state: State, records: Iterable[tuple[str, Mapping]], now_ms: int) -> tuple[State, StepResult]:
    """Pure: a new state and the result; ``state`` is left as it was."""
    new = state.copy()
    return new, new.step(records, now_ms)

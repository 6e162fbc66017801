"""The live picture: every side's plans and tracks, with a spatial index of their pieces, updated by records.

* A plan replaces the earlier version of the same sortie (same side and sortie_id) unless it is older
  (label.created_at before the kept one's: a late duplicate). CANCELLED and COMPLETED plans are removed.
* A track replaces the earlier report of the same track (side and track_id) unless its time is older. Tracks whose
  last report is older than ``track_max_age_s`` are expired by :meth:`Picture.expire`.
* The clock is passed in; nothing here reads it.

Candidates: :meth:`Picture.candidates` gives, for one object, the other side's objects whose pieces share an index
cell with one of its pieces (boxes widened by half the lateral separation each and bands by half the vertical
separation, so two pieces closer than both minima always share a cell), with the piece pairs to compare. Only ours against a partner's: never ours against
ours, never one partner against another.

Dead reckoning: :meth:`Picture.evaluate` says whether a changed object's pairs must be evaluated again. A plan's
always are; a track's are when its report leaves the path of its *basis* (the report its pairs were last evaluated
with) by more than ``track_tolerance_m`` (now or at the end of the look-ahead) or ``track_tolerance_ft``, or the
step of its path has changed; otherwise the report replaces the last one (its position, its expiry) and its alerts
stand as they are. The basis is part of the object's entry, so a rebuilt picture decides the same.

Serializable: :meth:`to_entries` / :meth:`from_entries` (object key -> JSON-able dict); pieces and index are
derived and rebuilt.
"""

from __future__ import annotations

from collections import defaultdict

from consumers.deconfliction import geometry as geo
from consumers.deconfliction.conflicts import Piece, plan_pieces, track_at, track_piece, track_span
from consumers.deconfliction.index import GridIndex, bbox_of, widen
from consumers.deconfliction.model import ACTIVE_STATUSES, Plan, Track
from consumers.deconfliction.params import Params

__all__ = ["Picture", "side_of"]

Obj = Plan | Track


def side_of(key: str) -> str | None:
    """Side of an object key: None (ours) or the partner code."""
    return key.split("/", 1)[0] or None


class Picture:
    def __init__(self, params: Params):
        self.params = params
        self.objects: dict[str, Obj] = {}
        self._pieces: dict[str, list[Piece]] = {}   # plans only
        self._track_pieces: dict[str, tuple[int, Piece]] = {}   # tracks: (now_ms, piece) of the last query
        self._index = GridIndex(params.cell_deg, params.layer_ft)
        self._piece_count: dict[str, int] = {}
        self._side: dict[str, str | None] = {}
        self._basis: dict[str, tuple[Track, int]] = {}   # tracks: (report last evaluated, start of its step)

    # ------------------------------------------------------------------------------------------ updates

    def apply(self, obj: Obj) -> str | None:
        """Take one parsed record in. Returns the key of the object it changed (added, replaced or removed), or
        None when it changed nothing (an older version, or removing what is not there)."""
        key = obj.key
        old = self.objects.get(key)
        if isinstance(obj, Plan):
            if old is not None and obj.version_ms < old.version_ms:
                return None
            if obj.status not in ACTIVE_STATUSES:
                return key if self.remove(key) else None
        elif old is not None and obj.time_ms < old.time_ms:
            return None
        self._put(obj)
        return key

    def expire(self, now_ms: int) -> list[str]:
        """Remove the tracks last reported more than ``track_max_age_s`` before now; their keys."""
        limit = now_ms - self.params.track_max_age_s * 1000
        gone = [k for k, o in self.objects.items() if isinstance(o, Track) and o.time_ms < limit]
        for k in gone:
            self.remove(k)
        return gone

    def remove(self, key: str) -> bool:
        if self.objects.pop(key, None) is None:
            return False
        self._pieces.pop(key, None)
        self._track_pieces.pop(key, None)
        self._side.pop(key, None)
        self._basis.pop(key, None)
        for i in range(self._piece_count.pop(key, 0)):
            self._index.remove((key, i))
        return True

    def _put(self, obj: Obj) -> None:
        """Add or replace: the index entries of a replaced object are moved (not removed and added again)."""
        key = obj.key
        self._track_pieces.pop(key, None)
        self._pieces.pop(key, None)
        self.objects[key] = obj
        self._side[key] = side_of(key)
        half, up = self.params.lateral_m / 2, self.params.vertical_ft / 2
        if isinstance(obj, Plan):
            pieces = plan_pieces(obj, self.params)
            self._pieces[key] = pieces
            boxes = [(widen(bbox_of((p.p0, p.p1)), half), (p.floor_ft - up, p.ceiling_ft + up)) for p in pieces]
        else:
            boxes = [(widen(bbox_of(self._track_reach(obj)), half), (obj.altitude_ft - up, obj.altitude_ft + up))]
        for i, (box, band) in enumerate(boxes):
            self._index.insert((key, i), box, band)
        for i in range(len(boxes), self._piece_count.get(key, 0)):
            self._index.remove((key, i))
        self._piece_count[key] = len(boxes)

    def evaluate(self, key: str, now_ms: int) -> bool:
        """Whether the pairs of the object at ``key`` (just changed) are to be evaluated at ``now_ms``; when they are,
        a track's report becomes its basis."""
        obj = self.objects.get(key)
        if not isinstance(obj, Track):
            return True
        p = self.params
        step = track_span(now_ms, p)[0]
        basis = self._basis.get(key)
        if basis is not None and basis[1] == step and self._reckoned(basis[0], obj, now_ms):
            return False
        self._basis[key] = (obj, step)
        return True

    def _reckoned(self, basis: Track, t: Track, now_ms: int) -> bool:
        """``t`` flies the path ``basis`` predicts, within the tolerances."""
        p = self.params
        if abs(t.altitude_ft - basis.altitude_ft) > p.track_tolerance_ft:
            return False
        end = now_ms + p.lookahead_s * 1000
        return all(geo.distance_m(track_at(basis, at), track_at(t, at)) <= p.track_tolerance_m for at in (now_ms, end))

    def entry(self, key: str) -> dict | None:
        """The JSON-able entry of the object at ``key`` (None when it is gone), its basis included."""
        obj = self.objects.get(key)
        if obj is None:
            return None
        out = {"type": type(obj).__name__, **obj.to_dict()}
        basis = self._basis.get(key)
        if basis is not None:
            out["basis"] = {**basis[0].to_dict(), "step_ms": basis[1]}
        return out

    def _track_reach(self, t: Track) -> list[tuple[float, float]]:
        """Where a track can be on any path evaluated while it is live: from one step before its report to the end
        of the look-ahead (plus a step) of the last moment before it expires."""
        p = self.params
        t0 = t.time_ms - p.track_step_s * 1000
        t1 = t.time_ms + (p.track_max_age_s + p.lookahead_s + p.track_step_s) * 1000
        return [track_at(t, t0), track_at(t, t1)]

    # ------------------------------------------------------------------------------------------ queries

    def pieces(self, key: str, now_ms: int) -> list[Piece]:
        obj = self.objects.get(key)
        if obj is None:
            return []
        if isinstance(obj, Track):
            cached = self._track_pieces.get(key)
            if cached is None or cached[0] != now_ms:
                cached = self._track_pieces[key] = (now_ms, track_piece(obj, now_ms, self.params))
            return [cached[1]]
        return self._pieces[key]

    def candidates(self, key: str) -> dict[str, list[tuple[int, int]]]:
        """Other-side object key -> the (own piece, their piece) index pairs sharing a cell."""
        mine = self._side.get(key)
        sides = self._side
        out: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for i in range(self._piece_count.get(key, 0)):
            for okey, j in self._index.near((key, i)):
                theirs = sides[okey]
                if theirs == mine or (mine is not None and theirs is not None):
                    continue
                out[okey].add((i, j))
        return {k: sorted(v) for k, v in out.items()}

    # ------------------------------------------------------------------------------------------ state

    def to_entries(self) -> dict[str, dict]:
        return {k: self.entry(k) for k in self.objects}

    @classmethod
    def from_entries(cls, entries: dict[str, dict], params: Params) -> Picture:
        pic = cls(params)
        for value in entries.values():
            value = dict(value)
            kind = value.pop("type")
            basis = value.pop("basis", None)
            obj = Plan.from_dict(value) if kind == "Plan" else Track.from_dict(value)
            pic._put(obj)
            if basis is not None:
                step = basis.pop("step_ms")
                pic._basis[obj.key] = (Track.from_dict(basis), step)
        return pic

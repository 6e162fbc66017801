"""The live picture: every side's plans and tracks, with a spatial index of their pieces, updated by records.

* A plan replaces the earlier version of the same sortie (same side and sortie_id) unless it is older
  (label.created_at before the kept one's: a late duplicate). CANCELLED and COMPLETED plans are removed.
* A track replaces the earlier report of the same track (side and track_id) unless its time is older. Tracks whose
  last report is older than ``track_max_age_s`` are expired by :meth:`Picture.expire`.
* The clock is passed in; nothing here reads it.

Candidates: :meth:`Picture.candidates` gives, for one object, the other side's objects whose pieces share an index
cell with one of its pieces (boxes widened by half the lateral separation each, so two pieces closer than the
separation always share a cell), with the piece pairs to compare. Only ours against a partner's: never ours against
ours, never one partner against another.

Serializable: :meth:`to_entries` / :meth:`from_entries` (object key -> JSON-able dict); pieces and index are
derived and rebuilt.
"""

from __future__ import annotations

from collections import defaultdict

from consumers.deconfliction.conflicts import Piece, plan_pieces, track_at, track_piece
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
        self._index = GridIndex(params.cell_deg)
        self._piece_count: dict[str, int] = {}

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
        for i in range(self._piece_count.pop(key, 0)):
            self._index.remove(f"{key}#{i}")
        return True

    def _put(self, obj: Obj) -> None:
        key = obj.key
        self.remove(key)
        self.objects[key] = obj
        half = self.params.lateral_m / 2
        if isinstance(obj, Plan):
            pieces = plan_pieces(obj, self.params)
            self._pieces[key] = pieces
            boxes = [widen(bbox_of((p.p0, p.p1)), half) for p in pieces]
        else:
            boxes = [widen(bbox_of(self._track_reach(obj)), half)]
        for i, box in enumerate(boxes):
            self._index.insert(f"{key}#{i}", box)
        self._piece_count[key] = len(boxes)

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
            return [track_piece(obj, now_ms, self.params)]
        return self._pieces[key]

    def candidates(self, key: str) -> dict[str, list[tuple[int, int]]]:
        """Other-side object key -> the (own piece, their piece) index pairs sharing a cell."""
        mine = side_of(key)
        out: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for i in range(self._piece_count.get(key, 0)):
            for other in self._index.near(f"{key}#{i}"):
                okey, _, j = other.rpartition("#")
                theirs = side_of(okey)
                if theirs == mine or (mine is not None and theirs is not None):
                    continue
                out[okey].add((i, int(j)))
        return {k: sorted(v) for k, v in out.items()}

    # ------------------------------------------------------------------------------------------ state

    def to_entries(self) -> dict[str, dict]:
        return {k: {"type": type(o).__name__, **o.to_dict()} for k, o in self.objects.items()}

    @classmethod
    def from_entries(cls, entries: dict[str, dict], params: Params) -> Picture:
        pic = cls(params)
        for value in entries.values():
            value = dict(value)
            kind = value.pop("type")
            pic._put(Plan.from_dict(value) if kind == "Plan" else Track.from_dict(value))
        return pic

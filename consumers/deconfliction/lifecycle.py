"""Alert lifecycle, pure: the conflicts found for one pair now, against the alerts that pair has open, give the
alerts to emit.

* NEW: a conflict that matches no open alert of its pair (same kind, same two objects). Its id is a UUID made
  from the kind, the message ids of the two records that raised it, the clock and its rank among the pair's new
  conflicts of this evaluation: stable over the alert's life (kept in the state), the same when the same records
  are evaluated at the same time again, and made of nothing the partner could not already know (not of our sortie
  id, which the partner only gets pseudonymised, nor of a counter whose gaps would tell withheld alerts).
* UPDATED: a matched alert whose geometry moved materially since it was last emitted (:func:`material`). The
  reference is the last *emitted* geometry, so a slow drift is told once it adds up, never per track report.
* CLEARED: an open alert matched by no conflict: PASSED when its window has ended, WITHDRAWN when one of its
  objects left the picture (plan cancelled, completed or replaced without it, track expired), else RESOLVED.
* Matching: conflicts of a pair in time order, each to the open alert whose window overlaps it most (or is
  nearest within the merge gap); one alert per conflict.

Each emitted alert has a revision (0 for NEW, +1 per emission), so (alert id, revision) names one emission.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, replace

from consumers.deconfliction import geometry as geo
from consumers.deconfliction.conflicts import Conflict
from consumers.deconfliction.params import Params

__all__ = ["CLEARED", "NEW", "UPDATED", "PASSED", "RESOLVED", "WITHDRAWN", "ALERT_NAMESPACE", "Emission",
           "OpenAlert", "Party", "material", "reconcile"]

NEW, UPDATED, CLEARED = "NEW", "UPDATED", "CLEARED"
PASSED, RESOLVED, WITHDRAWN = "PASSED", "RESOLVED", "WITHDRAWN"
ALERT_NAMESPACE = uuid.UUID("6f2b1c8e-5d0a-4c1e-9a57-2d6f0b9e4a31")


@dataclass(frozen=True)
class Party:
    """One side of an alert as the alert tells it: what the object was when the alert was last emitted."""

    object: str            # PLAN | TRACK
    callsign: str
    sortie_id: str | None
    track_id: str | None
    classification: str
    releasable_to: tuple[str, ...]
    message_id: str        # the record that last shaped the alert

    @classmethod
    def from_dict(cls, d: dict) -> Party:
        return cls(**{**d, "releasable_to": tuple(d["releasable_to"])})


@dataclass(frozen=True)
class OpenAlert:
    alert_id: str
    revision: int
    conflict: Conflict     # as last emitted
    ours: Party
    theirs: Party

    def to_dict(self) -> dict:
        return {"alert_id": self.alert_id, "revision": self.revision, "conflict": asdict(self.conflict),
                "ours": asdict(self.ours), "theirs": asdict(self.theirs)}

    @classmethod
    def from_dict(cls, d: dict) -> OpenAlert:
        c = dict(d["conflict"])
        c["centre"] = tuple(c["centre"])
        return cls(d["alert_id"], d["revision"], Conflict(**c), Party.from_dict(d["ours"]), Party.from_dict(d["theirs"]))


@dataclass(frozen=True)
class Emission:
    """One alert to emit."""

    status: str            # NEW | UPDATED | CLEARED
    alert: OpenAlert       # its geometry and parties as emitted
    reason: str | None = None  # CLEARED: PASSED | RESOLVED | WITHDRAWN

    @property
    def message_id(self) -> str:
        return str(uuid.uuid5(ALERT_NAMESPACE, f"{self.alert.alert_id}/{self.alert.revision}"))


def material(old: Conflict, new: Conflict, now_ms: int, params: Params) -> bool:
    """Has the geometry moved enough to tell again? Centre > centre_moved_m, radius > radius_changed_m, floor or
    ceiling > band_changed_ft, a window end, window start or CPA time > time_moved_s -- a time counts only when
    one of its two versions is still in the future (once a conflict has begun, its start moving is no news)."""
    if geo.distance_m(old.centre, new.centre) > params.centre_moved_m:
        return True
    if abs(old.radius_m - new.radius_m) > params.radius_changed_m:
        return True
    if max(abs(old.floor_ft - new.floor_ft), abs(old.ceiling_ft - new.ceiling_ft)) > params.band_changed_ft:
        return True
    limit = params.time_moved_s * 1000
    for a, b in ((old.start_ms, new.start_ms), (old.end_ms, new.end_ms), (old.cpa_ms, new.cpa_ms)):
        if (a is None) != (b is None):
            return True
        if a is not None and abs(a - b) > limit and max(a, b) > now_ms:
            return True
    return False


def _overlap(a: Conflict, b: Conflict) -> float:
    return min(a.end_ms, b.end_ms) - max(a.start_ms, b.start_ms)


def reconcile(open_alerts: list[OpenAlert], found: list[tuple[Conflict, Party, Party]], now_ms: int,
              params: Params, *, withdrawn: bool = False) -> tuple[list[OpenAlert], list[Emission]]:
    """One pair: its open alerts and the conflicts found now (each with the parties as they are now) ->
    (open alerts after, emissions). ``withdrawn``: one of the pair's objects has left the picture."""
    remaining = list(open_alerts)
    after: list[OpenAlert] = []
    out: list[Emission] = []
    gap = params.merge_gap_s * 1000
    rank = 0
    for conflict, ours, theirs in sorted(found, key=lambda f: (f[0].start_ms, f[0].end_ms)):
        best = max(remaining, key=lambda a: _overlap(a.conflict, conflict), default=None)
        if best is not None and _overlap(best.conflict, conflict) >= -gap:
            remaining.remove(best)
            if material(best.conflict, conflict, now_ms, params):
                alert = OpenAlert(best.alert_id, best.revision + 1, conflict, ours, theirs)
                out.append(Emission(UPDATED, alert))
            else:
                alert = best
            after.append(alert)
            continue
        alert_id = str(uuid.uuid5(ALERT_NAMESPACE,
                                  f"{conflict.kind}/{ours.message_id}/{theirs.message_id}/{now_ms}/{rank}"))
        rank += 1
        alert = OpenAlert(alert_id, 0, conflict, ours, theirs)
        after.append(alert)
        out.append(Emission(NEW, alert))
    for gone in remaining:
        reason = PASSED if gone.conflict.end_ms < now_ms else WITHDRAWN if withdrawn else RESOLVED
        out.append(Emission(CLEARED, replace(gone, revision=gone.revision + 1), reason))
    return after, out

"""Security labels of the simulated messages: classification, REL TO list and caveats, drawn per message type.

Labels: mostly ``RESTRICTED``/``CONFIDENTIAL``, some ``SECRET``, a few ``TOP_SECRET``; REL TO
lists such as ``FRA USA RUS``, ``FRA USA GBR``, ``FRA USA``, ``FRA RUS`` and national-only
``FRA`` (caveat ``SPECIAL FRANCE``). About 10-15 % of the records may be received by no
partner (``TOP_SECRET``, or a REL TO list naming neither ``RUS`` nor ``USA``).
"""

from __future__ import annotations

from typing import Any, Sequence

from producers.simulate.run import Run
from producers.simulate.weighted import Weighted

__all__ = ["Labels"]

_OWN_NATION = "FRA"

# Releasability (REL TO) lists and their weights; ~10 % name neither demo partner.
_RELEASABILITY: tuple[tuple[tuple[str, ...], float], ...] = (
    (("FRA", "USA", "RUS"), 56),
    (("FRA", "USA", "GBR"), 12),
    (("FRA", "USA"), 14),
    (("FRA", "RUS"), 8),
    (("FRA",), 5),
    (("FRA", "GBR"), 3),
    (("FRA", "GBR", "DEU"), 2),
)

# Classification weights per type: UNCLASSIFIED, RESTRICTED, CONFIDENTIAL, SECRET, TOP_SECRET.
_CLASSIFICATION_NAMES = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP_SECRET")
_CLASSIFICATION: dict[str, tuple[float, ...]] = {
    "AirMissionPlan": (0, 30, 45, 20, 5),
    "AirTrack": (5, 60, 25, 8, 2),
    "MaritimeTrack": (5, 55, 30, 8, 2),
    "StrikeReport": (0, 20, 50, 25, 5),
    "GroupLocationReport": (0, 15, 45, 32, 8),
    "ForeignFighterReport": (0, 10, 50, 32, 8),
    "LogisticsObservation": (10, 40, 40, 8, 2),
}


class Labels:
    """Draws the label of each message (from the run's generator), sentinel-marked in sentinel mode."""

    def __init__(self, run: Run):
        self.rng = run.rng
        self.sentinel_rng = run.sentinel_rng
        self.dt, self.uuid, self.sentinel, self.mark = run.dt, run.uuid, run.sentinel, run.mark
        self.releasability = Weighted(_RELEASABILITY)
        self.classification = {
            name: Weighted(list(zip(_CLASSIFICATION_NAMES, weights))) for name, weights in _CLASSIFICATION.items()
        }

    def label(
        self,
        type_name: str,
        originator: str,
        t_ms: int,
        *,
        classification: str | None = None,
        releasable_to: Sequence[str] | None = None,
        caveats: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        if classification is None:
            classification = self.classification[type_name].pick(rng)
        if releasable_to is None:
            releasable_to = self.releasability.pick(rng)
        if caveats is None:
            caveats = self.caveats(type_name, releasable_to)
        if self.sentinel_rng is not None:
            caveats = [self.mark("label.caveats", c) for c in caveats] or [self.sentinel("label.caveats")]
        return {
            "classification": classification,
            "releasable_to": list(releasable_to),
            "caveats": list(caveats),
            "originator": originator,
            "created_at": self.dt(t_ms),
            "message_id": self.uuid(),
        }

    def caveats(self, type_name: str, releasable_to: Sequence[str]) -> list[str]:
        if tuple(releasable_to) == (_OWN_NATION,):
            return ["SPECIAL FRANCE"]
        if type_name == "ForeignFighterReport":
            return ["PERSONAL DATA"]
        if type_name in ("AirMissionPlan", "AirTrack") and "RUS" in releasable_to and self.rng.random() < 0.5:
            return ["DECONFLICTION"]
        return []

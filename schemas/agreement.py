"""Facts of the agreement itself: our nation, and the six categories of the agreement (the operational brief, "What the agreement names"), and the message
types in each. The reciprocity ledger counts per category; a policy may pause a category, never a safety one."""

from __future__ import annotations

__all__ = ["OWN_NATION", "CATEGORIES", "SAFETY_CATEGORIES", "CATEGORY_OF", "NOT_EXCHANGED", "category_of",
           "types_of", "is_exchanged"]

#: Our side (ISO 3166-1 alpha-3): a partner's record must be releasable to us, and is relabelled as coming
#: from that partner when the ingress guard accepts it.
OWN_NATION = "FRA"

#: In the brief's order.
CATEGORIES: tuple[str, ...] = (
    "air_deconfliction", "maritime_deconfliction", "strike_results", "group_locations", "foreign_fighters",
    "logistics",
)
#: Safety data: never paused, whatever the balance of the exchange.
SAFETY_CATEGORIES: frozenset[str] = frozenset({"air_deconfliction", "maritime_deconfliction"})

CATEGORY_OF: dict[str, str] = {
    "AirMissionPlan": "air_deconfliction",
    "AirTrack": "air_deconfliction",
    "MaritimeTrack": "maritime_deconfliction",
    "StrikeReport": "strike_results",
    "GroupLocationReport": "group_locations",
    "ForeignFighterReport": "foreign_fighters",
    "LogisticsObservation": "logistics",
    "DeconflictionAlert": "air_deconfliction",
}

#: Message types a partner never sends us: each side computes its own deconfliction alerts from the plans and tracks
#: exchanged, so a partner has no inbound or partner-origin topic, subject or schema of these (we still release
#: ours to it through its policy).
NOT_EXCHANGED: frozenset[str] = frozenset({"DeconflictionAlert"})


def is_exchanged(type_name: str) -> bool:
    """Whether a partner may send us records of ``type_name`` (and so has inbound/origin topics of it)."""
    return type_name.rpartition("/")[2] not in NOT_EXCHANGED


def category_of(type_name: str) -> str:
    """The agreement category of a message type (or of a source key "RUS/AirTrack")."""
    return CATEGORY_OF[type_name.rpartition("/")[2]]


def types_of(category: str) -> tuple[str, ...]:
    return tuple(t for t, c in CATEGORY_OF.items() if c == category)

"""Sentinels: marks planted in the free-text fields partners must never see, and finding them again.

``Simulator(..., sentinels=True)`` appends ``SENTINEL-<field>-<8 hex>`` (e.g.
``SENTINEL-weapon-3fa2c1d0``) to every free-text field that at least one demo partner must never
see (:data:`SENTINEL_FIELDS`); enum fields cannot carry one and are skipped. A leak test
publishes such a run and searches the partner topics with :func:`find_sentinels`.
``subject.subject_ref`` carries one too: partners must only ever see pseudonyms of it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

__all__ = ["SENTINEL_PREFIX", "SENTINEL_RE", "SENTINEL_FIELDS", "find_sentinels"]

#: Every sentinel starts with this.
SENTINEL_PREFIX = "SENTINEL-"
#: A whole sentinel: ``SENTINEL-<field path>-<8 hex>``.
SENTINEL_RE = re.compile(r"SENTINEL-[a-z_.]+-[0-9a-f]{8}")

#: Per message type, the dotted paths (``[]`` = every list item) of the free-text fields that
#: carry a sentinel in sentinel mode. Each is withheld from at least one demo partner, always
#: (weapons, launch platform, base, ship name, caveats, ...), depending on the partner (mission
#: purpose, ship mission, collateral assessment: USA only), depending on the content
#: (observed activity, travel indicators: designated groups only), or is an internal
#: identifier partners only ever see pseudonymised (``sortie_id``, ``subject.subject_ref``,
#: the foreign-fighter ``report_id``). Label caveats: every entry is marked, and a label with
#: no caveat gets one that is only a sentinel. Enums, numbers, times and pattern-constrained
#: strings (originator, country and language codes, group ids) cannot carry one.
SENTINEL_FIELDS: dict[str, tuple[str, ...]] = {
    "AirMissionPlan": ("label.caveats[]", "sortie_id", "base", "mission_purpose", "target_area", "weapons_loadout[]"),
    "AirTrack": ("label.caveats[]", "sortie_id"),
    "MaritimeTrack": ("label.caveats[]", "ship_class", "ship_name", "mission"),
    "StrikeReport": ("label.caveats[]", "sortie_id", "collateral_assessment", "weapon", "launch_platform"),
    "GroupLocationReport": ("label.caveats[]", "observed_activity"),
    "ForeignFighterReport": ("label.caveats[]", "report_id", "subject.name", "subject.subject_ref", "travel_indicators[]"),
    "LogisticsObservation": ("label.caveats[]",),
}


def find_sentinels(value: Any) -> set[str]:
    """Every sentinel in ``value``: a str, bytes, a model, or nested dicts/lists of them."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseModel):
            stack.append(item.model_dump(mode="json"))
        elif isinstance(item, str):
            if SENTINEL_PREFIX in item:
                found.update(SENTINEL_RE.findall(item))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            text = bytes(item).decode("utf-8", errors="replace")
            if SENTINEL_PREFIX in text:
                found.update(SENTINEL_RE.findall(text))
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return found

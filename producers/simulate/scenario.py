"""The scenario: which components there are, what they publish and in what mix, the theatre's areas and groups."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from schemas.examples import BASE_TIME

__all__ = [
    "COMPONENTS",
    "COMPONENT_TYPES",
    "MIX",
    "DEFAULT_RATE",
    "DEFAULT_START",
    "DESIGNATED_GROUPS",
    "NON_DESIGNATED_GROUPS",
    "GROUP_NAMES",
    "EAST_MED",
    "GULF",
    "TARGETS",
    "parse_components",
    "message_types",
]

#: Component names, as on the command line (``all`` means all three).
COMPONENTS: tuple[str, ...] = ("naval", "air", "intel")

#: Message types each component publishes.
COMPONENT_TYPES: dict[str, tuple[str, ...]] = {
    "naval": ("MaritimeTrack",),
    "air": ("AirMissionPlan", "AirTrack", "StrikeReport"),
    "intel": ("GroupLocationReport", "ForeignFighterReport", "LogisticsObservation"),
}

#: Relative share (by count) of each message type when all components run.
MIX: dict[str, float] = {
    "AirMissionPlan": 5.0,
    "AirTrack": 55.0,
    "MaritimeTrack": 20.0,
    "StrikeReport": 5.0,
    "GroupLocationReport": 6.0,
    "ForeignFighterReport": 4.0,
    "LogisticsObservation": 5.0,
}

#: Rate used when none is given (:func:`iter_events`, :func:`sample`).
DEFAULT_RATE = 50.0
#: Start used when none is given: the reference time of :mod:`schemas.examples`.
DEFAULT_START: datetime = BASE_TIME

#: Groups on a demo partner's designation list (RUS: daesh; USA: daesh, al-nusra).
DESIGNATED_GROUPS: tuple[str, ...] = ("daesh", "al-nusra")
#: Groups the partners' lists do not name: reports about them must not reach them.
NON_DESIGNATED_GROUPS: tuple[str, ...] = ("hts", "ypg", "ahrar-al-sham", "fsa")

#: Sea areas of the naval component: (lat_min, lat_max, lon_min, lon_max).
EAST_MED: tuple[float, float, float, float] = (33.5, 35.5, 32.0, 35.5)
GULF: tuple[float, float, float, float] = (25.0, 27.5, 50.0, 56.0)

#: Strike target areas: name -> (lat, lon).
TARGETS: dict[str, tuple[float, float]] = {
    "Raqqa": (35.95, 39.00),
    "Deir ez-Zor": (35.33, 40.14),
    "Mosul": (36.34, 43.13),
    "Idlib": (35.93, 36.63),
    "Abu Kamal": (34.45, 40.92),
}

#: Display names of the armed groups, by group id.
GROUP_NAMES: dict[str, str] = {
    "daesh": "Daesh",
    "al-nusra": "al-Nusra Front",
    "hts": "HTS",
    "ypg": "YPG",
    "ahrar-al-sham": "Ahrar al-Sham",
    "fsa": "FSA",
}


def parse_components(spec: str | Iterable[str]) -> frozenset[str]:
    """Components from ``"all"``, ``"naval"``, ``"air,intel"`` or an iterable of names.

    Raises :class:`ValueError` for an unknown or empty selection.
    """
    names: list[str]
    if isinstance(spec, str):
        names = [part.strip() for part in spec.split(",") if part.strip()]
    else:
        names = [str(part).strip() for part in spec]
    if "all" in names:
        return frozenset(COMPONENTS)
    unknown = sorted(set(names) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}, all")
    if not names:
        raise ValueError(f"no component given; known: {', '.join(COMPONENTS)}, all")
    return frozenset(names)


def message_types(components: str | Iterable[str]) -> tuple[str, ...]:
    """Message types the given components publish, in the order of :data:`schemas.MESSAGE_TYPES`."""
    selected = parse_components(components)
    enabled = {name for component in selected for name in COMPONENT_TYPES[component]}
    return tuple(name for name in MIX if name in enabled)

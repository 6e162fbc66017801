"""Deterministic simulators of our naval, air and intelligence components (no Kafka here).

``liaison simulate naval|air|intel|all --rate R --duration S --seed K`` drives
:meth:`Simulator.events` and publishes event *i* at its offset; the tests and benchmarks use the
same generator. Everything is a pure function of ``(components, seed, start, rate)``::

    sim = Simulator({"air", "naval"}, seed=7, start=datetime(2015, 11, 23, 6, tzinfo=timezone.utc))
    for offset, model in sim.events(rate=200, duration=120):   # exactly round(200 * 120) events
        ...                                                    # offsets i / rate, evenly spaced

What is simulated
-----------------
One world, whichever components are enabled (the components only choose which message types
are emitted, so the air picture is the same with or without ``naval``):

* **Naval** (``naval.cvn-group``, ``naval.gulf-group``): a carrier group south of Cyprus (a
  nuclear carrier with air-defence destroyers, a FREMM and a replenishment oiler), a picket
  off the Syrian coast next to the partner's fleet, and a task group in the central Gulf. Each
  ship moves on its course and speed between reports, turns now and then, and stays in its
  patrol box (all boxes are open water inside 33.5-35.5N 32-35.5E and 25-27.5N 50-56E).
  :class:`~schemas.models.MaritimeTrack` only.
* **Air** (``air.jordan`` from Muwaffaq Salti AB, ``air.uae`` from Al Dhafra AB,
  ``air.carrier-wing`` from the carrier): sorties against Raqqa, Deir ez-Zor, Mosul, Idlib and
  Abu Kamal. A sortie's :class:`~schemas.models.AirMissionPlan` (status ``PLANNED``) is
  published before it takes off; its :class:`~schemas.models.AirTrack`\\ s follow the plan's
  route (position interpolated between waypoints by ETA, altitude inside the envelope of the
  leg's two altitude bands, heading toward the next waypoint); once a track has passed the
  target waypoint the sortie's :class:`~schemas.models.StrikeReport`\\ s follow (strike time at
  or after the target ETA, never after the report). Plans are re-published ``ACTIVE`` after
  take-off, ``COMPLETED`` after landing, and a few are ``CANCELLED`` (those never fly). Two
  support aircraft (AWACS, tanker) fly race-track orbits and report tracks without a sortie.
* **Intel** (``intel.cell``): group locations of designated (``daesh``, ``al-nusra``) and
  non-designated groups (``hts``, ``ypg``, ``ahrar-al-sham``, ``fsa``), foreign-fighter reports
  on a recurring pool of fictitious subjects (French-, Russian-, English-, Arabic-, German-
  speaking, incl. Russian-speaking Kazakh, Uzbek, Georgian, ... citizens and dual nationals) and
  aggregated logistics observations.

Message mix (by count, all components): air tracks 55 %, maritime tracks 20 %, mission plans
5 %, strike reports 5 %, group locations 6 %, foreign fighters 4 %, logistics 5 %; with fewer
components the enabled types keep their relative weights (:data:`MIX`).

Labels: mostly ``RESTRICTED``/``CONFIDENTIAL``, some ``SECRET``, a few ``TOP_SECRET``; REL TO
lists such as ``FRA USA RUS``, ``FRA USA GBR``, ``FRA USA``, ``FRA RUS`` and national-only
``FRA`` (caveat ``SPECIAL FRANCE``). About 10-15 % of the records may be received by no
partner (``TOP_SECRET``, or a REL TO list naming neither ``RUS`` nor ``USA``).

Time
----
Every timestamp is ``start + offset`` (millisecond precision): ``label.created_at`` is the
offset of the event, observation times are at or before it. Ships and support aircraft move at
their real speeds. Sorties are *time-compressed*: a sortie flies its (real) route in
``sortie_seconds`` of event time -- by default ``24 / sortie-start-rate`` (about 24 sorties
airborne at a time) bounded to 30 s .. 3 h -- so that short runs contain whole sorties and the
message mix holds at any rate. The reported airspeeds are realistic; the ground speed implied
by a compressed plan's ETAs is not.

Determinism
-----------
All randomness comes from ``random.Random(seed)`` (message ids are
``uuid.UUID(int=rng.getrandbits(128), version=4)``); the same arguments give the same events.
:meth:`Simulator.events` for a longer duration extends, never changes, a shorter run. With
``sentinels=True`` the events are the same except for the planted sentinels (drawn from a
separate generator).

Sentinels
---------
``sentinels=True`` appends ``SENTINEL-<field>-<8 hex>`` (e.g. ``SENTINEL-weapon-3fa2c1d0``) to
every free-text field that at least one demo partner must never see (:data:`SENTINEL_FIELDS`);
enum fields cannot carry one and are skipped. A leak test publishes such a run and searches the
partner topics with :func:`find_sentinels`. ``subject.subject_ref`` carries one too: partners
must only ever see pseudonyms of it.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import count, islice
from typing import Any, Iterable, Iterator, Sequence

from pydantic import BaseModel

from schemas.examples import BASE_TIME
from schemas.models import (
    AirMissionPlan,
    AirTrack,
    ForeignFighterReport,
    GroupLocationReport,
    LogisticsObservation,
    MaritimeTrack,
    StrikeReport,
)

__all__ = [
    "COMPONENTS",
    "COMPONENT_TYPES",
    "MIX",
    "DEFAULT_RATE",
    "DEFAULT_START",
    "SENTINEL_PREFIX",
    "SENTINEL_RE",
    "SENTINEL_FIELDS",
    "DESIGNATED_GROUPS",
    "NON_DESIGNATED_GROUPS",
    "EAST_MED",
    "GULF",
    "TARGETS",
    "Simulator",
    "parse_components",
    "message_types",
    "iter_events",
    "sample",
    "find_sentinels",
]

# --------------------------------------------------------------------------- public constants

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

_OWN_NATION = "FRA"

# --------------------------------------------------------------------------- world data

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


@dataclass(frozen=True)
class _ShipSpec:
    ship_id: str
    name: str
    ship_class: str
    originator: str
    box: tuple[float, float, float, float]  # open-water patrol box: lat_min, lat_max, lon_min, lon_max
    speed: tuple[float, float]
    mission: str


# Patrol boxes: open water only (south of Cyprus; between Cyprus and the Syrian coast; central Gulf).
_CARRIER_BOX = (33.60, 34.30, 32.30, 34.60)
_SYRIAN_COAST_BOX = (34.50, 35.40, 34.80, 35.45)
_GULF_BOX = (25.60, 26.30, 52.20, 54.60)

_SHIPS: tuple[_ShipSpec, ...] = (
    _ShipSpec("R91", "Charles de Gaulle", "Charles de Gaulle class (CVN)", "naval.cvn-group", _CARRIER_BOX,
              (12, 24), "Carrier strike group flight operations, eastern Mediterranean"),
    _ShipSpec("D620", "Forbin", "Horizon class (DDG)", "naval.cvn-group", _CARRIER_BOX,
              (12, 24), "Area air-defence escort of the carrier"),
    _ShipSpec("D621", "Chevalier Paul", "Horizon class (DDG)", "naval.cvn-group", _CARRIER_BOX,
              (12, 24), "Air-defence picket and air-picture coordination for the carrier group"),
    _ShipSpec("D650", "Aquitaine", "Aquitaine class (FREMM)", "naval.cvn-group", _CARRIER_BOX,
              (10, 22), "Anti-submarine screen of the carrier group, land-attack cruise missile readiness"),
    _ShipSpec("A630", "Marne", "Durance class (replenishment oiler)", "naval.cvn-group", _CARRIER_BOX,
              (8, 14), "Underway replenishment of the carrier group"),
    _ShipSpec("D652", "Provence", "Aquitaine class (FREMM)", "naval.cvn-group", _SYRIAN_COAST_BOX,
              (8, 18), "Maritime surveillance off the Syrian coast, near the partner naval group"),
    _ShipSpec("D615", "Jean Bart", "Cassard class (DDG)", "naval.cvn-group", _SYRIAN_COAST_BOX,
              (8, 18), "Air-picture and deconfliction picket facing the partner's fleet"),
    _ShipSpec("F711", "Surcouf", "La Fayette class (FFG)", "naval.cvn-group", _SYRIAN_COAST_BOX,
              (6, 16), "Surface surveillance and embargo monitoring off Tartus"),
    _ShipSpec("L9015", "Dixmude", "Mistral class (LHD)", "naval.gulf-group", _GULF_BOX,
              (8, 16), "Amphibious task group presence, central Gulf"),
    _ShipSpec("D653", "Languedoc", "Aquitaine class (FREMM)", "naval.gulf-group", _GULF_BOX,
              (10, 20), "Escort of the amphibious task group, air-defence sector north"),
    _ShipSpec("F712", "Courbet", "La Fayette class (FFG)", "naval.gulf-group", _GULF_BOX,
              (8, 18), "Maritime security patrol, shipping lanes of the central Gulf"),
    _ShipSpec("F731", "Prairial", "Floreal class (FFH)", "naval.gulf-group", _GULF_BOX,
              (6, 14), "Maritime security operations, counter-smuggling"),
)

_READINESS = (("NORMAL", 55), ("ELEVATED", 30), ("HIGH", 12), ("UNKNOWN", 3))


@dataclass(frozen=True)
class _Aircraft:
    type: str
    counts: tuple[int, ...]
    cruise_kt: float
    weapons: tuple[str, ...]      # releasable weapons; empty: unarmed
    pods: tuple[str, ...]         # loadout items that are not weapons
    low: bool = False             # flies lower (MALE drone, maritime patrol)
    isr_only: bool = False
    weight: float = 1.0


@dataclass(frozen=True)
class _Origin:
    originator: str
    code: str
    base: str
    position: tuple[float, float] | None  # None: the carrier's current position
    carrier_based: bool
    ingress: tuple[tuple[str, float, float], ...]
    egress: tuple[tuple[str, float, float], ...]
    aircraft: tuple[_Aircraft, ...]
    callsigns: tuple[str, ...]
    weight: float


_ORIGINS: tuple[_Origin, ...] = (
    _Origin(
        "air.jordan", "MSA", "Muwaffaq Salti AB (Jordan)", (31.8327, 36.7820), False,
        (("TANGO", 33.45, 38.95),), (("SIERRA", 32.95, 38.35),),
        (
            _Aircraft("Mirage 2000D", (2,), 450, ("GBU-12 Paveway II", "GBU-49 Enhanced Paveway II", "GBU-22 Paveway III"),
                      ("PDL-NG targeting pod",), weight=4),
            _Aircraft("Rafale B", (2,), 480, ("GBU-12 Paveway II", "GBU-24 Paveway III", "AASM Hammer SBU-38", "SCALP EG"),
                      ("Damocles targeting pod",), weight=4),
            _Aircraft("Atlantique 2", (1,), 300, ("GBU-12 Paveway II",), ("Wescam MX-20 EO/IR turret",), low=True, weight=2),
        ),
        ("TIGRE", "COBRA", "ZODIAC", "MISTRAL"), 40,
    ),
    _Origin(
        "air.uae", "ADH", "Al Dhafra AB (UAE)", (24.2483, 54.5475), False,
        (("NOVEMBER", 28.60, 46.20), ("ROMEO", 32.40, 41.80)),
        (("QUEBEC", 32.05, 42.55), ("PAPA", 28.25, 47.05)),
        (
            _Aircraft("Rafale C", (2,), 480, ("GBU-12 Paveway II", "AASM Hammer SBU-38", "GBU-24 Paveway III"),
                      ("Damocles targeting pod",), weight=4),
            _Aircraft("Rafale B", (2, 4), 480, ("SCALP EG", "AASM Hammer SBU-38", "GBU-24 Paveway III"),
                      ("Damocles targeting pod",), weight=3),
            _Aircraft("MQ-9 Reaper", (1,), 180, ("AGM-114 Hellfire", "GBU-38 JDAM", "GBU-12 Paveway II"),
                      ("MTS-B sensor turret",), low=True, weight=3),
        ),
        ("RAFALE", "SABRE", "FALCO", "VAUTOUR"), 30,
    ),
    _Origin(
        "air.carrier-wing", "CDG", "R91 Charles de Gaulle (carrier)", None, True,
        (("LIMA", 36.70, 36.45),), (("MIKE", 36.95, 37.30),),
        (
            _Aircraft("Rafale M", (2, 4), 480, ("GBU-12 Paveway II", "AASM Hammer SBU-38", "GBU-24 Paveway III", "SCALP EG"),
                      ("Damocles targeting pod",), weight=8),
            _Aircraft("E-2C Hawkeye", (1,), 300, (), ("APS-145 radar",), isr_only=True, weight=2),
        ),
        ("MARINE", "CORSAIR", "ESPADON", "NARVAL"), 30,
    ),
)

# AEW orbit of the carrier's E-2C: a race-track off the Syrian coast, over the sea.
_AEW_ORBIT = (("ORBIT-N", 35.05, 35.10), ("ORBIT-S", 34.55, 34.90))

_WAYPOINT_CODES = ("ECHO", "GOLF", "HOTEL", "INDIA", "KILO", "OSCAR", "UNIFORM", "VICTOR", "WHISKEY", "XRAY", "YANKEE", "ZULU")


@dataclass(frozen=True)
class _Place:
    name: str
    lat: float
    lon: float
    groups: tuple[tuple[str, float], ...]
    categories: tuple[tuple[str, float], ...]
    subareas: tuple[str, ...]
    weight: float


_TARGET_PLACES: tuple[_Place, ...] = (
    _Place("Raqqa", *TARGETS["Raqqa"], (("daesh", 1),),
           (("COMMAND_POST", 30), ("WEAPONS_STORAGE", 20), ("TRAINING_CAMP", 15), ("VEHICLE", 15),
            ("INFRASTRUCTURE", 15), ("OTHER", 5)),
           ("northern industrial district", "al-Mishlab", "Tabqa road junction", "riverside compound"), 25),
    _Place("Deir ez-Zor", *TARGETS["Deir ez-Zor"], (("daesh", 1),),
           (("OIL_TRANSPORT_LOGISTICS", 50), ("VEHICLE", 20), ("COMMAND_POST", 10), ("WEAPONS_STORAGE", 10),
            ("INFRASTRUCTURE", 10)),
           ("al-Omar fields", "al-Tanak field", "airport perimeter", "Jafra depot"), 20),
    _Place("Mosul", *TARGETS["Mosul"], (("daesh", 1),),
           (("COMMAND_POST", 25), ("WEAPONS_STORAGE", 25), ("VEHICLE", 20), ("INFRASTRUCTURE", 15),
            ("TRAINING_CAMP", 10), ("OTHER", 5)),
           ("western bank", "al-Kindi complex", "Tal Afar road", "university district"), 20),
    _Place("Idlib", *TARGETS["Idlib"], (("al-nusra", 55), ("hts", 30), ("ahrar-al-sham", 15)),
           (("COMMAND_POST", 30), ("WEAPONS_STORAGE", 25), ("TRAINING_CAMP", 20), ("VEHICLE", 20), ("OTHER", 5)),
           ("Saraqib road", "Maarat Misrin", "Binnish", "Taftanaz airfield area"), 20),
    _Place("Abu Kamal", *TARGETS["Abu Kamal"], (("daesh", 1),),
           (("OIL_TRANSPORT_LOGISTICS", 35), ("VEHICLE", 25), ("COMMAND_POST", 15), ("INFRASTRUCTURE", 25)),
           ("border crossing", "al-Hamdan", "river crossing", "grain silos"), 15),
)

_GROUP_NAMES = {
    "daesh": "Daesh",
    "al-nusra": "al-Nusra Front",
    "hts": "HTS",
    "ypg": "YPG",
    "ahrar-al-sham": "Ahrar al-Sham",
    "fsa": "FSA",
}

# Group locations: where each group is reported, (name, lat, lon).
_GROUP_AREAS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "daesh": (("Raqqa", 35.95, 39.00), ("Deir ez-Zor", 35.33, 40.14), ("Mosul", 36.34, 43.13),
              ("Abu Kamal", 34.45, 40.92), ("al-Bab", 36.37, 37.52), ("Palmyra", 34.55, 38.27)),
    "al-nusra": (("Idlib", 35.93, 36.63), ("Jisr al-Shughur", 35.81, 36.32), ("Maarat al-Numan", 35.64, 36.67)),
    "hts": (("Idlib", 35.93, 36.63), ("Sarmada", 36.18, 36.72)),
    "ahrar-al-sham": (("Idlib", 35.93, 36.63), ("northern Hama countryside", 35.30, 36.60)),
    "ypg": (("Kobani", 36.89, 38.35), ("Hasakah", 36.50, 40.75), ("Qamishli", 37.05, 41.22)),
    "fsa": (("Azaz", 36.59, 37.05), ("Daraa", 32.62, 36.10), ("al-Tanf", 33.50, 38.62)),
}
_GROUP_WEIGHTS = (("daesh", 40), ("al-nusra", 15), ("hts", 12), ("ypg", 12), ("ahrar-al-sham", 10), ("fsa", 11))

_ACTIVITIES = (
    "Vehicle staging near {site}", "Movement of armed pick-ups toward {site}", "Fuel resupply at {site}",
    "Fighters gathering at {site}", "Checkpoint set up on the road to {site}", "Weapons moved out of {site}",
    "Command post activity at {site}", "Digging of defensive positions near {site}",
)
_SITES = (
    "a former grain silo", "the old hospital", "a river crossing", "a school compound", "the industrial area",
    "an abandoned pumping station", "the market square", "a bridge approach",
)
_SOURCE_TYPES = (("HUMINT", 30), ("SIGINT", 25), ("IMINT", 30), ("OSINT", 10), ("OTHER", 5))
_RELIABILITY = (("A_RELIABLE", 10), ("B_USUALLY_RELIABLE", 35), ("C_FAIRLY_RELIABLE", 30),
                ("D_NOT_USUALLY_RELIABLE", 10), ("E_UNRELIABLE", 5), ("F_UNKNOWN", 10))

_EFFECTS = (("DESTROYED", 40), ("DAMAGED", 35), ("NO_EFFECT", 10), ("UNKNOWN", 15))
_COLLATERAL = (
    "No civilian structures within 500 m; no collateral damage assessed.",
    "Minor damage to an adjacent empty warehouse; no civilian casualties assessed.",
    "Civilian vehicle observed 300 m from the impact point; no damage assessed.",
    "Collateral assessment pending post-strike imagery.",
    "Secondary explosions observed; no civilian structures affected.",
)

# Foreign fighters: (weight, nationality, language options, name culture).
_FIGHTER_PROFILES: tuple[tuple[float, tuple[str, ...], tuple[tuple[str, ...], ...], str], ...] = (
    (14, ("RUS",), (("ru",), ("ru", "ce"), ("ru", "av"), ("ru", "ar")), "ru"),
    (5, ("KAZ",), (("kk", "ru"), ("ru",)), "ru"),
    (5, ("UZB",), (("uz", "ru"), ("uz",)), "ru"),
    (3, ("KGZ",), (("ky", "ru"), ("ky",)), "ru"),
    (3, ("TJK",), (("tg", "ru"), ("tg",)), "ru"),
    (3, ("GEO",), (("ka", "ce", "ru"), ("ka", "ce")), "ru"),
    (2, ("AZE",), (("az", "ru"), ("az",)), "ru"),
    (12, ("FRA",), (("fr",), ("fr", "ar")), "fr"),
    (4, ("BEL",), (("fr", "ar"), ("nl", "fr"), ("nl",)), "fr"),
    (2, ("CHE",), (("de", "fr"), ("fr",), ("de",)), "de"),
    (8, ("TUN",), (("ar", "fr"), ("ar",)), "ar"),
    (3, ("MAR",), (("ar", "fr"),), "ar"),
    (5, ("SAU",), (("ar",),), "ar"),
    (7, ("USA",), (("en",), ("en", "ar"), ("en", "so")), "en"),
    (6, ("GBR",), (("en",), ("en", "ur"), ("en", "ar")), "en"),
    (6, ("DEU",), (("de",), ("de", "tr"), ("de", "ar")), "de"),
    (2, ("FRA", "DZA"), (("fr", "ar"),), "fr"),
    (1, ("RUS", "FRA"), (("ru", "fr"),), "ru"),
    (1, ("DEU", "RUS"), (("de", "ru"),), "de"),
    (1, ("USA", "SOM"), (("en", "so"),), "en"),
    (1, (), (("ru", "ce"), ("ar",)), "ru"),  # nationality unknown
)
# Names are assembled from these parts; they do not denote real persons.
_GIVEN = {
    "ru": ("Ruslan", "Timur", "Magomed", "Islam", "Aslan", "Zaur", "Arslan", "Rustam", "Anzor", "Murad", "Ilyas", "Shamil"),
    "fr": ("Karim", "Yassine", "Mehdi", "Julien", "Thomas", "Nabil", "Sofiane", "Kevin", "Bilal", "Amine"),
    "en": ("Michael", "Abdullah", "John", "Yusuf", "Omar", "David", "Jamal", "Ryan"),
    "de": ("Dennis", "Mustafa", "Philipp", "Kerim", "Lukas", "Marcel"),
    "ar": ("Ahmed", "Youssef", "Khalid", "Hamza", "Anis", "Faisal", "Tarek"),
}
_FAMILY = {
    "ru": (("Bel", "Zar", "Kurb", "Dagh", "Tav", "Mezh", "Ark", "Sol"), ("anov", "ukaev", "irov", "aliev", "ugov", "ashev")),
    "fr": (("Ben", "Lam", "Ber", "Dal", "Mor", "Cha", "Gar"), ("abri", "ouin", "ardi", "essal", "ier", "elle")),
    "en": (("Hart", "Wes", "Bran", "Cal", "Ash", "Mil"), ("ford", "ley", "ton", "ridge", "well")),
    "de": (("Hol", "Brenn", "Stein", "Wald", "Kessel"), ("mann", "berg", "er", "hoff")),
    "ar": (("Bou", "Ben", "Al-Ja", "Al-Ha"), ("zidi", "rami", "mdani", "bari", "ssoud")),
}
_AFFILIATIONS = (("daesh", 60), ("al-nusra", 25), ("hts", 10), ("ahrar-al-sham", 5))
_TRAVEL = (
    "Transited Istanbul airport in 2014", "Crossed into Syria near Gaziantep",
    "Reported transit through southern Turkey in 2014", "Money transfers via an informal remittance network",
    "Contact with a facilitation network in the Pankisi valley", "Left home country on a tourist visa to Turkey",
    "Returned briefly to Europe via Greece", "Social media activity from Raqqa",
    "Phone contact with relatives in country of origin", "Travelled with spouse and children",
)

_LOGISTICS_AREAS: tuple[tuple[str, float, float, float], ...] = (
    ("Deir ez-Zor / al-Omar fields", 34.99, 40.57, 25.0),
    ("Raqqa - Tabqa road", 35.88, 38.75, 20.0),
    ("Mosul - Tal Afar highway", 36.36, 42.75, 30.0),
    ("Abu Kamal / al-Qaim crossing", 34.45, 40.92, 15.0),
    ("al-Tanak oil field", 34.87, 40.72, 15.0),
    ("Shaddadi - Markada road", 35.75, 40.65, 25.0),
)
_TRAFFIC = (("FUEL_TRUCK", (20, 220)), ("TANKER_CONVOY", (0, 8)), ("CARGO_TRUCK", (5, 90)),
            ("VEHICLE", (10, 300)), ("OTHER", (0, 30)))
_TRENDS = (("DECREASING", 45), ("STABLE", 30), ("INCREASING", 15), ("UNKNOWN", 10))

# Support aircraft on race-track orbits (tracks without a sortie):
# track id, callsign, type, originator, orbit centre, radius km, altitude ft, speed kt.
_ORBITERS = (
    ("TN-70061", "HAWK 61", "E-3F Sentry", "air.jordan", (32.90, 38.60), 45.0, 29_000, 360.0),
    ("TN-70072", "NECTAR 72", "C-135FR", "air.uae", (33.60, 41.00), 35.0, 26_000, 400.0),
)

# Behaviour knobs.
_AIRBORNE_TARGET = 24            # sorties airborne at a time, when the rate allows
_SORTIE_SECONDS_MIN = 30.0
_SORTIE_SECONDS_MAX = 3 * 3600.0
_NEW_SORTIE_SHARE = 0.7          # share of plan messages that announce a new sortie
_P_COMPLETED = 0.15              # plan message re-publishes a landed sortie as COMPLETED
_P_ACTIVE = 0.15                 # ... an airborne sortie as ACTIVE
_P_CANCEL = 0.03                 # new sortie is later CANCELLED (never flies)
_P_ORBITER = 0.06                # air-track slot goes to a support aircraft
_P_NO_STRIKE = 0.15              # armed sortie that releases nothing
_STRIKES_PER_SORTIE = (1, 2, 2, 3)
_STRIKE_OVERDUE = 0.25           # pending strike older than this share of a sortie is sent early

_KM_PER_DEG = 111.32
_NM_PER_DEG = 60.0


# --------------------------------------------------------------------------- helpers


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


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _heading(value: float) -> float:
    """Round a bearing to 0.1 degree, staying in [0, 360)."""
    return round(value % 360.0, 1) % 360.0


def _cumulative(pairs: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    values = [value for value, _ in pairs]
    totals: list[float] = []
    running = 0.0
    for _, weight in pairs:
        running += weight
        totals.append(running)
    return values, totals


class _Weighted:
    """Fast weighted choice with a given random generator."""

    __slots__ = ("values", "totals", "total")

    def __init__(self, pairs: Sequence[tuple[Any, float]]):
        self.values, self.totals = _cumulative(pairs)
        self.total = self.totals[-1]

    def pick(self, rng: random.Random) -> Any:
        index = bisect.bisect_right(self.totals, rng.random() * self.total)
        return self.values[min(index, len(self.values) - 1)]


# --------------------------------------------------------------------------- world entities


@dataclass
class _Ship:
    spec: _ShipSpec
    lat: float
    lon: float
    course: float
    speed: float
    readiness: str
    last_ms: int = 0


@dataclass
class _Waypoint:
    name: str
    lat: float
    lon: float
    floor: int
    ceiling: int
    eta_ms: int = 0


@dataclass
class _Sortie:
    sortie_id: str
    callsign: str
    track_id: str
    origin: _Origin
    aircraft: _Aircraft
    aircraft_count: int
    base: str
    route: list[_Waypoint]
    takeoff_ms: int
    landing_ms: int
    plan_ms: int
    target_index: int | None
    place: _Place | None
    group_id: str | None
    category: str | None
    mission_purpose: str
    target_area: str | None
    loadout: list[str]
    strikes: int
    classification: str
    releasable_to: tuple[str, ...]
    caveats: tuple[str, ...]
    cancelled: bool = False
    etas: list[int] = field(default_factory=list)
    strikes_queued: bool = False
    landed: bool = False


@dataclass
class _Subject:
    name: str
    ref: str
    nationality: list[str]
    languages: list[str]
    date_of_birth: Any
    affiliation: str


# --------------------------------------------------------------------------- the simulator


class Simulator:
    """Deterministic generator of the liaison messages of our components.

    ``components``: a subset of :data:`COMPONENTS` (or ``"all"``, or ``"air,naval"``);
    ``seed``: the seed of the random generator; ``start``: time of offset 0 (timezone-aware,
    truncated to milliseconds; default :data:`DEFAULT_START`); ``sentinels``: plant sentinels
    (see the module doc); ``sortie_seconds``: how long a sortie flies in event time (default:
    derived from the rate, see the module doc).

    The simulator holds no state between calls: every :meth:`events` / :meth:`stream` call
    starts the same world afresh.
    """

    def __init__(
        self,
        components: str | Iterable[str] = "all",
        seed: int = 0,
        start: datetime | None = None,
        *,
        sentinels: bool = False,
        sortie_seconds: float | None = None,
    ):
        self.components: frozenset[str] = parse_components(components)
        self.seed = int(seed)
        start = DEFAULT_START if start is None else start
        if start.tzinfo is None or start.tzinfo.utcoffset(start) is None:
            raise ValueError("start must be timezone-aware (UTC)")
        start = start.astimezone(timezone.utc)
        self.start: datetime = start.replace(microsecond=start.microsecond - start.microsecond % 1000)
        self.sentinels = bool(sentinels)
        if sortie_seconds is not None and not sortie_seconds > 0:
            raise ValueError("sortie_seconds must be positive")
        self._sortie_seconds = sortie_seconds
        self.message_types: tuple[str, ...] = message_types(self.components)

    @property
    def mix(self) -> dict[str, float]:
        """Expected share (0..1) of each emitted message type."""
        total = sum(MIX[name] for name in self.message_types)
        return {name: MIX[name] / total for name in self.message_types}

    def sortie_seconds(self, rate: float) -> float:
        """Event-time duration of a sortie at ``rate`` events per second."""
        if self._sortie_seconds is not None:
            return self._sortie_seconds
        share = self.mix.get("AirMissionPlan", 0.0)
        if share <= 0:
            return _SORTIE_SECONDS_MAX
        sortie_rate = rate * share * _NEW_SORTIE_SHARE
        return min(_SORTIE_SECONDS_MAX, max(_SORTIE_SECONDS_MIN, _AIRBORNE_TARGET / sortie_rate))

    def stream(self, rate: float) -> Iterator[tuple[float, BaseModel]]:
        """Endless ``(offset_seconds, model)`` pairs, event *i* at offset ``i / rate``."""
        if not (isinstance(rate, (int, float)) and rate > 0 and math.isfinite(rate)):
            raise ValueError("rate must be a positive number of events per second")
        return self._generate(float(rate))

    def events(self, rate: float, duration: float) -> Iterator[tuple[float, BaseModel]]:
        """Exactly ``round(rate * duration)`` events, evenly spaced over ``[0, duration)``.

        Event *i* is at offset ``i / rate``, so any window of ``w`` seconds holds
        ``rate * w`` events to within one.
        """
        stream = self.stream(rate)
        if not (isinstance(duration, (int, float)) and duration >= 0 and math.isfinite(duration)):
            raise ValueError("duration must be a non-negative number of seconds")
        return islice(stream, round(rate * duration))

    def _generate(self, rate: float) -> Iterator[tuple[float, BaseModel]]:
        world = _World(self, rate)
        for index in count():
            offset = index / rate
            yield offset, world.event(round(offset * 1000))


def iter_events(
    components: str | Iterable[str] = "all",
    seed: int = 0,
    start: datetime | None = None,
    rate: float = DEFAULT_RATE,
    *,
    sentinels: bool = False,
) -> Iterator[tuple[float, BaseModel]]:
    """Endless ``(offset_seconds, model)`` pairs at ``rate`` (for long runs)."""
    return Simulator(components, seed, start, sentinels=sentinels).stream(rate)


def sample(
    n: int,
    seed: int = 0,
    components: str | Iterable[str] = "all",
    *,
    start: datetime | None = None,
    rate: float = DEFAULT_RATE,
    sentinels: bool = False,
) -> list[BaseModel]:
    """The first ``n`` models of a run (convenience for tests and demos)."""
    return [model for _, model in islice(iter_events(components, seed, start, rate, sentinels=sentinels), n)]


class _World:
    """The mutable state of one run: ships, sorties, subjects, counters, random generators."""

    def __init__(self, sim: Simulator, rate: float):
        self.sim = sim
        self.rng = random.Random(sim.seed)
        # Sentinels come from their own generator so that sentinel mode changes nothing else.
        self.sentinel_rng = random.Random(f"liaison-sentinels:{sim.seed}") if sim.sentinels else None
        self.start = sim.start
        self.sortie_ms = max(1000, round(sim.sortie_seconds(rate) * 1000))
        self.types = _Weighted([(name, MIX[name]) for name in sim.message_types])
        self.builders = {
            "AirMissionPlan": self.mission_plan,
            "AirTrack": self.air_track,
            "MaritimeTrack": self.maritime_track,
            "StrikeReport": self.strike_report_slot,
            "GroupLocationReport": self.group_location,
            "ForeignFighterReport": self.foreign_fighter,
            "LogisticsObservation": self.logistics,
        }
        self.releasability = _Weighted(_RELEASABILITY)
        self.classification = {
            name: _Weighted(list(zip(_CLASSIFICATION_NAMES, weights))) for name, weights in _CLASSIFICATION.items()
        }
        self.origins = _Weighted([(origin, origin.weight) for origin in _ORIGINS])
        self.aircraft = {origin.code: _Weighted([(a, a.weight) for a in origin.aircraft]) for origin in _ORIGINS}
        self.places = _Weighted([(place, place.weight) for place in _TARGET_PLACES])
        self.place_groups = {place.name: _Weighted(place.groups) for place in _TARGET_PLACES}
        self.place_categories = {place.name: _Weighted(place.categories) for place in _TARGET_PLACES}
        self.groups = _Weighted(_GROUP_WEIGHTS)
        self.source_types = _Weighted(_SOURCE_TYPES)
        self.reliability = _Weighted(_RELIABILITY)
        self.effects = _Weighted(_EFFECTS)
        self.readiness = _Weighted(_READINESS)
        self.profiles = _Weighted([(profile, profile[0]) for profile in _FIGHTER_PROFILES])
        self.affiliations = _Weighted(_AFFILIATIONS)
        self.trends = _Weighted(_TRENDS)

        rng = self.rng
        self.ships = [
            _Ship(
                spec,
                lat=rng.uniform(spec.box[0] + 0.05, spec.box[1] - 0.05),
                lon=rng.uniform(spec.box[2] + 0.05, spec.box[3] - 0.05),
                course=round(rng.uniform(0, 359.9), 1),
                speed=round(rng.uniform(*spec.speed), 1),
                readiness=self.readiness.pick(rng),
            )
            for spec in _SHIPS
        ]
        self.carrier = self.ships[0]
        self.orbit_phase = [rng.uniform(0, 2 * math.pi) for _ in _ORBITERS]
        self.callsign_offset = {origin.code: rng.randrange(len(origin.callsigns) * 79) for origin in _ORIGINS}

        self.airborne: deque[_Sortie] = deque()       # flying or about to: round-robin for tracks
        self.awaiting_active: deque[_Sortie] = deque()
        self.landed: deque[_Sortie] = deque(maxlen=256)
        self.to_cancel: deque[_Sortie] = deque()
        self.pending_strikes: deque[tuple[_Sortie, int]] = deque()
        self.subjects: list[_Subject] = []
        self.counters: dict[str, int] = {}
        self.next_orbiter = 0
        self._days: dict[int, str] = {}
        self.start_ms = (self.start - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)

    # ------------------------------------------------------------------ plumbing

    def event(self, t_ms: int) -> BaseModel:
        return self.builders[self.types.pick(self.rng)](t_ms)

    def dt(self, t_ms: int) -> datetime:
        return self.start + timedelta(milliseconds=t_ms)

    def day(self, t_ms: int) -> str:
        """``YYYYMMDD`` of ``start + t_ms`` (cached per day: strftime is slow)."""
        key = (self.start_ms + t_ms) // 86_400_000
        text = self._days.get(key)
        if text is None:
            text = self._days[key] = self.dt(t_ms).strftime("%Y%m%d")
        return text

    def next_id(self, prefix: str) -> int:
        value = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = value
        return value

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def sentinel(self, path: str) -> str:
        """A fresh sentinel for field ``path`` (sentinel mode only)."""
        assert self.sentinel_rng is not None
        return f"{SENTINEL_PREFIX}{path}-{self.sentinel_rng.getrandbits(32):08x}"

    def mark(self, path: str, text: str) -> str:
        """``text`` with a sentinel for field ``path`` appended, in sentinel mode."""
        if self.sentinel_rng is None:
            return text
        return f"{text} {self.sentinel(path)}"

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

    # ------------------------------------------------------------------ naval

    def maritime_track(self, t_ms: int) -> MaritimeTrack:
        rng = self.rng
        ship = self.ships[rng.randrange(len(self.ships))]
        self.move_ship(ship, t_ms)
        spec = ship.spec
        return MaritimeTrack.model_validate({
            "label": self.label("MaritimeTrack", spec.originator, t_ms),
            "ship_id": spec.ship_id,
            "ship_class": self.mark("ship_class", spec.ship_class),
            "ship_name": self.mark("ship_name", spec.name),
            "time": self.dt(t_ms),
            "position": {"lat": round(ship.lat, 5), "lon": round(ship.lon, 5)},
            "course_deg": ship.course,
            "speed_kt": ship.speed,
            "mission": self.mark("mission", spec.mission),
            "readiness": ship.readiness,
        })

    def move_ship(self, ship: _Ship, t_ms: int) -> None:
        """Advance ``ship`` to ``t_ms`` on its course and speed; turn now and then; stay in the box."""
        rng = self.rng
        elapsed_s = max(0, t_ms - ship.last_ms) / 1000.0
        ship.last_ms = max(ship.last_ms, t_ms)
        # Manoeuvre: on average every 15 minutes of real time.
        if elapsed_s > 0 and rng.random() < 1 - math.exp(-elapsed_s / 900.0):
            ship.course = round((ship.course + rng.choice((-1, 1)) * rng.uniform(10, 60)) % 360.0, 1) % 360.0
            ship.speed = round(min(ship.spec.speed[1], max(ship.spec.speed[0], ship.speed + rng.uniform(-3, 3))), 1)
            if rng.random() < 0.1:
                ship.readiness = self.readiness.pick(rng)
        distance_nm = ship.speed * elapsed_s / 3600.0
        lat, lon = self.advance(ship.lat, ship.lon, ship.course, distance_nm)
        lat_min, lat_max, lon_min, lon_max = ship.spec.box
        if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
            # Turn toward a point inside the box and steam there instead.
            aim_lat = rng.uniform(lat_min + 0.1 * (lat_max - lat_min), lat_max - 0.1 * (lat_max - lat_min))
            aim_lon = rng.uniform(lon_min + 0.1 * (lon_max - lon_min), lon_max - 0.1 * (lon_max - lon_min))
            ship.course = _heading(_bearing(ship.lat, ship.lon, aim_lat, aim_lon))
            lat, lon = self.advance(ship.lat, ship.lon, ship.course, distance_nm)
            lat = min(lat_max, max(lat_min, lat))
            lon = min(lon_max, max(lon_min, lon))
        ship.lat, ship.lon = lat, lon

    @staticmethod
    def advance(lat: float, lon: float, course: float, distance_nm: float) -> tuple[float, float]:
        rad = math.radians(course)
        dlat = distance_nm * math.cos(rad) / _NM_PER_DEG
        dlon = distance_nm * math.sin(rad) / (_NM_PER_DEG * math.cos(math.radians(lat)))
        return lat + dlat, lon + dlon

    # ------------------------------------------------------------------ air: plans

    def mission_plan(self, t_ms: int) -> AirMissionPlan:
        rng = self.rng
        if self.to_cancel and self.to_cancel[0].plan_ms < t_ms:
            return self.plan_model(self.to_cancel.popleft(), "CANCELLED", t_ms)
        r = rng.random()
        if r < _P_COMPLETED and self.landed:
            return self.plan_model(self.landed.popleft(), "COMPLETED", t_ms)
        if r < _P_COMPLETED + _P_ACTIVE:
            while self.awaiting_active and (self.awaiting_active[0].landing_ms <= t_ms or self.awaiting_active[0].cancelled):
                self.awaiting_active.popleft()
            if self.awaiting_active and self.awaiting_active[0].takeoff_ms <= t_ms:
                return self.plan_model(self.awaiting_active.popleft(), "ACTIVE", t_ms)
        sortie = self.new_sortie(t_ms)
        return self.plan_model(sortie, "PLANNED", t_ms)

    def new_sortie(self, t_ms: int) -> _Sortie:
        rng = self.rng
        origin: _Origin = self.origins.pick(rng)
        aircraft: _Aircraft = self.aircraft[origin.code].pick(rng)
        number = self.next_id(f"sortie:{origin.code}")
        takeoff = t_ms + round(self.sortie_ms * rng.uniform(0.02, 0.12))
        sortie_id = self.mark("sortie_id", f"{origin.code}-{self.day(takeoff)}-{number:04d}")
        # Callsigns cycle through word x 11..89 from a random point: no two sorties of an origin
        # airborne together share one (unless more than 316 of them are).
        slot = (self.callsign_offset[origin.code] + number) % (len(origin.callsigns) * 79)
        callsign = f"{origin.callsigns[slot // 79]} {11 + slot % 79}"
        track_id = f"TN-{40000 + self.next_id('track')}"
        # The plan's label is drawn once and reused when the plan is re-published.
        classification = self.classification["AirMissionPlan"].pick(rng)
        releasable_to = self.releasability.pick(rng)
        caveats = self.caveats("AirMissionPlan", releasable_to)

        if origin.position is None:
            home = (round(self.carrier.lat, 4), round(self.carrier.lon, 4))
            base_band = (0, 5000)
        else:
            home = origin.position
            base_band = (0, 10_000)
        home_name = origin.code
        route = [_Waypoint(home_name, home[0], home[1], *base_band)]
        place: _Place | None = None
        group_id = category = target_area = None
        target_index: int | None = None
        if aircraft.isr_only:
            for name, lat, lon in _AEW_ORBIT + _AEW_ORBIT[:1]:
                route.append(_Waypoint(name, lat, lon, 24_000, 28_000))
            purpose = "Airborne early warning and air-picture control for the carrier group"
            weapons: tuple[str, ...] = ()
        else:
            place = self.places.pick(rng)
            group_id = self.place_groups[place.name].pick(rng)
            category = self.place_categories[place.name].pick(rng)
            target_area = f"{place.name} / {rng.choice(place.subareas)}"
            transit = self.band(aircraft, "transit")
            for name, lat, lon in origin.ingress:
                route.append(_Waypoint(name, lat, lon, *transit))
            target_index = len(route)
            code = f"{rng.choice(_WAYPOINT_CODES)} {rng.randint(1, 9)}"
            route.append(_Waypoint(code, round(place.lat + rng.uniform(-0.08, 0.08), 4),
                                   round(place.lon + rng.uniform(-0.08, 0.08), 4), *self.band(aircraft, "target")))
            transit = self.band(aircraft, "transit")
            for name, lat, lon in origin.egress:
                route.append(_Waypoint(name, lat, lon, *transit))
            purpose = self.purpose(aircraft, place, group_id, category)
            weapons = aircraft.weapons
        route.append(_Waypoint(home_name, home[0], home[1], *base_band))

        # ETAs: constant ground speed over the (real) route, compressed into sortie_ms.
        legs = [_distance_km(a.lat, a.lon, b.lat, b.lon) for a, b in zip(route, route[1:])]
        total = sum(legs) or 1.0
        duration = round(self.sortie_ms * rng.uniform(0.85, 1.15))
        run = 0.0
        route[0].eta_ms = takeoff
        for waypoint, leg in zip(route[1:], legs):
            run += leg
            waypoint.eta_ms = takeoff + round(duration * run / total)
        landing = route[-1].eta_ms

        count_ = rng.choice(aircraft.counts)
        loadout: list[str] = []
        if weapons:
            per_aircraft = [rng.choice(weapons) for _ in range(rng.randint(1, 2))]
            loadout = per_aircraft * count_ + list(aircraft.pods)
        else:
            loadout = list(aircraft.pods)
        strikes = 0 if (not weapons or rng.random() < _P_NO_STRIKE) else rng.choice(_STRIKES_PER_SORTIE)

        sortie = _Sortie(
            sortie_id=sortie_id, callsign=callsign, track_id=track_id, origin=origin, aircraft=aircraft,
            aircraft_count=count_, base=origin.base, route=route, takeoff_ms=takeoff, landing_ms=landing,
            plan_ms=t_ms, target_index=target_index, place=place, group_id=group_id, category=category,
            mission_purpose=purpose, target_area=target_area, loadout=loadout, strikes=strikes,
            classification=classification, releasable_to=tuple(releasable_to), caveats=tuple(caveats),
        )
        sortie.etas = [waypoint.eta_ms for waypoint in route]
        if rng.random() < _P_CANCEL:
            sortie.cancelled = True
            self.to_cancel.append(sortie)
        else:
            self.airborne.append(sortie)
            self.awaiting_active.append(sortie)
        return sortie

    def band(self, aircraft: _Aircraft, kind: str) -> tuple[int, int]:
        rng = self.rng
        if aircraft.low:
            floor = rng.choice((14_000, 16_000)) if kind == "transit" else rng.choice((8_000, 10_000, 12_000))
            return floor, floor + rng.choice((3_000, 4_000))
        if kind == "transit":
            floor = rng.choice((20_000, 22_000, 24_000, 26_000))
            return floor, floor + rng.choice((2_000, 4_000))
        floor = rng.choice((15_000, 18_000, 20_000))
        return floor, floor + rng.choice((3_000, 5_000))

    def purpose(self, aircraft: _Aircraft, place: _Place, group_id: str, category: str) -> str:
        group = _GROUP_NAMES[group_id]
        what = category.lower().replace("_", " ")
        options = (
            f"Deliberate strike on {what} of {group}, {place.name}",
            f"Armed reconnaissance over {place.name} ({group})",
            f"Close air support to partner ground forces near {place.name}",
            f"Dynamic targeting in the {place.name} kill box",
        )
        if aircraft.low:
            options = (f"ISR and armed overwatch over {place.name} ({group})",
                       f"Pattern-of-life surveillance of {group} in {place.name}")
        return self.rng.choice(options)

    def plan_model(self, sortie: _Sortie, status: str, t_ms: int) -> AirMissionPlan:
        windows = [{"start": self.dt(sortie.takeoff_ms), "end": self.dt(sortie.landing_ms)}]
        if sortie.target_index is not None:
            eta = sortie.etas[sortie.target_index]
            half = max(1000, self.sortie_ms // 10)
            windows.append({"start": self.dt(eta - half), "end": self.dt(eta + half)})
        return AirMissionPlan.model_validate({
            "label": self.label("AirMissionPlan", sortie.origin.originator, t_ms,
                                classification=sortie.classification, releasable_to=sortie.releasable_to,
                                caveats=sortie.caveats),
            "sortie_id": sortie.sortie_id,
            "callsign": sortie.callsign,
            "aircraft_type": sortie.aircraft.type,
            "aircraft_count": sortie.aircraft_count,
            "base": self.mark("base", sortie.base),
            "carrier_based": sortie.origin.carrier_based,
            "status": status,
            "time_windows": windows,
            "route": [
                {
                    "name": wp.name,
                    "position": {"lat": wp.lat, "lon": wp.lon},
                    "altitude_band": {"floor_ft": wp.floor, "ceiling_ft": wp.ceiling},
                    "eta": self.dt(wp.eta_ms),
                }
                for wp in sortie.route
            ],
            "mission_purpose": self.mark("mission_purpose", sortie.mission_purpose),
            "target_area": None if sortie.target_area is None else self.mark("target_area", sortie.target_area),
            "weapons_loadout": [self.mark("weapons_loadout", item) for item in sortie.loadout],
        })

    # ------------------------------------------------------------------ air: tracks

    def air_track(self, t_ms: int) -> BaseModel:
        rng = self.rng
        pending = self.pending_strikes
        if pending and t_ms - pending[0][1] > _STRIKE_OVERDUE * self.sortie_ms:
            return self.strike_report(t_ms)
        if rng.random() >= _P_ORBITER:
            sortie = self.next_airborne(t_ms)
            if sortie is not None:
                return self.sortie_track(sortie, t_ms)
        return self.orbiter_track(t_ms)

    def next_airborne(self, t_ms: int) -> _Sortie | None:
        """The airborne sortie whose last track is oldest (round robin); drops landed ones."""
        airborne = self.airborne
        for _ in range(len(airborne)):
            sortie = airborne.popleft()
            if t_ms > sortie.landing_ms:
                sortie.landed = True
                self.landed.append(sortie)
                continue
            airborne.append(sortie)
            if t_ms >= sortie.takeoff_ms:
                return sortie
        return None

    def sortie_track(self, sortie: _Sortie, t_ms: int) -> AirTrack:
        rng = self.rng
        route, etas = sortie.route, sortie.etas
        k = min(max(bisect.bisect_right(etas, t_ms) - 1, 0), len(route) - 2)
        a, b = route[k], route[k + 1]
        span = etas[k + 1] - etas[k]
        f = min(1.0, max(0.0, (t_ms - etas[k]) / span)) if span > 0 else 1.0
        lat = a.lat + (b.lat - a.lat) * f
        lon = a.lon + (b.lon - a.lon) * f
        if f < 1.0:
            heading = _bearing(lat, lon, b.lat, b.lon)
        else:
            heading = _bearing(a.lat, a.lon, b.lat, b.lon)
        low = min(a.floor, b.floor)
        high = max(a.ceiling, b.ceiling)
        mid = (a.floor + a.ceiling) / 2 + ((b.floor + b.ceiling) / 2 - (a.floor + a.ceiling) / 2) * f
        altitude = int(min(high, max(low, mid + rng.uniform(-800, 800))))
        speed = sortie.aircraft.cruise_kt * rng.uniform(0.95, 1.05)
        if k == 0 and f < 0.3 or k == len(route) - 2 and f > 0.7:
            speed *= 0.65  # climbing out / recovering
        if (
            sortie.target_index is not None
            and not sortie.strikes_queued
            and t_ms >= etas[sortie.target_index]
        ):
            sortie.strikes_queued = True
            for _ in range(sortie.strikes):
                self.pending_strikes.append((sortie, t_ms))
        return AirTrack.model_validate({
            "label": self.label("AirTrack", sortie.origin.originator, t_ms),
            "track_id": sortie.track_id,
            "callsign": sortie.callsign,
            "time": self.dt(t_ms),
            "position": {"lat": round(lat, 5), "lon": round(lon, 5)},
            "altitude_ft": altitude,
            "heading_deg": _heading(heading),
            "speed_kt": round(speed, 1),
            "sortie_id": sortie.sortie_id,
        })

    def orbiter_track(self, t_ms: int) -> AirTrack:
        index = self.next_orbiter
        self.next_orbiter = (index + 1) % len(_ORBITERS)
        track_id, callsign, _type, originator, (clat, clon), radius_km, altitude, speed = _ORBITERS[index]
        period_ms = 2 * math.pi * radius_km / (speed * 1.852) * 3_600_000
        theta = self.orbit_phase[index] + 2 * math.pi * (t_ms / period_ms)
        lat = clat + radius_km / _KM_PER_DEG * math.cos(theta)
        lon = clon + radius_km / (_KM_PER_DEG * math.cos(math.radians(clat))) * math.sin(theta)
        return AirTrack.model_validate({
            "label": self.label("AirTrack", originator, t_ms),
            "track_id": track_id,
            "callsign": callsign,
            "time": self.dt(t_ms),
            "position": {"lat": round(lat, 5), "lon": round(lon, 5)},
            "altitude_ft": altitude + self.rng.randint(-200, 200),
            "heading_deg": _heading(math.degrees(theta) + 90.0),  # clockwise orbit
            "speed_kt": round(speed * self.rng.uniform(0.97, 1.03), 1),
            "sortie_id": None,
        })

    # ------------------------------------------------------------------ air: strikes

    def strike_report_slot(self, t_ms: int) -> BaseModel:
        if self.pending_strikes:
            return self.strike_report(t_ms)
        return self.air_track(t_ms)  # nothing to report yet: the slot carries a track

    def strike_report(self, t_ms: int) -> StrikeReport:
        rng = self.rng
        sortie, passed_ms = self.pending_strikes.popleft()
        assert sortie.target_index is not None and sortie.place is not None and sortie.group_id is not None
        target = sortie.route[sortie.target_index]
        target_eta = sortie.etas[sortie.target_index]
        strike_ms = target_eta + round(rng.random() * (passed_ms - target_eta))
        weapons = [item for item in sortie.loadout if item not in sortie.aircraft.pods] or list(sortie.aircraft.weapons)
        category = sortie.category if rng.random() < 0.8 else self.place_categories[sortie.place.name].pick(rng)
        return StrikeReport.model_validate({
            "label": self.label("StrikeReport", sortie.origin.originator, t_ms),
            "strike_id": f"STK-{self.day(strike_ms)}-{self.next_id('strike'):05d}",
            "sortie_id": sortie.sortie_id,
            "time": self.dt(strike_ms),
            "position": {"lat": round(target.lat + rng.uniform(-0.003, 0.003), 5),
                         "lon": round(target.lon + rng.uniform(-0.003, 0.003), 5)},
            "target_category": category,
            "group_id": sortie.group_id,
            "assessed_effect": self.effects.pick(rng),
            "collateral_assessment": self.mark("collateral_assessment", rng.choice(_COLLATERAL)),
            "weapon": self.mark("weapon", rng.choice(weapons)),
            "launch_platform": self.mark("launch_platform", f"{sortie.aircraft.type} ({sortie.callsign})"),
        })

    # ------------------------------------------------------------------ intel

    def group_location(self, t_ms: int) -> GroupLocationReport:
        rng = self.rng
        group_id = self.groups.pick(rng)
        _name, lat, lon = rng.choice(_GROUP_AREAS[group_id])
        observed = t_ms - rng.randint(5 * 60_000, 3 * 3_600_000)
        activity = rng.choice(_ACTIVITIES).format(site=rng.choice(_SITES))
        return GroupLocationReport.model_validate({
            "label": self.label("GroupLocationReport", "intel.cell", t_ms),
            "report_id": f"GLR-{self.day(t_ms)}-{self.next_id('glr'):05d}",
            "group_id": group_id,
            "time": self.dt(observed),
            "position": {"lat": round(lat + rng.uniform(-0.04, 0.04), 5), "lon": round(lon + rng.uniform(-0.04, 0.04), 5)},
            "radius_m": float(rng.choice((100, 250, 500, 1000, 2500))),
            "confidence": round(rng.uniform(0.3, 0.95), 2),
            "observed_activity": self.mark("observed_activity", activity),
            "source_type": self.source_types.pick(rng),
            "source_reliability": self.reliability.pick(rng),
        })

    def subject(self) -> _Subject:
        rng = self.rng
        if self.subjects and (len(self.subjects) >= 400 or rng.random() < 0.7):
            return self.subjects[rng.randrange(len(self.subjects))]
        _weight, nationality, language_options, culture = self.profiles.pick(rng)
        prefixes, suffixes = _FAMILY[culture]
        name = f"{rng.choice(_GIVEN[culture])} {(rng.choice(prefixes) + rng.choice(suffixes)).upper()}"
        dob = None
        if rng.random() < 0.8:
            dob = (datetime(1965, 1, 1) + timedelta(days=rng.randrange(37 * 365))).date()
        subject = _Subject(
            name=self.mark("subject.name", name),
            ref=self.mark("subject.subject_ref", f"ffs-{self.next_id('subject'):06d}"),
            nationality=list(nationality),
            languages=list(rng.choice(language_options)),
            date_of_birth=dob,
            affiliation=self.affiliations.pick(rng),
        )
        self.subjects.append(subject)
        return subject

    def foreign_fighter(self, t_ms: int) -> ForeignFighterReport:
        rng = self.rng
        subject = self.subject()
        area_name, lat, lon = rng.choice(_GROUP_AREAS[subject.affiliation])
        indicators = rng.sample(_TRAVEL, rng.randint(0, 3))
        return ForeignFighterReport.model_validate({
            "label": self.label("ForeignFighterReport", "intel.cell", t_ms),
            "report_id": self.mark("report_id", f"FFR-{self.day(t_ms)}-{self.next_id('ffr'):05d}"),
            "subject": {
                "name": subject.name,
                "subject_ref": subject.ref,
                "nationality": subject.nationality,
                "languages": subject.languages,
                "date_of_birth": subject.date_of_birth,
            },
            "affiliation": subject.affiliation,
            "last_known_area": {
                "name": f"{area_name} area",
                "center": {"lat": round(lat + rng.uniform(-0.05, 0.05), 4), "lon": round(lon + rng.uniform(-0.05, 0.05), 4)},
                "radius_km": float(rng.choice((5, 10, 25, 50))),
            },
            "travel_indicators": [self.mark("travel_indicators", item) for item in indicators],
            "time": self.dt(t_ms - rng.randint(3_600_000, 60 * 86_400_000)),
        })

    def logistics(self, t_ms: int) -> LogisticsObservation:
        rng = self.rng
        name, lat, lon, radius = rng.choice(_LOGISTICS_AREAS)
        hours = rng.choice((1, 6, 24))
        # The last full hour before the report ends the bucket.
        end_dt = self.dt(t_ms).replace(minute=0, second=0, microsecond=0)
        start_dt = end_dt - timedelta(hours=hours)
        kinds = rng.sample(_TRAFFIC, rng.randint(1, 4))
        scale = hours / 24
        return LogisticsObservation.model_validate({
            "label": self.label("LogisticsObservation", "intel.cell", t_ms),
            "observation_id": f"LOG-{self.day(t_ms)}-{self.next_id('log'):05d}",
            "area": {"name": name, "center": {"lat": lat, "lon": lon}, "radius_km": radius},
            "time_bucket_start": start_dt,
            "time_bucket_end": end_dt,
            "counts": [{"kind": kind, "count": round(rng.randint(*span) * scale)} for kind, span in kinds],
            "trend": self.trends.pick(rng),
        })

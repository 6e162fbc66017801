"""The air order of battle: bases, aircraft, routes, target places, support orbits and the air behaviour knobs."""

from __future__ import annotations

from dataclasses import dataclass

from producers.simulate.scenario import TARGETS

__all__ = [
    "Aircraft", "Origin", "ORIGINS", "AEW_ORBIT", "WAYPOINT_CODES", "Place", "TARGET_PLACES", "EFFECTS",
    "COLLATERAL", "ORBITERS", "AIRBORNE_TARGET", "SORTIE_SECONDS_MIN", "SORTIE_SECONDS_MAX", "NEW_SORTIE_SHARE",
    "P_COMPLETED", "P_ACTIVE", "P_CANCEL", "P_ORBITER", "P_NO_STRIKE", "STRIKES_PER_SORTIE", "STRIKE_OVERDUE",
]


@dataclass(frozen=True)
class Aircraft:
    type: str
    counts: tuple[int, ...]
    cruise_kt: float
    weapons: tuple[str, ...]      # releasable weapons; empty: unarmed
    pods: tuple[str, ...]         # loadout items that are not weapons
    low: bool = False             # flies lower (MALE drone, maritime patrol)
    isr_only: bool = False
    weight: float = 1.0


@dataclass(frozen=True)
class Origin:
    originator: str
    code: str
    base: str
    position: tuple[float, float] | None  # None: the carrier's current position
    carrier_based: bool
    ingress: tuple[tuple[str, float, float], ...]
    egress: tuple[tuple[str, float, float], ...]
    aircraft: tuple[Aircraft, ...]
    callsigns: tuple[str, ...]
    weight: float


ORIGINS: tuple[Origin, ...] = (
    Origin(
        "air.jordan", "MSA", "Muwaffaq Salti AB (Jordan)", (31.8327, 36.7820), False,
        (("TANGO", 33.45, 38.95),), (("SIERRA", 32.95, 38.35),),
        (
            Aircraft("Mirage 2000D", (2,), 450, ("GBU-12 Paveway II", "GBU-49 Enhanced Paveway II", "GBU-22 Paveway III"),
                      ("PDL-NG targeting pod",), weight=4),
            Aircraft("Rafale B", (2,), 480, ("GBU-12 Paveway II", "GBU-24 Paveway III", "AASM Hammer SBU-38", "SCALP EG"),
                      ("Damocles targeting pod",), weight=4),
            Aircraft("Atlantique 2", (1,), 300, ("GBU-12 Paveway II",), ("Wescam MX-20 EO/IR turret",), low=True, weight=2),
        ),
        ("TIGRE", "COBRA", "ZODIAC", "MISTRAL"), 40,
    ),
    Origin(
        "air.uae", "ADH", "Al Dhafra AB (UAE)", (24.2483, 54.5475), False,
        (("NOVEMBER", 28.60, 46.20), ("ROMEO", 32.40, 41.80)),
        (("QUEBEC", 32.05, 42.55), ("PAPA", 28.25, 47.05)),
        (
            Aircraft("Rafale C", (2,), 480, ("GBU-12 Paveway II", "AASM Hammer SBU-38", "GBU-24 Paveway III"),
                      ("Damocles targeting pod",), weight=4),
            Aircraft("Rafale B", (2, 4), 480, ("SCALP EG", "AASM Hammer SBU-38", "GBU-24 Paveway III"),
                      ("Damocles targeting pod",), weight=3),
            Aircraft("MQ-9 Reaper", (1,), 180, ("AGM-114 Hellfire", "GBU-38 JDAM", "GBU-12 Paveway II"),
                      ("MTS-B sensor turret",), low=True, weight=3),
        ),
        ("RAFALE", "SABRE", "FALCO", "VAUTOUR"), 30,
    ),
    Origin(
        "air.carrier-wing", "CDG", "R91 Charles de Gaulle (carrier)", None, True,
        (("LIMA", 36.70, 36.45),), (("MIKE", 36.95, 37.30),),
        (
            Aircraft("Rafale M", (2, 4), 480, ("GBU-12 Paveway II", "AASM Hammer SBU-38", "GBU-24 Paveway III", "SCALP EG"),
                      ("Damocles targeting pod",), weight=8),
            Aircraft("E-2C Hawkeye", (1,), 300, (), ("APS-145 radar",), isr_only=True, weight=2),
        ),
        ("MARINE", "CORSAIR", "ESPADON", "NARVAL"), 30,
    ),
)

# AEW orbit of the carrier's E-2C: a race-track off the Syrian coast, over the sea.
AEW_ORBIT = (("ORBIT-N", 35.05, 35.10), ("ORBIT-S", 34.55, 34.90))

WAYPOINT_CODES = ("ECHO", "GOLF", "HOTEL", "INDIA", "KILO", "OSCAR", "UNIFORM", "VICTOR", "WHISKEY", "XRAY", "YANKEE", "ZULU")


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float
    groups: tuple[tuple[str, float], ...]
    categories: tuple[tuple[str, float], ...]
    subareas: tuple[str, ...]
    weight: float


TARGET_PLACES: tuple[Place, ...] = (
    Place("Raqqa", *TARGETS["Raqqa"], (("daesh", 1),),
           (("COMMAND_POST", 30), ("WEAPONS_STORAGE", 20), ("TRAINING_CAMP", 15), ("VEHICLE", 15),
            ("INFRASTRUCTURE", 15), ("OTHER", 5)),
           ("northern industrial district", "al-Mishlab", "Tabqa road junction", "riverside compound"), 25),
    Place("Deir ez-Zor", *TARGETS["Deir ez-Zor"], (("daesh", 1),),
           (("OIL_TRANSPORT_LOGISTICS", 50), ("VEHICLE", 20), ("COMMAND_POST", 10), ("WEAPONS_STORAGE", 10),
            ("INFRASTRUCTURE", 10)),
           ("al-Omar fields", "al-Tanak field", "airport perimeter", "Jafra depot"), 20),
    Place("Mosul", *TARGETS["Mosul"], (("daesh", 1),),
           (("COMMAND_POST", 25), ("WEAPONS_STORAGE", 25), ("VEHICLE", 20), ("INFRASTRUCTURE", 15),
            ("TRAINING_CAMP", 10), ("OTHER", 5)),
           ("western bank", "al-Kindi complex", "Tal Afar road", "university district"), 20),
    Place("Idlib", *TARGETS["Idlib"], (("al-nusra", 55), ("hts", 30), ("ahrar-al-sham", 15)),
           (("COMMAND_POST", 30), ("WEAPONS_STORAGE", 25), ("TRAINING_CAMP", 20), ("VEHICLE", 20), ("OTHER", 5)),
           ("Saraqib road", "Maarat Misrin", "Binnish", "Taftanaz airfield area"), 20),
    Place("Abu Kamal", *TARGETS["Abu Kamal"], (("daesh", 1),),
           (("OIL_TRANSPORT_LOGISTICS", 35), ("VEHICLE", 25), ("COMMAND_POST", 15), ("INFRASTRUCTURE", 25)),
           ("border crossing", "al-Hamdan", "river crossing", "grain silos"), 15),
)

EFFECTS = (("DESTROYED", 40), ("DAMAGED", 35), ("NO_EFFECT", 10), ("UNKNOWN", 15))
COLLATERAL = (
    "No civilian structures within 500 m; no collateral damage assessed.",
    "Minor damage to an adjacent empty warehouse; no civilian casualties assessed.",
    "Civilian vehicle observed 300 m from the impact point; no damage assessed.",
    "Collateral assessment pending post-strike imagery.",
    "Secondary explosions observed; no civilian structures affected.",
)

# Support aircraft on race-track orbits (tracks without a sortie):
# track id, callsign, type, originator, orbit centre, radius km, altitude ft, speed kt.
ORBITERS = (
    ("TN-70061", "HAWK 61", "E-3F Sentry", "air.jordan", (32.90, 38.60), 45.0, 29_000, 360.0),
    ("TN-70072", "NECTAR 72", "C-135FR", "air.uae", (33.60, 41.00), 35.0, 26_000, 400.0),
)

# Behaviour knobs.
AIRBORNE_TARGET = 24             # sorties airborne at a time, when the rate allows
SORTIE_SECONDS_MIN = 30.0
SORTIE_SECONDS_MAX = 3 * 3600.0
NEW_SORTIE_SHARE = 0.7           # share of plan messages that announce a new sortie
P_COMPLETED = 0.15               # plan message re-publishes a landed sortie as COMPLETED
P_ACTIVE = 0.15                  # ... an airborne sortie as ACTIVE
P_CANCEL = 0.03                  # new sortie is later CANCELLED (never flies)
P_ORBITER = 0.06                 # air-track slot goes to a support aircraft
P_NO_STRIKE = 0.15               # armed sortie that releases nothing
STRIKES_PER_SORTIE = (1, 2, 2, 3)
STRIKE_OVERDUE = 0.25            # pending strike older than this share of a sortie is sent early

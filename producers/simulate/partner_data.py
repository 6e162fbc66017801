"""The simulated partners' order of battle: bases, aircraft, callsigns, ships, places, labels and originators.

``RUS``: the VKS air group at Hmeimim (near Latakia), the naval group off Tartus, its intelligence cell at
Hmeimim; ``USA``: the air wings at Incirlik and Al Udeid, destroyers in the eastern Mediterranean and a
carrier in the Gulf, the coalition intelligence cell. Everything here is data; the behaviour is in
:mod:`~producers.simulate.partner`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PartnerAircraft", "PartnerBase", "PartnerPlace", "PartnerShip", "Orbiter", "PartnerOrder", "ORDERS",
           "PARTNER_MIX", "WAYPOINT_NAMES"]


@dataclass(frozen=True)
class PartnerAircraft:
    type: str
    counts: tuple[int, ...]
    cruise_kt: float
    #: altitudes it flies at (feet): transit band floors are drawn in [low_ft, high_ft - 4000]
    low_ft: int
    high_ft: int
    weapons: tuple[str, ...]      # empty: does not strike (escort, ISR)
    weight: float = 1.0
    isr: bool = False             # flies an orbit instead of a strike route


@dataclass(frozen=True)
class PartnerBase:
    name: str
    code: str                     # sortie id prefix
    lat: float
    lon: float
    originator: str
    aircraft: tuple[PartnerAircraft, ...]
    #: how far its sorties go (km): target places beyond this are not flown to from here
    range_km: float
    weight: float = 1.0


@dataclass(frozen=True)
class PartnerPlace:
    name: str
    lat: float
    lon: float
    groups: tuple[tuple[str, float], ...]
    categories: tuple[tuple[str, float], ...]
    weight: float = 1.0


@dataclass(frozen=True)
class PartnerShip:
    ship_id: str
    name: str
    ship_class: str
    box: tuple[float, float, float, float]  # open water: lat_min, lat_max, lon_min, lon_max
    speed: tuple[float, float]
    mission: str


@dataclass(frozen=True)
class Orbiter:
    track_id: str
    callsign: str
    centre: tuple[float, float]
    radius_km: float
    altitude_ft: int
    speed_kt: float


@dataclass(frozen=True)
class PartnerOrder:
    code: str
    air_originator: str
    naval_originator: str
    intel_originator: str
    bases: tuple[PartnerBase, ...]
    callsigns: tuple[str, ...]
    places: tuple[PartnerPlace, ...]
    ships: tuple[PartnerShip, ...]
    orbiters: tuple[Orbiter, ...]
    #: REL TO lists of what it sends us (always naming FRA), with weights
    releasability: tuple[tuple[tuple[str, ...], float], ...]
    #: classification weights: UNCLASSIFIED, RESTRICTED, CONFIDENTIAL, SECRET (within what we accept of it)
    classification: tuple[float, float, float, float]
    #: originators that are not this partner's (the wrong-originator bad input): another partner, one of ours
    foreign_originators: tuple[str, ...]
    #: REL TO lists without FRA (the wrong-releasability bad input)
    rel_to_without_fra: tuple[tuple[str, ...], ...]
    #: foreign-fighter areas: (name, lat, lon, group)
    fighter_areas: tuple[tuple[str, float, float, str], ...]
    #: logistics observation areas: (name, lat, lon, radius km)
    logistics_areas: tuple[tuple[str, float, float, float], ...]


#: Relative share (by count) of each message type a partner sends.
PARTNER_MIX: dict[str, float] = {
    "AirMissionPlan": 8.0,
    "AirTrack": 45.0,
    "MaritimeTrack": 18.0,
    "StrikeReport": 8.0,
    "GroupLocationReport": 8.0,
    "ForeignFighterReport": 6.0,
    "LogisticsObservation": 7.0,
}

WAYPOINT_NAMES = ("ALMAZ", "BEREG", "VOLNA", "GRANIT", "DUGA", "ZARYA", "KAMEN", "LUNA", "MOST", "NEVA", "OKA",
                  "POLE", "RUBIN", "TAIGA")

_STRIKE_CATEGORIES = (("COMMAND_POST", 25), ("WEAPONS_STORAGE", 25), ("TRAINING_CAMP", 10), ("VEHICLE", 20),
                      ("INFRASTRUCTURE", 10), ("OTHER", 10))
_OIL = (("OIL_TRANSPORT_LOGISTICS", 50), ("VEHICLE", 20), ("COMMAND_POST", 15), ("INFRASTRUCTURE", 15))

_HMEIMIM = (35.4011, 35.9486)

_RUS_AIRCRAFT = (
    PartnerAircraft("Su-34", (2,), 480, 15_000, 30_000, ("KAB-500S", "OFAB-500ShR", "KAB-1500L"), weight=4),
    PartnerAircraft("Su-24M", (2, 4), 450, 12_000, 26_000, ("OFAB-250-270", "KAB-500KR", "FAB-500M62"), weight=4),
    PartnerAircraft("Su-35S", (2,), 500, 20_000, 34_000, (), weight=2),  # escort / air patrol: no strikes
    PartnerAircraft("Su-25SM", (2, 4), 400, 8_000, 18_000, ("S-8 rockets", "OFAB-250-270"), weight=2),
    PartnerAircraft("Ka-52", (2,), 150, 500, 8_000, ("9M120 Ataka", "S-8 rockets"), weight=1),
    PartnerAircraft("Il-20M", (1,), 330, 22_000, 30_000, (), weight=1, isr=True),
)

_USA_AIRCRAFT_INCIRLIK = (
    PartnerAircraft("F-15E", (2,), 480, 15_000, 32_000, ("GBU-31 JDAM", "GBU-12 Paveway II", "GBU-38 JDAM"), weight=4),
    PartnerAircraft("F-16C", (2, 4), 480, 15_000, 32_000, ("GBU-12 Paveway II", "GBU-38 JDAM", "AGM-65 Maverick"),
                    weight=3),
    PartnerAircraft("A-10C", (2,), 300, 8_000, 20_000, ("GAU-8 30 mm", "AGM-65 Maverick", "GBU-38 JDAM"), weight=3),
    PartnerAircraft("MQ-1B Predator", (1,), 80, 8_000, 18_000, ("AGM-114 Hellfire",), weight=2),
    PartnerAircraft("E-3G Sentry", (1,), 360, 26_000, 32_000, (), weight=1, isr=True),
)
_USA_AIRCRAFT_UDEID = (
    PartnerAircraft("B-1B", (1, 2), 500, 20_000, 34_000, ("GBU-31 JDAM", "GBU-38 JDAM", "GBU-54 Laser JDAM"),
                    weight=3),
    PartnerAircraft("F-22A", (2,), 520, 24_000, 36_000, ("GBU-32 JDAM", "GBU-39 SDB"), weight=2),
    PartnerAircraft("KC-135R", (1,), 450, 24_000, 30_000, (), weight=1, isr=True),
)

ORDERS: dict[str, PartnerOrder] = {
    "RUS": PartnerOrder(
        code="RUS",
        air_originator="rus.vks.hmeimim",
        naval_originator="rus.vmf.tartus",
        intel_originator="rus.gru.hmeimim",
        bases=(PartnerBase("Hmeimim AB (Latakia)", "HMM", *_HMEIMIM, "rus.vks.hmeimim", _RUS_AIRCRAFT, 650.0),),
        callsigns=("SOKOL", "BERKUT", "GROZA", "KOMETA", "ALMAZ", "STRIZH", "VITYAZ", "KORSHUN"),
        places=(
            PartnerPlace("Idlib", 35.93, 36.63, (("al-nusra", 1),), _STRIKE_CATEGORIES, 25),
            PartnerPlace("Jisr al-Shughur", 35.81, 36.32, (("al-nusra", 1),), _STRIKE_CATEGORIES, 10),
            PartnerPlace("Palmyra", 34.55, 38.27, (("daesh", 1),), _STRIKE_CATEGORIES, 20),
            PartnerPlace("Raqqa", 35.95, 39.00, (("daesh", 1),), _STRIKE_CATEGORIES, 20),
            PartnerPlace("Deir ez-Zor", 35.33, 40.14, (("daesh", 1),), _OIL, 15),
            PartnerPlace("al-Bab", 36.37, 37.52, (("daesh", 1),), _STRIKE_CATEGORIES, 10),
        ),
        ships=(
            PartnerShip("RUS-121", "Moskva", "Slava class (cruiser)", (34.70, 35.30, 35.05, 35.60), (8, 16),
                        "Air defence of the Hmeimim group from the sea"),
            PartnerShip("RUS-745", "Admiral Grigorovich", "Project 11356 (frigate)", (34.60, 35.20, 35.20, 35.75),
                        (8, 18), "Escort and land-attack readiness off Tartus"),
            PartnerShip("RUS-810", "Smetlivy", "Kashin class (destroyer)", (34.75, 35.35, 35.10, 35.70), (6, 14),
                        "Surface picture of the approaches to Tartus"),
            PartnerShip("RUS-609", "Vyshny Volochyok", "Buyan-M (corvette)", (34.70, 35.10, 35.40, 35.80), (6, 14),
                        "Coastal patrol off Tartus"),
            PartnerShip("RUS-151", "Azov", "Ropucha class (landing ship)", (34.85, 35.05, 35.50, 35.82), (4, 12),
                        "Supply run to the Tartus naval facility"),
        ),
        orbiters=(Orbiter("RUS-TN-9001", "KOMETA 01", (35.45, 35.55), 30.0, 27_000, 330.0),),
        releasability=((("RUS", "FRA"), 85), (("RUS", "FRA", "USA"), 15)),
        classification=(10, 50, 40, 0),          # RUS: ceiling CONFIDENTIAL
        foreign_originators=("usa.centcom", "air.jordan"),
        rel_to_without_fra=(("RUS",), ("RUS", "SYR")),
        fighter_areas=(("Raqqa", 35.95, 39.00, "daesh"), ("Deir ez-Zor", 35.33, 40.14, "daesh"),
                       ("Palmyra", 34.55, 38.27, "daesh"), ("Idlib", 35.93, 36.63, "al-nusra"),
                       ("Jisr al-Shughur", 35.81, 36.32, "al-nusra")),
        logistics_areas=(("Deir ez-Zor - al-Mayadin road", 35.02, 40.45, 15.0),
                         ("Palmyra - Deir ez-Zor road", 34.95, 39.20, 25.0),
                         ("al-Omar oil field access", 35.10, 40.60, 10.0),
                         ("Raqqa - Deir ez-Zor highway", 35.60, 39.60, 20.0)),
    ),
    "USA": PartnerOrder(
        code="USA",
        air_originator="usa.afcent.incirlik",
        naval_originator="usa.navy.ctf-60",
        intel_originator="usa.cjtf-oir.intel",
        bases=(
            PartnerBase("Incirlik AB (Turkey)", "INC", 37.0017, 35.4259, "usa.afcent.incirlik",
                        _USA_AIRCRAFT_INCIRLIK, 900.0, weight=3),
            PartnerBase("Al Udeid AB (Qatar)", "AUD", 25.1173, 51.3150, "usa.afcent.udeid", _USA_AIRCRAFT_UDEID,
                        1900.0, weight=1),
        ),
        callsigns=("DUDE", "VIPER", "HAWG", "BONE", "RAGE", "SLAM", "COLT", "SHELL"),
        places=(
            PartnerPlace("Raqqa", 35.95, 39.00, (("daesh", 1),), _STRIKE_CATEGORIES, 25),
            PartnerPlace("Deir ez-Zor", 35.33, 40.14, (("daesh", 1),), _OIL, 15),
            PartnerPlace("Mosul", 36.34, 43.13, (("daesh", 1),), _STRIKE_CATEGORIES, 20),
            PartnerPlace("Manbij", 36.53, 37.95, (("daesh", 1),), _STRIKE_CATEGORIES, 15),
            PartnerPlace("Abu Kamal", 34.45, 40.92, (("daesh", 1),), _OIL, 10),
            PartnerPlace("Idlib", 35.93, 36.63, (("al-nusra", 1),), _STRIKE_CATEGORIES, 5),
        ),
        ships=(
            PartnerShip("DDG-75", "USS Donald Cook", "Arleigh Burke class (DDG)", (33.80, 34.60, 32.80, 34.40),
                        (10, 20), "Ballistic-missile defence patrol, eastern Mediterranean"),
            PartnerShip("DDG-71", "USS Ross", "Arleigh Burke class (DDG)", (33.90, 34.80, 33.00, 34.60), (10, 20),
                        "Eastern Mediterranean presence and air-picture"),
            PartnerShip("CVN-75", "USS Harry S. Truman", "Nimitz class (CVN)", (25.80, 26.60, 52.40, 54.40),
                        (12, 24), "Carrier flight operations, central Gulf"),
            PartnerShip("CG-55", "USS Leyte Gulf", "Ticonderoga class (CG)", (25.80, 26.60, 52.40, 54.40),
                        (12, 24), "Air-defence commander of the carrier group"),
        ),
        orbiters=(Orbiter("USA-TN-7701", "DARKSTAR 21", (36.60, 37.60), 40.0, 30_000, 360.0),
                  Orbiter("USA-TN-7702", "SHELL 71", (35.50, 41.50), 35.0, 26_000, 400.0)),
        releasability=((("USA", "FRA"), 60), (("USA", "FRA", "GBR"), 30), (("USA", "FRA", "GBR", "AUS", "CAN"), 10)),
        classification=(5, 25, 45, 25),          # USA: ceiling SECRET
        foreign_originators=("rus.vks.hmeimim", "intel.cell"),
        rel_to_without_fra=(("USA",), ("USA", "GBR")),
        fighter_areas=(("Raqqa", 35.95, 39.00, "daesh"), ("Mosul", 36.34, 43.13, "daesh"),
                       ("Manbij", 36.53, 37.95, "daesh"), ("Deir ez-Zor", 35.33, 40.14, "daesh"),
                       ("Idlib", 35.93, 36.63, "al-nusra")),
        logistics_areas=(("Deir ez-Zor - al-Mayadin road", 35.02, 40.45, 15.0),
                         ("Mosul - Raqqa road (Tal Afar)", 36.37, 42.45, 20.0),
                         ("Abu Kamal crossing", 34.45, 40.92, 10.0),
                         ("Manbij - Jarabulus road", 36.70, 38.00, 15.0)),
    ),
}

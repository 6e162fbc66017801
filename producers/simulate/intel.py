"""The intelligence component: GroupLocationReports, ForeignFighterReports and LogisticsObservations.

``intel.cell``: group locations of designated (``daesh``, ``al-nusra``) and non-designated
groups (``hts``, ``ypg``, ``ahrar-al-sham``, ``fsa``), foreign-fighter reports on a recurring
pool of fictitious subjects (French-, Russian-, English-, Arabic-, German-speaking, incl.
Russian-speaking Kazakh, Uzbek, Georgian, ... citizens and dual nationals) and aggregated
logistics observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from producers.simulate.labels import Labels
from producers.simulate.run import Run
from producers.simulate.weighted import Weighted
from schemas.models import ForeignFighterReport, GroupLocationReport, LogisticsObservation

__all__ = ["Intel"]

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


@dataclass
class _Subject:
    name: str
    ref: str
    nationality: list[str]
    languages: list[str]
    date_of_birth: Any
    affiliation: str


class Intel:
    """The intelligence cell of one run: its reports and its pool of foreign-fighter subjects."""

    def __init__(self, run: Run, labels: Labels):
        self.rng = run.rng
        self.dt, self.day, self.next_id, self.mark, self.label = run.dt, run.day, run.next_id, run.mark, labels.label
        self.groups = Weighted(_GROUP_WEIGHTS)
        self.source_types = Weighted(_SOURCE_TYPES)
        self.reliability = Weighted(_RELIABILITY)
        self.profiles = Weighted([(profile, profile[0]) for profile in _FIGHTER_PROFILES])
        self.affiliations = Weighted(_AFFILIATIONS)
        self.trends = Weighted(_TRENDS)
        self.subjects: list[_Subject] = []

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

"""The air component: sorties planned, flown and reported as AirMissionPlans, AirTracks and StrikeReports.

``air.jordan`` from Muwaffaq Salti AB, ``air.uae`` from Al Dhafra AB, ``air.carrier-wing`` from
the carrier: sorties against Raqqa, Deir ez-Zor, Mosul, Idlib and Abu Kamal. A sortie's
:class:`~schemas.models.AirMissionPlan` (status ``PLANNED``) is published before it takes off;
its :class:`~schemas.models.AirTrack`\\ s follow the plan's route (position interpolated between
waypoints by ETA, altitude inside the envelope of the leg's two altitude bands, heading toward
the next waypoint); once a track has passed the target waypoint the sortie's
:class:`~schemas.models.StrikeReport`\\ s follow (strike time at or after the target ETA, never
after the report). Plans are re-published ``ACTIVE`` after take-off, ``COMPLETED`` after
landing, and a few are ``CANCELLED`` (those never fly). Two support aircraft (AWACS, tanker) fly
race-track orbits and report tracks without a sortie.

Sorties are time-compressed: a sortie flies its (real) route in ``sortie_ms`` of event time
(see :meth:`~producers.simulate.simulator.Simulator.sortie_seconds`); the reported airspeeds
are realistic, the ground speed implied by a compressed plan's ETAs is not.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel

from producers.simulate import geo
from producers.simulate.air_data import (
    AEW_ORBIT,
    COLLATERAL,
    EFFECTS,
    ORBITERS,
    ORIGINS,
    P_ACTIVE,
    P_CANCEL,
    P_COMPLETED,
    P_NO_STRIKE,
    P_ORBITER,
    STRIKE_OVERDUE,
    STRIKES_PER_SORTIE,
    TARGET_PLACES,
    WAYPOINT_CODES,
    Aircraft,
    Origin,
    Place,
)
from producers.simulate.labels import Labels
from producers.simulate.run import Run
from producers.simulate.scenario import GROUP_NAMES
from producers.simulate.weighted import Weighted
from schemas.models import AirMissionPlan, AirTrack, StrikeReport

__all__ = ["Air"]


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
    origin: Origin
    aircraft: Aircraft
    aircraft_count: int
    base: str
    route: list[_Waypoint]
    takeoff_ms: int
    landing_ms: int
    plan_ms: int
    target_index: int | None
    place: Place | None
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


class Air:
    """The sorties and support orbits of one run and their plan, track and strike reports."""

    def __init__(self, run: Run, labels: Labels, carrier, sortie_ms: int):
        self.rng = rng = run.rng
        self.dt, self.day, self.next_id, self.mark = run.dt, run.day, run.next_id, run.mark
        self.label, self.caveats = labels.label, labels.caveats
        self.classification, self.releasability = labels.classification, labels.releasability
        #: The carrier (a ship of :class:`~producers.simulate.naval.Naval`): the carrier wing's base.
        self.carrier = carrier
        self.sortie_ms = sortie_ms
        self.origins = Weighted([(origin, origin.weight) for origin in ORIGINS])
        self.aircraft = {origin.code: Weighted([(a, a.weight) for a in origin.aircraft]) for origin in ORIGINS}
        self.places = Weighted([(place, place.weight) for place in TARGET_PLACES])
        self.place_groups = {place.name: Weighted(place.groups) for place in TARGET_PLACES}
        self.place_categories = {place.name: Weighted(place.categories) for place in TARGET_PLACES}
        self.effects = Weighted(EFFECTS)
        self.orbit_phase = [rng.uniform(0, 2 * math.pi) for _ in ORBITERS]
        self.callsign_offset = {origin.code: rng.randrange(len(origin.callsigns) * 79) for origin in ORIGINS}

        self.airborne: deque[_Sortie] = deque()       # flying or about to: round-robin for tracks
        self.awaiting_active: deque[_Sortie] = deque()
        self.landed: deque[_Sortie] = deque(maxlen=256)
        self.to_cancel: deque[_Sortie] = deque()
        self.pending_strikes: deque[tuple[_Sortie, int]] = deque()
        self.next_orbiter = 0

    def mission_plan(self, t_ms: int) -> AirMissionPlan:
        rng = self.rng
        if self.to_cancel and self.to_cancel[0].plan_ms < t_ms:
            return self.plan_model(self.to_cancel.popleft(), "CANCELLED", t_ms)
        r = rng.random()
        if r < P_COMPLETED and self.landed:
            return self.plan_model(self.landed.popleft(), "COMPLETED", t_ms)
        if r < P_COMPLETED + P_ACTIVE:
            while self.awaiting_active and (self.awaiting_active[0].landing_ms <= t_ms or self.awaiting_active[0].cancelled):
                self.awaiting_active.popleft()
            if self.awaiting_active and self.awaiting_active[0].takeoff_ms <= t_ms:
                return self.plan_model(self.awaiting_active.popleft(), "ACTIVE", t_ms)
        sortie = self.new_sortie(t_ms)
        return self.plan_model(sortie, "PLANNED", t_ms)

    def new_sortie(self, t_ms: int) -> _Sortie:
        rng = self.rng
        origin: Origin = self.origins.pick(rng)
        aircraft: Aircraft = self.aircraft[origin.code].pick(rng)
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
        place: Place | None = None
        group_id = category = target_area = None
        target_index: int | None = None
        if aircraft.isr_only:
            for name, lat, lon in AEW_ORBIT + AEW_ORBIT[:1]:
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
            code = f"{rng.choice(WAYPOINT_CODES)} {rng.randint(1, 9)}"
            route.append(_Waypoint(code, round(place.lat + rng.uniform(-0.08, 0.08), 4),
                                   round(place.lon + rng.uniform(-0.08, 0.08), 4), *self.band(aircraft, "target")))
            transit = self.band(aircraft, "transit")
            for name, lat, lon in origin.egress:
                route.append(_Waypoint(name, lat, lon, *transit))
            purpose = self.purpose(aircraft, place, group_id, category)
            weapons = aircraft.weapons
        route.append(_Waypoint(home_name, home[0], home[1], *base_band))

        # ETAs: constant ground speed over the (real) route, compressed into sortie_ms.
        legs = [geo.distance_km(a.lat, a.lon, b.lat, b.lon) for a, b in zip(route, route[1:])]
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
        strikes = 0 if (not weapons or rng.random() < P_NO_STRIKE) else rng.choice(STRIKES_PER_SORTIE)

        sortie = _Sortie(
            sortie_id=sortie_id, callsign=callsign, track_id=track_id, origin=origin, aircraft=aircraft,
            aircraft_count=count_, base=origin.base, route=route, takeoff_ms=takeoff, landing_ms=landing,
            plan_ms=t_ms, target_index=target_index, place=place, group_id=group_id, category=category,
            mission_purpose=purpose, target_area=target_area, loadout=loadout, strikes=strikes,
            classification=classification, releasable_to=tuple(releasable_to), caveats=tuple(caveats),
        )
        sortie.etas = [waypoint.eta_ms for waypoint in route]
        if rng.random() < P_CANCEL:
            sortie.cancelled = True
            self.to_cancel.append(sortie)
        else:
            self.airborne.append(sortie)
            self.awaiting_active.append(sortie)
        return sortie

    def band(self, aircraft: Aircraft, kind: str) -> tuple[int, int]:
        rng = self.rng
        if aircraft.low:
            floor = rng.choice((14_000, 16_000)) if kind == "transit" else rng.choice((8_000, 10_000, 12_000))
            return floor, floor + rng.choice((3_000, 4_000))
        if kind == "transit":
            floor = rng.choice((20_000, 22_000, 24_000, 26_000))
            return floor, floor + rng.choice((2_000, 4_000))
        floor = rng.choice((15_000, 18_000, 20_000))
        return floor, floor + rng.choice((3_000, 5_000))

    def purpose(self, aircraft: Aircraft, place: Place, group_id: str, category: str) -> str:
        group = GROUP_NAMES[group_id]
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
        if pending and t_ms - pending[0][1] > STRIKE_OVERDUE * self.sortie_ms:
            return self.strike_report(t_ms)
        if rng.random() >= P_ORBITER:
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
            heading = geo.bearing(lat, lon, b.lat, b.lon)
        else:
            heading = geo.bearing(a.lat, a.lon, b.lat, b.lon)
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
            "heading_deg": geo.heading(heading),
            "speed_kt": round(speed, 1),
            "sortie_id": sortie.sortie_id,
        })

    def orbiter_track(self, t_ms: int) -> AirTrack:
        index = self.next_orbiter
        self.next_orbiter = (index + 1) % len(ORBITERS)
        track_id, callsign, _type, originator, (clat, clon), radius_km, altitude, speed = ORBITERS[index]
        period_ms = 2 * math.pi * radius_km / (speed * 1.852) * 3_600_000
        theta = self.orbit_phase[index] + 2 * math.pi * (t_ms / period_ms)
        lat = clat + radius_km / geo.KM_PER_DEG * math.cos(theta)
        lon = clon + radius_km / (geo.KM_PER_DEG * math.cos(math.radians(clat))) * math.sin(theta)
        return AirTrack.model_validate({
            "label": self.label("AirTrack", originator, t_ms),
            "track_id": track_id,
            "callsign": callsign,
            "time": self.dt(t_ms),
            "position": {"lat": round(lat, 5), "lon": round(lon, 5)},
            "altitude_ft": altitude + self.rng.randint(-200, 200),
            "heading_deg": geo.heading(math.degrees(theta) + 90.0),  # clockwise orbit
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
            "collateral_assessment": self.mark("collateral_assessment", rng.choice(COLLATERAL)),
            "weapon": self.mark("weapon", rng.choice(weapons)),
            "launch_platform": self.mark("launch_platform", f"{sortie.aircraft.type} ({sortie.callsign})"),
        })

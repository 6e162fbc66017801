"""The naval component: ships steaming in their patrol boxes, reported as MaritimeTracks.

``naval.cvn-group``, ``naval.gulf-group``: a carrier group south of Cyprus (a nuclear carrier
with air-defence destroyers, a FREMM and a replenishment oiler), a picket off the Syrian coast
next to the partner's fleet, and a task group in the central Gulf. Each ship moves on its course
and speed between reports (at its real speed), turns now and then, and stays in its patrol box
(all boxes are open water inside :data:`~producers.simulate.scenario.EAST_MED` and
:data:`~producers.simulate.scenario.GULF`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from producers.simulate import geo
from producers.simulate.labels import Labels
from producers.simulate.run import Run
from producers.simulate.weighted import Weighted
from schemas.models import MaritimeTrack

__all__ = ["Naval"]


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


@dataclass
class _Ship:
    spec: _ShipSpec
    lat: float
    lon: float
    course: float
    speed: float
    readiness: str
    last_ms: int = 0


class Naval:
    """The ships of one run (created from the run's generator) and their track reports."""

    def __init__(self, run: Run, labels: Labels):
        self.rng = rng = run.rng
        self.dt, self.mark, self.label = run.dt, run.mark, labels.label
        self.readiness = Weighted(_READINESS)
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
        #: The carrier, whose position the carrier wing's sorties start from.
        self.carrier = self.ships[0]

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
        lat, lon = geo.advance(ship.lat, ship.lon, ship.course, distance_nm)
        lat_min, lat_max, lon_min, lon_max = ship.spec.box
        if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
            # Turn toward a point inside the box and steam there instead.
            aim_lat = rng.uniform(lat_min + 0.1 * (lat_max - lat_min), lat_max - 0.1 * (lat_max - lat_min))
            aim_lon = rng.uniform(lon_min + 0.1 * (lon_max - lon_min), lon_max - 0.1 * (lon_max - lon_min))
            ship.course = geo.heading(geo.bearing(ship.lat, ship.lon, aim_lat, aim_lon))
            lat, lon = geo.advance(ship.lat, ship.lon, ship.course, distance_nm)
            lat = min(lat_max, max(lat_min, lat))
            lon = min(lon_max, max(lon_min, lon))
        ship.lat, ship.lon = lat, lon

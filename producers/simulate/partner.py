"""The simulated partner: what a partner publishes to us on its inbound topics, good records and bad input.

``liaison simulate partner --partner RUS`` drives :class:`PartnerSimulator`; the tests use the same generator.
Everything is a pure function of ``(partner, formats, seed, start, rate, options)``: no Kafka here, the records
come out as the bytes to send (:class:`Outgoing`: topic, key, value, headers).

The world (for ``RUS``; ``USA`` is alike, see :mod:`~producers.simulate.partner_data`): sorties of the VKS from
Hmeimim (Su-34, Su-24M, Su-35S, Su-25SM, Ka-52, Il-20M; callsigns SOKOL 21, BERKUT 34 ...) published as
AirMissionPlans (PLANNED before take-off, ACTIVE, COMPLETED) and flown as AirTracks along their route; strike
reports on the designated groups they strike; the naval group off Tartus as MaritimeTracks; group locations,
foreign-fighter reports on French nationals and French speakers, logistics observations. Labels: originator
``rus.<unit>`` (``rus.vks.hmeimim``, ``rus.vmf.tartus``, ``rus.gru.hmeimim``), REL TO naming FRA, classification
within what we accept of the partner.

Crossing sorties
----------------
A share (``cross_share``) of the partner's new sorties is planned against one of *our* sorties: the generator
runs our own simulator (:class:`~producers.simulate.Simulator`, the one ``liaison simulate`` runs: same
components, seed, rate and start as given by :class:`Ours`) and picks one of our planned sorties and one of its
route waypoints (not its base) that the partner can reach in time; the partner's route then passes a waypoint
2-8 km from ours, in an altitude band that overlaps ours, at an ETA within 3 % of a sortie's duration of ours.
Both time windows contain that moment. :attr:`PartnerStream.crossings` lists them (the unit tests recompute
them from the records).

Bad input
---------
A share (``bad_share``) of the records is bad, of every class in :data:`BAD_CLASSES` in turn (each round of
classes in a shuffled order). Every bad record carries the header ``sim.bad=<class>`` and ``sim.variant=<how>``;
good records carry no ``sim.*`` header. ``oversized_broker`` records are larger than the inbound topics'
``max.message.bytes`` (128 KiB): the broker refuses them (MSG_SIZE_TOO_LARGE), they are never on a topic.

Time
----
``label.created_at`` of a good record is ``start + offset``; observation times are at or before it and within
days (the guard refuses a record created more than 7 days ago). Sorties are time-compressed like ours: a sortie
flies its route in ``sortie_seconds`` of event time (default derived from the rate, 30 s .. 3 h).
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import math
import random
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import count
from typing import Any, Iterator, Mapping

import schemas
from core.serde import Encoder, frame
from core.topics import inbound_topic
from producers.simulate import geo
from producers.simulate.partner_data import (
    ORDERS,
    PARTNER_MIX,
    WAYPOINT_NAMES,
    PartnerAircraft,
    PartnerBase,
    PartnerOrder,
    PartnerPlace,
)
from producers.simulate.scenario import DEFAULT_START
from producers.simulate.simulator import Simulator
from producers.simulate.weighted import Weighted
from schemas.models import MODELS, to_avro

__all__ = ["BAD_CLASSES", "BAD_CLASS_CHECK", "BAD_HEADER", "VARIANT_HEADER", "PARTNERS", "UNREGISTERED_SCHEMA_ID",
           "GUARD_MAX_RECORD_BYTES", "BROKER_MAX_RECORD_BYTES", "Format", "Ours", "Outgoing", "Crossing",
           "PartnerSimulator", "PartnerStream", "project"]

#: Partners the simulator knows (their order of battle is in partner_data).
PARTNERS: tuple[str, ...] = tuple(ORDERS)

BAD_HEADER = "sim.bad"
VARIANT_HEADER = "sim.variant"

#: Every class of bad input, and the guard check each is meant to fail.
BAD_CLASSES: dict[str, str] = {
    "wrong_schema_id": "framing: a schema id not registered under the inbound subject",
    "bad_magic": "framing: not a Confluent-framed value (magic byte 0x01, JSON text, 3 bytes)",
    "garbage_body": "decoding: the right id, a body that does not decode (random bytes, truncated)",
    "invalid_values": "validation: values the model refuses (latitude 95, altitude -5000 ft, negative speed...)",
    "label_missing": "label: null",
    "label_classification": "label: TOP_SECRET, above what we accept of the partner",
    "label_rel_to": "label: REL TO without FRA",
    "wrong_originator": "originator: not the partner's (another partner, one of our components)",
    "replay": "replay: a message id sent before (the same bytes again, or a new record reusing the id)",
    "future_timestamp": "time: label.created_at 2 days ahead",
    "past_timestamp": "time: label.created_at 30 days ago",
    "oversized": "size: above the guard's record limit (~48 KiB), below the broker's 128 KiB",
    "oversized_broker": "size: ~200 KiB, above the topic's max.message.bytes: the broker refuses it",
}

#: The ingress guard's check (consumers.ingress.checks.CHECKS) each class is meant to fail first; None: never on a
#: topic (the broker refuses it).
BAD_CLASS_CHECK: dict[str, str | None] = {
    "wrong_schema_id": "schema", "bad_magic": "framing", "garbage_body": "avro", "invalid_values": "validation",
    "label_missing": "label", "label_classification": "label", "label_rel_to": "label",
    "wrong_originator": "originator", "replay": "replay", "future_timestamp": "time", "past_timestamp": "time",
    "oversized": "size", "oversized_broker": None,
}
assert set(BAD_CLASS_CHECK) == set(BAD_CLASSES)

#: A schema id no registry of ours hands out (the wrong-schema-id variant `unregistered`).
UNREGISTERED_SCHEMA_ID = 2_147_483_000
#: The ingress guard's record limit (bytes of the framed value), and the inbound topics' max.message.bytes.
GUARD_MAX_RECORD_BYTES = 32 * 1024
BROKER_MAX_RECORD_BYTES = 128 * 1024
_OVERSIZED_BYTES = 48 * 1024
_BROKER_OVERSIZED_BYTES = 200 * 1024

_DAY_MS = 86_400_000
_KEY_FIELDS = {"AirMissionPlan": "sortie_id", "AirTrack": "track_id", "MaritimeTrack": "ship_id",
               "StrikeReport": "strike_id", "GroupLocationReport": "report_id", "ForeignFighterReport": "report_id",
               "LogisticsObservation": "observation_id"}

AIRBORNE_TARGET = 10            # partner sorties airborne at a time, when the rate allows
NEW_SORTIE_SHARE = 0.7
SORTIE_SECONDS_MIN = 30.0
SORTIE_SECONDS_MAX = 3 * 3600.0
P_COMPLETED, P_ACTIVE = 0.15, 0.15
P_ORBITER = 0.08
P_NO_STRIKE = 0.15
STRIKES_PER_SORTIE = (1, 2, 2, 3)
#: A crossing waypoint of the partner: this far from ours (km), and its ETA within this share of a sortie.
CROSS_KM = (2.0, 8.0)
CROSS_ETA_SHARE = 0.03


@dataclass(frozen=True)
class Format:
    """The inbound format of one type: its schema id (registered under the inbound subject) and schema."""

    schema_id: int
    schema: dict


@dataclass(frozen=True)
class Ours:
    """Which run of our own simulator the partner's crossing sorties cross (``liaison simulate``'s defaults)."""

    components: str = "all"
    seed: int = 1
    rate: float = 100.0


@dataclass(frozen=True)
class Outgoing:
    """One record to send: where, the bytes, the headers; ``bad`` is its bad-input class (None: good)."""

    index: int
    offset: float
    type_name: str
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    bad: str | None = None
    variant: str | None = None
    message_id: str | None = None

    @property
    def refused_by_broker(self) -> bool:
        return self.bad == "oversized_broker"


@dataclass(frozen=True)
class Crossing:
    """A partner sortie planned to cross one of ours: the two waypoints, their bands and ETAs (event time)."""

    partner_sortie: str
    partner_callsign: str
    our_sortie: str
    our_callsign: str
    partner_waypoint: tuple[float, float, int, int, int]  # lat, lon, floor, ceiling, eta ms
    our_waypoint: tuple[float, float, int, int, int]
    distance_km: float


# ------------------------------------------------------------------------------------------------ projection

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _named_types(schema: Any, out: dict[str, dict], namespace: str = "") -> dict[str, dict]:
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            ns = schema.get("namespace", namespace)
            full = schema["name"] if "." in schema["name"] else f"{ns}.{schema['name']}" if ns else schema["name"]
            out[full] = schema
            out.setdefault(schema["name"].rsplit(".", 1)[-1], schema)
            namespace = ns
        for key in ("type", "items", "values", "fields"):
            if key in schema:
                _named_types(schema[key], out, namespace)
    elif isinstance(schema, list):
        for item in schema:
            _named_types(item, out, namespace)
    return out


def project(value: Any, schema: Any, named: dict[str, dict] | None = None) -> Any:
    """``value`` (an Avro dict of the full message model, :func:`schemas.models.to_avro`) reduced to ``schema``:
    the fields the schema has, recursively (a field the value lacks takes the schema's default)."""
    if named is None:
        named = _named_types(schema, {})
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return value
        return project(value, named.get(schema) or named[schema.rsplit(".", 1)[-1]], named)
    if isinstance(schema, list):
        if value is None and "null" in schema:
            return None
        branches = [b for b in schema if b != "null"]
        return project(value, branches[0], named)
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        return project(value, kind, named)
    if kind == "record":
        out = {}
        for f in schema["fields"]:
            if f["name"] in value:
                out[f["name"]] = project(value[f["name"]], f["type"], named)
            elif "default" in f:
                out[f["name"]] = f["default"]
            else:
                raise KeyError(f"{schema['name']}.{f['name']}: no value and no default")
        return out
    if kind == "array":
        return [project(v, schema["items"], named) for v in value]
    return value


# ------------------------------------------------------------------------------------------------ our sorties

@dataclass
class _OurSortie:
    sortie_id: str
    callsign: str
    waypoints: list[tuple[str, float, float, int, int, int]]  # name, lat, lon, floor, ceiling, eta ms
    landing_ms: int
    used: set[int] = field(default_factory=set)


class _OurAir:
    """Our planned sorties, from our own simulator run ahead of the partner's clock."""

    def __init__(self, ours: Ours, start: datetime):
        self.sim = Simulator(ours.components, seed=ours.seed, start=start)
        self.sortie_ms = round(self.sim.sortie_seconds(ours.rate) * 1000)
        self.start = self.sim.start
        self._stream = self.sim.stream(ours.rate)
        self._next: tuple[int, Any] | None = None
        self.plans: deque[_OurSortie] = deque()

    def _ms(self, when: datetime) -> int:
        return (when - self.start) // timedelta(milliseconds=1)

    def advance(self, until_ms: int) -> None:
        while True:
            if self._next is None:
                offset, model = next(self._stream)
                self._next = (round(offset * 1000), model)
            t_ms, model = self._next
            if t_ms > until_ms:
                return
            self._next = None
            if type(model).__name__ == "AirMissionPlan" and model.status.value == "PLANNED" and len(model.route) >= 3:
                wps = [(w.name, w.position.lat, w.position.lon, w.altitude_band.floor_ft, w.altitude_band.ceiling_ft,
                        self._ms(w.eta)) for w in model.route]
                self.plans.append(_OurSortie(model.sortie_id, model.callsign, wps, wps[-1][5]))

    def prune(self, t_ms: int) -> None:
        while self.plans and self.plans[0].landing_ms < t_ms:
            self.plans.popleft()


# ------------------------------------------------------------------------------------------------ the world

@dataclass
class _Wp:
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
    base: PartnerBase
    aircraft: PartnerAircraft
    aircraft_count: int
    route: list[_Wp]
    takeoff_ms: int
    landing_ms: int
    target_index: int | None
    place: PartnerPlace | None
    group_id: str | None
    category: str | None
    purpose: str
    loadout: list[str]
    strikes: int
    label: tuple[str, tuple[str, ...], tuple[str, ...]]
    etas: list[int] = field(default_factory=list)
    strikes_queued: bool = False


class _World:
    """One run of one partner: sorties, ships, intelligence; builds full message-model records (Avro dicts)."""

    def __init__(self, order: PartnerOrder, rng: random.Random, start: datetime, sortie_ms: int,
                 cross_share: float, ours: _OurAir | None):
        self.o, self.rng, self.start, self.sortie_ms = order, rng, start, sortie_ms
        self.cross_share, self.ours = cross_share, ours
        self.crossings: list[Crossing] = []
        self.counters: Counter = Counter()
        self.bases = Weighted([(b, b.weight) for b in order.bases])
        self.aircraft = {b.code: Weighted([(a, a.weight) for a in b.aircraft]) for b in order.bases}
        self.places = Weighted([(p, p.weight) for p in order.places])
        self.releasability = Weighted(order.releasability)
        self.classification = Weighted(list(zip(("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"),
                                                order.classification)))
        self.callsign_offset = rng.randrange(len(order.callsigns) * 79)
        self.airborne: deque[_Sortie] = deque()
        self.awaiting_active: deque[_Sortie] = deque()
        self.landed: deque[_Sortie] = deque(maxlen=128)
        self.pending_strikes: deque[tuple[_Sortie, int]] = deque()
        self.orbit_phase = [rng.uniform(0, 2 * math.pi) for _ in order.orbiters]
        self.next_orbiter = 0
        self.ships = [[s, rng.uniform(s.box[0], s.box[1]), rng.uniform(s.box[2], s.box[3]), rng.uniform(0, 360),
                       rng.uniform(*s.speed), 0] for s in order.ships]
        self.next_ship = 0
        self.subjects: list[dict] = []

    # ------------------------------------------------------------------ basics

    def dt(self, t_ms: int) -> datetime:
        return self.start + timedelta(milliseconds=t_ms)

    def day(self, t_ms: int) -> str:
        return self.dt(t_ms).strftime("%Y%m%d")

    def next_id(self, kind: str) -> int:
        self.counters[kind] += 1
        return self.counters[kind]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def draw_label(self, type_name: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        rel = self.releasability.pick(self.rng)
        caveats: tuple[str, ...] = ()
        if type_name == "ForeignFighterReport":
            caveats = ("PERSONAL DATA",)
        elif type_name in ("AirMissionPlan", "AirTrack") and self.rng.random() < 0.6:
            caveats = ("DECONFLICTION",)
        return self.classification.pick(self.rng), tuple(rel), caveats

    def label(self, type_name: str, originator: str, t_ms: int, drawn=None) -> dict:
        classification, rel, caveats = drawn or self.draw_label(type_name)
        return {"classification": classification, "releasable_to": list(rel), "caveats": list(caveats),
                "originator": originator, "created_at": self.dt(t_ms), "message_id": self.uuid()}

    # ------------------------------------------------------------------ air: sorties

    def band(self, aircraft: PartnerAircraft, kind: str) -> tuple[int, int]:
        low, high = aircraft.low_ft, aircraft.high_ft
        if kind == "target":
            high = max(low + 4000, (low + high) // 2 + 2000)
        floor = self.rng.randrange(low, max(low + 1, high - 4000 + 1), 1000)
        return floor, floor + self.rng.choice((2000, 3000, 4000))

    def mission_plan(self, t_ms: int) -> dict:
        r = self.rng.random()
        if r < P_COMPLETED and self.landed:
            return self.plan_record(self.landed.popleft(), "COMPLETED", t_ms)
        if r < P_COMPLETED + P_ACTIVE:
            while self.awaiting_active and self.awaiting_active[0].landing_ms <= t_ms:
                self.awaiting_active.popleft()
            if self.awaiting_active and self.awaiting_active[0].takeoff_ms <= t_ms:
                return self.plan_record(self.awaiting_active.popleft(), "ACTIVE", t_ms)
        sortie = None
        if self.ours is not None and self.rng.random() < self.cross_share:
            sortie = self.crossing_sortie(t_ms)
        if sortie is None:
            sortie = self.new_sortie(t_ms)
        self.airborne.append(sortie)
        self.awaiting_active.append(sortie)
        return self.plan_record(sortie, "PLANNED", t_ms)

    def _identity(self, base: PartnerBase, t_ms: int) -> tuple[str, str, str]:
        number = self.next_id(f"sortie:{base.code}")
        slot = (self.callsign_offset + self.next_id("callsign")) % (len(self.o.callsigns) * 79)
        callsign = f"{self.o.callsigns[slot // 79]} {11 + slot % 79}"
        sortie_id = f"{self.o.code}-{base.code}-{self.day(t_ms)}-{number:04d}"
        track_id = f"{self.o.code}-TN-{20000 + self.next_id('track')}"
        return sortie_id, callsign, track_id

    def _time(self, route: list[_Wp], takeoff: int, duration: int) -> None:
        legs = [geo.distance_km(a.lat, a.lon, b.lat, b.lon) for a, b in zip(route, route[1:])]
        total = sum(legs) or 1.0
        run = 0.0
        route[0].eta_ms = takeoff
        for wp, leg in zip(route[1:], legs):
            run += leg
            wp.eta_ms = takeoff + round(duration * run / total)

    def _base_band(self, aircraft: PartnerAircraft) -> tuple[int, int]:
        return (0, 3000) if aircraft.high_ft <= 10_000 else (0, 10_000)

    def _point(self, lat: float, lon: float, toward: tuple[float, float], share: float, side: float) -> tuple[float, float]:
        """A point ``share`` of the way from (lat, lon) to ``toward``, pushed ``side`` degrees sideways."""
        dlat, dlon = toward[0] - lat, toward[1] - lon
        norm = math.hypot(dlat, dlon) or 1.0
        return (round(lat + dlat * share - dlon / norm * side, 4), round(lon + dlon * share + dlat / norm * side, 4))

    def _sortie(self, base, aircraft, route, takeoff, duration, target_index, place, t_ms) -> _Sortie:
        rng = self.rng
        self._time(route, takeoff, duration)
        sortie_id, callsign, track_id = self._identity(base, t_ms)
        count_ = rng.choice(aircraft.counts)
        loadout = [rng.choice(aircraft.weapons) for _ in range(rng.randint(1, 2))] * count_ if aircraft.weapons else []
        group_id = category = None
        if place is not None:
            group_id = Weighted(place.groups).pick(rng)
            category = Weighted(place.categories).pick(rng)
        if aircraft.isr:
            purpose = f"Reconnaissance orbit near {place.name if place else 'the coast'}"
        elif not aircraft.weapons:
            purpose = f"Escort and air patrol toward {place.name if place else 'the coast'}"
        else:
            purpose = f"Strike on {group_id} {str(category).lower().replace('_', ' ')} near {place.name}"
        strikes = 0 if (not aircraft.weapons or target_index is None or rng.random() < P_NO_STRIKE) \
            else rng.choice(STRIKES_PER_SORTIE)
        sortie = _Sortie(sortie_id, callsign, track_id, base, aircraft, count_, route, takeoff, route[-1].eta_ms,
                         target_index, place, group_id, category, purpose, loadout, strikes,
                         self.draw_label("AirMissionPlan"))
        sortie.etas = [wp.eta_ms for wp in route]
        return sortie

    def new_sortie(self, t_ms: int) -> _Sortie:
        rng = self.rng
        base: PartnerBase = self.bases.pick(rng)
        aircraft: PartnerAircraft = self.aircraft[base.code].pick(rng)
        places = [p for p in self.o.places if geo.distance_km(base.lat, base.lon, p.lat, p.lon) <= base.range_km]
        place = Weighted([(p, p.weight) for p in places]).pick(rng) if places else self.places.pick(rng)
        home = _Wp(base.code, base.lat, base.lon, *self._base_band(aircraft))
        names = iter(rng.sample(WAYPOINT_NAMES, 4))
        route = [home]
        target_index = None
        if aircraft.isr:
            for share, side in ((0.8, 0.25), (0.9, -0.25), (0.8, 0.25)):
                lat, lon = self._point(base.lat, base.lon, (place.lat, place.lon), share, side)
                route.append(_Wp(f"{next(names)} {rng.randint(1, 9)}", lat, lon, *self.band(aircraft, "transit")))
        else:
            lat, lon = self._point(base.lat, base.lon, (place.lat, place.lon), 0.45, rng.uniform(0.05, 0.3))
            route.append(_Wp(f"{next(names)} {rng.randint(1, 9)}", lat, lon, *self.band(aircraft, "transit")))
            target_index = len(route)
            route.append(_Wp(f"{next(names)} {rng.randint(1, 9)}", round(place.lat + rng.uniform(-0.06, 0.06), 4),
                             round(place.lon + rng.uniform(-0.06, 0.06), 4), *self.band(aircraft, "target")))
            lat, lon = self._point(base.lat, base.lon, (place.lat, place.lon), 0.55, -rng.uniform(0.05, 0.3))
            route.append(_Wp(f"{next(names)} {rng.randint(1, 9)}", lat, lon, *self.band(aircraft, "transit")))
        route.append(_Wp(base.code, base.lat, base.lon, *home_band(home)))
        duration = round(self.sortie_ms * rng.uniform(0.85, 1.15))
        takeoff = t_ms + round(self.sortie_ms * rng.uniform(0.02, 0.12))
        return self._sortie(base, aircraft, route, takeoff, duration, target_index, place, t_ms)

    def crossing_sortie(self, t_ms: int) -> _Sortie | None:
        """A sortie whose route passes one of our planned sorties' waypoints (see the module doc), or None when
        none of ours can be reached in time."""
        rng, ours = self.rng, self.ours
        assert ours is not None
        ours.advance(t_ms + round(1.5 * ours.sortie_ms))
        ours.prune(t_ms)
        base: PartnerBase = self.bases.pick(rng)
        duration0 = round(self.sortie_ms * rng.uniform(0.85, 1.15))
        options = []
        for sortie in ours.plans:
            for i, (name, lat, lon, floor, ceiling, eta) in enumerate(sortie.waypoints[1:-1], start=1):
                if i in sortie.used or eta <= t_ms:
                    continue
                if geo.distance_km(base.lat, base.lon, lat, lon) > base.range_km:
                    continue
                fit = [a for a in base.aircraft if a.high_ft >= floor + 3000 and a.low_ft <= ceiling - 1000]
                if fit:
                    options.append((sortie, i, fit))
        rng.shuffle(options)
        for sortie, i, fit in options:
            name, lat, lon, floor, ceiling, eta = sortie.waypoints[i]
            aircraft = Weighted([(a, a.weight) for a in fit]).pick(rng)
            # The crossing point: 2-8 km from ours, a band overlapping ours.
            bearing, km = rng.uniform(0, 360), rng.uniform(*CROSS_KM)
            x_lat, x_lon = geo.advance(lat, lon, bearing, km / 1.852)
            x_lat, x_lon = round(x_lat, 4), round(x_lon, 4)
            x_floor = max(0, floor + rng.choice((-3000, -2000, -1000, 0, 1000)))
            x_floor = min(max(x_floor, aircraft.low_ft - 1000 if aircraft.low_ft > 1000 else 0), ceiling - 1000)
            x_band = (x_floor, max(x_floor + 4000, floor + 1000))
            places = sorted(self.o.places, key=lambda p: geo.distance_km(x_lat, x_lon, p.lat, p.lon))
            place = places[0] if not aircraft.isr else None
            home = _Wp(base.code, base.lat, base.lon, *self._base_band(aircraft))
            names = iter(rng.sample(WAYPOINT_NAMES, 3))
            route = [home, _Wp(f"{next(names)} {rng.randint(1, 9)}", x_lat, x_lon, *x_band)]
            target_index = None
            if place is not None and geo.distance_km(x_lat, x_lon, place.lat, place.lon) > 1.0:
                target_index = len(route)
                route.append(_Wp(f"{next(names)} {rng.randint(1, 9)}", round(place.lat + rng.uniform(-0.05, 0.05), 4),
                                 round(place.lon + rng.uniform(-0.05, 0.05), 4), *self.band(aircraft, "target")))
            elif place is None:
                o_lat, o_lon = geo.advance(x_lat, x_lon, rng.uniform(0, 360), 20)
                route.append(_Wp(f"{next(names)} {rng.randint(1, 9)}", round(o_lat, 4), round(o_lon, 4), *x_band))
            route.append(_Wp(base.code, base.lat, base.lon, *home_band(home)))
            legs = [geo.distance_km(a.lat, a.lon, b.lat, b.lon) for a, b in zip(route, route[1:])]
            share = legs[0] / (sum(legs) or 1.0)
            eta_x = eta + round(rng.uniform(-CROSS_ETA_SHARE, CROSS_ETA_SHARE) * min(duration0, ours.sortie_ms))
            lead = 0.02
            duration = duration0
            if eta_x - share * duration < t_ms + lead * duration:
                duration = math.floor((eta_x - t_ms) / (share + lead))
                if duration < 0.4 * duration0 or duration <= 0:
                    continue
            takeoff = eta_x - round(share * duration)
            built = self._sortie(base, aircraft, route, takeoff, duration, target_index, place, t_ms)
            # _time spreads the ETAs by distance: pin the crossing waypoint's ETA to eta_x exactly.
            built.route[1].eta_ms = built.etas[1] = eta_x
            sortie.used.add(i)
            self.crossings.append(Crossing(built.sortie_id, built.callsign, sortie.sortie_id, sortie.callsign,
                                           (x_lat, x_lon, x_band[0], x_band[1], eta_x),
                                           (lat, lon, floor, ceiling, eta),
                                           round(geo.distance_km(x_lat, x_lon, lat, lon), 3)))
            return built
        return None

    def plan_record(self, s: _Sortie, status: str, t_ms: int) -> dict:
        windows = [{"start": self.dt(s.takeoff_ms), "end": self.dt(s.landing_ms)}]
        if s.target_index is not None:
            eta, half = s.etas[s.target_index], max(1000, self.sortie_ms // 10)
            windows.append({"start": self.dt(eta - half), "end": self.dt(eta + half)})
        return {
            "label": self.label("AirMissionPlan", s.base.originator, t_ms, s.label),
            "sortie_id": s.sortie_id, "callsign": s.callsign, "aircraft_type": s.aircraft.type,
            "aircraft_count": s.aircraft_count, "base": s.base.name, "carrier_based": False, "status": status,
            "time_windows": windows,
            "route": [{"name": wp.name, "position": {"lat": wp.lat, "lon": wp.lon},
                       "altitude_band": {"floor_ft": wp.floor, "ceiling_ft": wp.ceiling}, "eta": self.dt(wp.eta_ms)}
                      for wp in s.route],
            "mission_purpose": s.purpose,
            "target_area": s.place.name if s.place else None,
            "weapons_loadout": s.loadout,
        }

    # ------------------------------------------------------------------ air: tracks and strikes

    def air_track(self, t_ms: int) -> dict:
        if self.rng.random() >= P_ORBITER or not self.o.orbiters:
            for _ in range(len(self.airborne)):
                s = self.airborne.popleft()
                if t_ms > s.landing_ms:
                    self.landed.append(s)
                    continue
                self.airborne.append(s)
                if t_ms >= s.takeoff_ms:
                    return self.sortie_track(s, t_ms)
        return self.orbiter_track(t_ms)

    def sortie_track(self, s: _Sortie, t_ms: int) -> dict:
        rng, route, etas = self.rng, s.route, s.etas
        k = min(max(bisect.bisect_right(etas, t_ms) - 1, 0), len(route) - 2)
        a, b = route[k], route[k + 1]
        span = etas[k + 1] - etas[k]
        f = min(1.0, max(0.0, (t_ms - etas[k]) / span)) if span > 0 else 1.0
        lat, lon = a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f
        heading = geo.bearing(lat, lon, b.lat, b.lon) if f < 1.0 else geo.bearing(a.lat, a.lon, b.lat, b.lon)
        mid = (a.floor + a.ceiling) / 2 + ((b.floor + b.ceiling) / 2 - (a.floor + a.ceiling) / 2) * f
        altitude = int(min(max(a.ceiling, b.ceiling), max(min(a.floor, b.floor), mid + rng.uniform(-800, 800))))
        speed = s.aircraft.cruise_kt * rng.uniform(0.95, 1.05) * (0.65 if (k == 0 and f < 0.3) else 1.0)
        if s.target_index is not None and not s.strikes_queued and t_ms >= etas[s.target_index]:
            s.strikes_queued = True
            self.pending_strikes.extend((s, t_ms) for _ in range(s.strikes))
        return {
            "label": self.label("AirTrack", s.base.originator, t_ms),
            "track_id": s.track_id, "callsign": s.callsign, "time": self.dt(t_ms),
            "position": {"lat": round(lat, 5), "lon": round(lon, 5)}, "altitude_ft": altitude,
            "heading_deg": geo.heading(heading), "speed_kt": round(speed, 1), "sortie_id": s.sortie_id,
        }

    def orbiter_track(self, t_ms: int) -> dict:
        index = self.next_orbiter
        self.next_orbiter = (index + 1) % len(self.o.orbiters)
        orb = self.o.orbiters[index]
        period_ms = 2 * math.pi * orb.radius_km / (orb.speed_kt * 1.852) * 3_600_000
        theta = self.orbit_phase[index] + 2 * math.pi * (t_ms / period_ms)
        clat, clon = orb.centre
        lat = clat + orb.radius_km / geo.KM_PER_DEG * math.cos(theta)
        lon = clon + orb.radius_km / (geo.KM_PER_DEG * math.cos(math.radians(clat))) * math.sin(theta)
        return {
            "label": self.label("AirTrack", self.o.air_originator, t_ms),
            "track_id": orb.track_id, "callsign": orb.callsign, "time": self.dt(t_ms),
            "position": {"lat": round(lat, 5), "lon": round(lon, 5)},
            "altitude_ft": orb.altitude_ft + self.rng.randint(-200, 200),
            "heading_deg": geo.heading(math.degrees(theta) + 90.0),
            "speed_kt": round(orb.speed_kt * self.rng.uniform(0.97, 1.03), 1), "sortie_id": None,
        }

    def strike_slot(self, t_ms: int) -> tuple[str, dict]:
        if not self.pending_strikes:
            return "AirTrack", self.air_track(t_ms)
        rng = self.rng
        s, passed = self.pending_strikes.popleft()
        assert s.target_index is not None and s.place is not None
        target = s.route[s.target_index]
        target_eta = s.etas[s.target_index]
        strike_ms = min(t_ms, target_eta + round(rng.random() * max(0, passed - target_eta)))
        return "StrikeReport", {
            "label": self.label("StrikeReport", s.base.originator, t_ms),
            "strike_id": f"{self.o.code}-STK-{self.day(strike_ms)}-{self.next_id('strike'):05d}",
            "sortie_id": s.sortie_id, "time": self.dt(strike_ms),
            "position": {"lat": round(target.lat + rng.uniform(-0.003, 0.003), 5),
                         "lon": round(target.lon + rng.uniform(-0.003, 0.003), 5)},
            "target_category": s.category, "group_id": s.group_id,
            "assessed_effect": Weighted((("DESTROYED", 45), ("DAMAGED", 35), ("NO_EFFECT", 8), ("UNKNOWN", 12))).pick(rng),
            "collateral_assessment": rng.choice(("No civilian casualties assessed.", "Assessment pending imagery.",
                                                 "Secondary explosions observed.")),
            "weapon": rng.choice([w for w in s.loadout] or list(s.aircraft.weapons)),
            "launch_platform": f"{s.aircraft.type} ({s.callsign})",
        }

    # ------------------------------------------------------------------ naval

    def maritime_track(self, t_ms: int) -> dict:
        rng = self.rng
        state = self.ships[self.next_ship]
        self.next_ship = (self.next_ship + 1) % len(self.ships)
        ship, lat, lon, course, speed, last = state
        hours = max(0, t_ms - last) / 3_600_000
        lat, lon = geo.advance(lat, lon, course, speed * hours)
        lat_min, lat_max, lon_min, lon_max = ship.box
        if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
            lat, lon = min(max(lat, lat_min), lat_max), min(max(lon, lon_min), lon_max)
            course = geo.bearing(lat, lon, (lat_min + lat_max) / 2, (lon_min + lon_max) / 2)
        elif rng.random() < 0.1:
            course = (course + rng.uniform(-40, 40)) % 360
        speed = min(max(speed + rng.uniform(-1, 1), ship.speed[0]), ship.speed[1])
        state[1:] = [lat, lon, course, speed, t_ms]
        return {
            "label": self.label("MaritimeTrack", self.o.naval_originator, t_ms),
            "ship_id": ship.ship_id, "ship_class": ship.ship_class, "ship_name": ship.name, "time": self.dt(t_ms),
            "position": {"lat": round(lat, 5), "lon": round(lon, 5)}, "course_deg": geo.heading(course),
            "speed_kt": round(speed, 1), "mission": ship.mission, "readiness": rng.choice(("NORMAL", "ELEVATED")),
        }

    # ------------------------------------------------------------------ intelligence

    def group_location(self, t_ms: int) -> dict:
        rng = self.rng
        place = self.places.pick(rng)
        group_id = Weighted(place.groups).pick(rng)
        return {
            "label": self.label("GroupLocationReport", self.o.intel_originator, t_ms),
            "report_id": f"{self.o.code}-GLR-{self.day(t_ms)}-{self.next_id('glr'):05d}",
            "group_id": group_id, "time": self.dt(t_ms - rng.randint(5 * 60_000, 3 * 3_600_000)),
            "position": {"lat": round(place.lat + rng.uniform(-0.15, 0.15), 5),
                         "lon": round(place.lon + rng.uniform(-0.15, 0.15), 5)},
            "radius_m": float(rng.choice((200, 500, 1000, 3000))), "confidence": round(rng.uniform(0.4, 0.95), 2),
            "observed_activity": rng.choice((
                f"Convoy of armed pick-ups leaving {place.name}", f"Fighters massing south of {place.name}",
                f"Ammunition depot active near {place.name}", f"Command post relocated inside {place.name}")),
            "source_type": rng.choice(("HUMINT", "SIGINT", "IMINT")),
            "source_reliability": rng.choice(("B_USUALLY_RELIABLE", "C_FAIRLY_RELIABLE")),
        }

    _FR_GIVEN = ("Karim", "Yassine", "Mehdi", "Julien", "Thomas", "Nabil", "Sofiane", "Kevin", "Bilal", "Amine")
    _FR_FAMILY = ("BENABRI", "LAMOUIN", "BERARDI", "DALESSAL", "MORIER", "CHABELLE", "GARDI", "FOURNEL")
    #: French nationals (and dual nationals) and French speakers of other nationalities.
    _FR_PROFILES = ((("FRA",), ("fr",)), (("FRA",), ("fr", "ar")), (("FRA", "DZA"), ("fr", "ar")),
                    (("FRA", "MAR"), ("fr", "ar")), (("BEL",), ("fr", "ar")), (("TUN",), ("ar", "fr")),
                    (("CHE",), ("fr", "de")), ((), ("fr",)))
    _TRAVEL = ("Left France via Istanbul in 2014", "Crossed into Syria near Tal Abyad",
               "Phone contact with relatives in the Lyon area", "Travelled with a group from Toulouse",
               "Money transfers from Belgium", "Seen at a checkpoint on the Raqqa road")

    def foreign_fighter(self, t_ms: int) -> dict:
        rng = self.rng
        if self.subjects and (len(self.subjects) >= 60 or rng.random() < 0.6):
            subject = self.subjects[rng.randrange(len(self.subjects))]
        else:
            nationality, languages = rng.choice(self._FR_PROFILES[:4] * 2 + self._FR_PROFILES[4:])
            subject = {"name": f"{rng.choice(self._FR_GIVEN)} {rng.choice(self._FR_FAMILY)}",
                       "subject_ref": f"{self.o.code}-FF-{self.next_id('subject'):05d}",
                       "nationality": list(nationality), "languages": list(languages),
                       "date_of_birth": date(1975, 1, 1) + timedelta(days=rng.randrange(25 * 365))}
            self.subjects.append(subject)
        area, lat, lon, group = rng.choice(self.o.fighter_areas)
        return {
            "label": self.label("ForeignFighterReport", self.o.intel_originator, t_ms),
            "report_id": f"{self.o.code}-FFR-{self.day(t_ms)}-{self.next_id('ffr'):05d}",
            "subject": dict(subject), "affiliation": group,
            "last_known_area": {"name": f"{area} area", "center": {"lat": round(lat + rng.uniform(-0.05, 0.05), 4),
                                                                   "lon": round(lon + rng.uniform(-0.05, 0.05), 4)},
                                "radius_km": float(rng.choice((5, 10, 25)))},
            "travel_indicators": rng.sample(self._TRAVEL, rng.randint(0, 2)),
            # within the guard's window (7 days back): hours to a few days ago
            "time": self.dt(t_ms - rng.randint(3_600_000, 4 * _DAY_MS)),
        }

    def logistics(self, t_ms: int) -> dict:
        rng = self.rng
        name, lat, lon, radius = rng.choice(self.o.logistics_areas)
        hours = rng.choice((1, 6, 24))
        end = self.dt(t_ms).replace(minute=0, second=0, microsecond=0)
        kinds = rng.sample((("FUEL_TRUCK", (10, 160)), ("TANKER_CONVOY", (0, 6)), ("CARGO_TRUCK", (5, 60)),
                            ("VEHICLE", (10, 200))), rng.randint(1, 3))
        return {
            "label": self.label("LogisticsObservation", self.o.intel_originator, t_ms),
            "observation_id": f"{self.o.code}-LOG-{self.day(t_ms)}-{self.next_id('log'):05d}",
            "area": {"name": name, "center": {"lat": lat, "lon": lon}, "radius_km": radius},
            "time_bucket_start": end - timedelta(hours=hours), "time_bucket_end": end,
            "counts": [{"kind": k, "count": round(rng.randint(*span) * hours / 24)} for k, span in kinds],
            "trend": rng.choice(("DECREASING", "DECREASING", "STABLE", "INCREASING", "UNKNOWN")),
        }

    def build(self, type_name: str, t_ms: int) -> tuple[str, dict]:
        """(type actually built, full record): a strike slot without a strike to report carries a track."""
        if type_name == "StrikeReport":
            return self.strike_slot(t_ms)
        builder = {"AirMissionPlan": self.mission_plan, "AirTrack": self.air_track,
                   "MaritimeTrack": self.maritime_track, "GroupLocationReport": self.group_location,
                   "ForeignFighterReport": self.foreign_fighter, "LogisticsObservation": self.logistics}[type_name]
        return type_name, builder(t_ms)


def home_band(home: _Wp) -> tuple[int, int]:
    return home.floor, home.ceiling


# ------------------------------------------------------------------------------------------------ simulator

class PartnerSimulator:
    """Deterministic generator of what ``partner`` sends us on its inbound topics.

    ``formats``: per message type the inbound :class:`Format` (schema id and schema); types without one are not
    sent. ``feed_ids``: per type the schema id of the partner's own feed subject (a wrong-schema-id variant; the
    partner may read those ids). ``seed``/``start``: as for :class:`~producers.simulate.Simulator`.
    ``bad_share``: share of bad records (0..1); ``cross_share``: share of new sorties planned to cross one of
    ours (``ours``: which run of our simulator; None: no crossing sorties); ``validate``: check every good
    record against its message model before it is projected onto the inbound schema.
    """

    def __init__(self, partner: str, formats: Mapping[str, Format], seed: int = 0, start: datetime | None = None,
                 *, feed_ids: Mapping[str, int] | None = None, bad_share: float = 0.1, cross_share: float = 0.3,
                 ours: Ours | None = Ours(), sortie_seconds: float | None = None, validate: bool = True):
        code = partner.upper()
        if code not in ORDERS:
            raise ValueError(f"unknown partner {partner!r}; known: {', '.join(ORDERS)}")
        if not 0.0 <= bad_share <= 1.0 or not 0.0 <= cross_share <= 1.0:
            raise ValueError("bad_share and cross_share are shares: 0 .. 1")
        types = [t for t in schemas.MESSAGE_TYPES if t in formats]
        if not types:
            raise ValueError(f"no inbound format for {code}: nothing to send")
        start = DEFAULT_START if start is None else start
        if start.tzinfo is None or start.tzinfo.utcoffset(start) is None:
            raise ValueError("start must be timezone-aware (UTC)")
        start = start.astimezone(timezone.utc)
        self.partner, self.seed = code, int(seed)
        self.start = start.replace(microsecond=start.microsecond - start.microsecond % 1000)
        self.formats = {t: formats[t] for t in types}
        self.feed_ids = dict(feed_ids or {})
        self.bad_share, self.cross_share, self.ours = float(bad_share), float(cross_share), ours
        self._sortie_seconds, self.validate = sortie_seconds, validate
        self.types = tuple(types)

    def sortie_seconds(self, rate: float) -> float:
        if self._sortie_seconds is not None:
            return self._sortie_seconds
        total = sum(PARTNER_MIX[t] for t in self.types)
        share = PARTNER_MIX.get("AirMissionPlan", 0.0) / total if "AirMissionPlan" in self.types else 0.0
        if share <= 0:
            return SORTIE_SECONDS_MAX
        return min(SORTIE_SECONDS_MAX, max(SORTIE_SECONDS_MIN, AIRBORNE_TARGET / (rate * share * NEW_SORTIE_SHARE)))

    def stream(self, rate: float) -> "PartnerStream":
        if not (isinstance(rate, (int, float)) and rate > 0 and math.isfinite(rate)):
            raise ValueError("rate must be a positive number of records per second")
        return PartnerStream(self, float(rate))

    def events(self, rate: float, count_: int) -> "PartnerStream":
        """Exactly ``count_`` records, record *i* at offset ``i / rate`` (the stream, bounded)."""
        if count_ < 0:
            raise ValueError("count must be >= 0")
        stream = self.stream(rate)
        stream.limit = int(count_)
        return stream


class PartnerStream:
    """The records of one run (an iterator of :class:`Outgoing`); :attr:`crossings` fills as it goes."""

    def __init__(self, sim: PartnerSimulator, rate: float):
        self.sim, self.rate = sim, rate
        self.limit: int | None = None
        self.rng = random.Random(f"liaison-partner:{sim.partner}:{sim.seed}")
        self.order = ORDERS[sim.partner]
        ours = _OurAir(sim.ours, sim.start) if (sim.ours is not None and sim.cross_share > 0) else None
        sortie_ms = max(1000, round(sim.sortie_seconds(rate) * 1000))
        self.world = _World(self.order, self.rng, sim.start, sortie_ms, sim.cross_share, ours)
        self.encoders = {t: Encoder(f.schema_id, f.schema) for t, f in sim.formats.items()}
        self.named = {t: _named_types(f.schema, {}) for t, f in sim.formats.items()}
        self.mix = Weighted([(t, PARTNER_MIX[t]) for t in sim.types])
        self.bad_types = [t for t in sim.types if t != "AirMissionPlan"] or list(sim.types)
        self.classes: deque[str] = deque()
        self.sent: deque[tuple[Outgoing, dict]] = deque(maxlen=256)  # good records and their values, for replays
        self.good: Counter = Counter()
        self.bad: Counter = Counter()
        self._index = count()
        self._variant = Counter()

    @property
    def crossings(self) -> list[Crossing]:
        return self.world.crossings

    def __iter__(self) -> Iterator[Outgoing]:
        return self

    def __next__(self) -> Outgoing:
        index = next(self._index)
        if self.limit is not None and index >= self.limit:
            raise StopIteration
        t_ms = round(index / self.rate * 1000)
        if self.rng.random() < self.sim.bad_share:
            out = self.bad_record(index, t_ms)
            if out is not None:
                self.bad[out.bad] += 1
                return out
        out = self.good_record(index, t_ms)
        self.good[out.type_name] += 1
        return out

    # ------------------------------------------------------------------ good

    def full(self, type_name: str, t_ms: int) -> tuple[str, dict]:
        type_name, record = self.world.build(type_name, t_ms)
        if self.sim.validate:
            return type_name, to_avro(MODELS[type_name].model_validate(record))
        return type_name, _plain(record)

    def projected(self, type_name: str, record: dict) -> dict:
        return project(record, self.sim.formats[type_name].schema, self.named[type_name])

    def _out(self, index, t_ms, type_name, record, value, bad=None, variant=None, key=None) -> Outgoing:
        headers: tuple[tuple[str, bytes], ...] = ()
        if bad is not None:
            headers = ((BAD_HEADER, bad.encode()), (VARIANT_HEADER, str(variant).encode()))
        label = (record or {}).get("label") or {}
        if key is None:
            key = str((record or {}).get(_KEY_FIELDS[type_name], index)).encode()
        return Outgoing(index, t_ms / 1000, type_name, inbound_topic(self.sim.partner, type_name), key, value,
                        headers, bad, variant, label.get("message_id"))

    def good_record(self, index: int, t_ms: int) -> Outgoing:
        type_name, record = self.full(self.mix.pick(self.rng), t_ms)
        record = self.projected(type_name, record)
        out = self._out(index, t_ms, type_name, record, self.encoders[type_name].encode(record))
        self.sent.append((out, record))
        return out

    # ------------------------------------------------------------------ bad

    def next_class(self) -> str | None:
        for _ in range(len(BAD_CLASSES) + 1):
            if not self.classes:
                round_ = list(BAD_CLASSES)
                self.rng.shuffle(round_)
                self.classes.extend(round_)
            cls = self.classes.popleft()
            if cls == "replay" and not self.sent:
                self.classes.append(cls)  # nothing to replay yet: later
                continue
            return cls
        return None

    def variant(self, cls: str, options: tuple) -> Any:
        """Variants of a class in turn (every one shows up in a short run)."""
        n = self._variant[cls]
        self._variant[cls] += 1
        return options[n % len(options)]

    def bad_record(self, index: int, t_ms: int) -> Outgoing | None:
        cls = self.next_class()
        if cls is None:
            return None
        rng = self.rng
        if cls == "replay":
            original, original_record = self.sent[rng.randrange(len(self.sent))]
            how = self.variant(cls, ("resend", "reused_id"))
            if how == "resend":
                return Outgoing(index, t_ms / 1000, original.type_name, original.topic, original.key, original.value,
                                ((BAD_HEADER, b"replay"), (VARIANT_HEADER, b"resend")), "replay", "resend",
                                original.message_id)
            record = copy.deepcopy(original_record)
            record["label"]["created_at"] = self.world.dt(t_ms)
            return self._out(index, t_ms, original.type_name, record,
                             self.encoders[original.type_name].encode(record), cls, "reused_id", key=original.key)
        type_name, record = self.full(rng.choice(self.bad_types), t_ms)
        record = self.projected(type_name, record)
        encoder = self.encoders[type_name]
        variant: Any = None
        if cls == "wrong_schema_id":
            others = [t for t in self.encoders if t != type_name]
            options = (("other_inbound",) if others else ()) + (("partner_feed",) if type_name in self.sim.feed_ids
                                                                  else ()) + ("unregistered",)
            variant = self.variant(cls, options)
            sid = {"other_inbound": lambda: self.encoders[rng.choice(others)].schema_id,
                   "partner_feed": lambda: self.sim.feed_ids[type_name],
                   "unregistered": lambda: UNREGISTERED_SCHEMA_ID}[variant]()
            value = frame(sid, encoder.encode(record)[5:])
        elif cls == "bad_magic":
            variant = self.variant(cls, ("magic_0x01", "json", "short"))
            if variant == "magic_0x01":
                value = b"\x01" + encoder.encode(record)[1:]
            elif variant == "json":
                value = json.dumps(record, default=str).encode()
            else:
                value = b"\x00\x00\x01"
        elif cls == "garbage_body":
            variant = self.variant(cls, ("random", "truncated"))
            if variant == "random":
                # 0x7e: union branch 63 of the label (it has 2): no reader gets past the first byte
                value = frame(encoder.schema_id, b"\x7e" + rng.randbytes(rng.randint(16, 200)))
            else:
                good = encoder.encode(record)
                value = good[:5 + (len(good) - 5) // 2]
        elif cls == "invalid_values":
            options = {"AirTrack": ("latitude_95", "altitude_-5000", "speed_-50"),
                       "MaritimeTrack": ("latitude_95", "speed_-50"),
                       "GroupLocationReport": ("latitude_95", "confidence_1.7")}.get(type_name, ("latitude_95",))
            variant = options[self._variant[cls] % len(options)]
            self._variant[cls] += 1
            _spoil(record, variant)
            value = encoder.encode(record)
        elif cls == "label_missing":
            variant, record["label"] = "null", None
            value = encoder.encode(record)
        elif cls == "label_classification":
            variant = record["label"]["classification"] = "TOP_SECRET"
            value = encoder.encode(record)
        elif cls == "label_rel_to":
            rel = self.variant(cls, self.order.rel_to_without_fra)
            record["label"]["releasable_to"] = list(rel)
            variant = " ".join(rel)
            value = encoder.encode(record)
        elif cls == "wrong_originator":
            variant = record["label"]["originator"] = self.variant(cls, self.order.foreign_originators)
            value = encoder.encode(record)
        elif cls in ("future_timestamp", "past_timestamp"):
            shift = 2 * _DAY_MS if cls == "future_timestamp" else -30 * _DAY_MS
            variant = "+2d" if shift > 0 else "-30d"
            record["label"]["created_at"] = self.world.dt(t_ms + shift)
            value = encoder.encode(record)
        elif cls in ("oversized", "oversized_broker"):
            size = _OVERSIZED_BYTES if cls == "oversized" else _BROKER_OVERSIZED_BYTES
            base = len(encoder.encode(record))
            pad = max(0, size - base)
            # random letters: incompressible for lz4, so the broker sees the size, compressed or not
            record["label"]["caveats"] = list(record["label"]["caveats"]) + [
                base64.b64encode(rng.randbytes(3000)).decode()[:min(4000, pad - i)] for i in range(0, pad, 4003)]
            value = encoder.encode(record)
            variant = f"{len(value) // 1024}KiB"
        else:  # pragma: no cover - BAD_CLASSES and this method go together
            raise AssertionError(cls)
        return self._out(index, t_ms, type_name, record, value, cls, variant)


def _plain(record: Any) -> Any:
    """A full record as the Avro writer takes it, without the model (uuid and enum values are already str)."""
    return record


def _spoil(record: dict, variant: str) -> None:
    """Put a value the message model refuses into ``record`` (still encodable with its schema)."""
    if variant == "latitude_95":
        node = _first(record, ("position", "center"))
        node["lat"] = 95.0
    elif variant == "altitude_-5000":
        record["altitude_ft"] = -5000
    elif variant == "speed_-50":
        record["speed_kt"] = -50.0
    elif variant == "confidence_1.7":
        record["confidence"] = 1.7
    else:  # pragma: no cover
        raise AssertionError(variant)


def _first(node: Any, names: tuple[str, ...]) -> dict:
    """The first dict under one of ``names`` in ``node`` (depth first)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in names and isinstance(value, dict):
                return value
        for value in node.values():
            if isinstance(value, (dict, list)):
                try:
                    return _first(value, names)
                except LookupError:
                    pass
    elif isinstance(node, list):
        for value in node:
            try:
                return _first(value, names)
            except LookupError:
                pass
    raise LookupError(names)

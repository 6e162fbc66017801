"""Realistic, valid, deterministic instances of every message type (for tests and the demo).

The labels are releasable to the two demo partners (``REL TO FRA, USA, RUS``) at or below
``CONFIDENTIAL`` so that the partner policies, not the labels, decide what each partner sees.
Persons and identifiers are fictitious. :func:`example` returns a fresh instance on every call,
so callers may modify it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from schemas import MESSAGE_TYPES, UnknownMessageType
from schemas.models import (
    AirMissionPlan,
    AirTrack,
    AlertStatus,
    AltitudeBand,
    Area,
    AssessedEffect,
    Classification,
    ClosestApproach,
    ConflictKind,
    ConflictObject,
    ConflictParty,
    ConflictVolume,
    DeconflictionAlert,
    ForeignFighterReport,
    GroupLocationReport,
    LiaisonMessage,
    LogisticsObservation,
    MaritimeTrack,
    MissionStatus,
    Position,
    Readiness,
    SecurityLabel,
    SeparationMinima,
    SourceReliability,
    SourceType,
    StrikeReport,
    Subject,
    TargetCategory,
    TimeWindow,
    TrafficCount,
    TrafficKind,
    Trend,
    Waypoint,
)

__all__ = ["BASE_TIME", "example", "examples", "deconfliction_alert"]

#: Reference time of the examples (UTC).
BASE_TIME = datetime(2015, 11, 23, 6, 0, tzinfo=timezone.utc)

_ID_NAMESPACE = uuid.UUID("5b0c3c2e-7a51-4c1e-9a43-6f1f2a4d0b7e")


def _t(minutes: float) -> datetime:
    return BASE_TIME + timedelta(minutes=minutes)


def _label(
    name: str,
    originator: str,
    classification: Classification = Classification.CONFIDENTIAL,
    releasable_to: tuple[str, ...] = ("FRA", "USA", "RUS"),
    caveats: tuple[str, ...] = (),
    minutes: float = 0,
) -> SecurityLabel:
    return SecurityLabel(
        classification=classification,
        releasable_to=list(releasable_to),
        caveats=list(caveats),
        originator=originator,
        created_at=_t(minutes),
        message_id=uuid.uuid5(_ID_NAMESPACE, f"example:{name}"),
    )


def _air_mission_plan() -> AirMissionPlan:
    return AirMissionPlan(
        label=_label("AirMissionPlan", "air.jordan", caveats=("DECONFLICTION",), minutes=-120),
        sortie_id="H5-20151123-014",
        callsign="RAFALE 21",
        aircraft_type="Rafale B",
        aircraft_count=2,
        base="H5 (Prince Hassan AB, Jordan)",
        carrier_based=False,
        status=MissionStatus.PLANNED,
        time_windows=[TimeWindow(start=_t(30), end=_t(270))],
        route=[
            Waypoint(
                name="H5",
                position=Position(lat=32.1606, lon=37.1494),
                altitude_band=AltitudeBand(floor_ft=0, ceiling_ft=10_000),
                eta=_t(30),
            ),
            Waypoint(
                name="TANGO",
                position=Position(lat=33.45, lon=38.95),
                altitude_band=AltitudeBand(floor_ft=24_000, ceiling_ft=26_000),
                eta=_t(75),
            ),
            Waypoint(
                name="KILO",
                position=Position(lat=34.98, lon=40.55),
                altitude_band=AltitudeBand(floor_ft=20_000, ceiling_ft=25_000),
                eta=_t(110),
            ),
        ],
        mission_purpose="Armed reconnaissance and strike on oil-transport logistics",
        target_area="Deir ez-Zor / al-Omar fields",
        weapons_loadout=["GBU-24 Paveway III", "GBU-24 Paveway III", "Damocles pod"],
    )


def _air_track() -> AirTrack:
    return AirTrack(
        label=_label("AirTrack", "air.jordan", classification=Classification.RESTRICTED, minutes=95),
        track_id="TN-40217",
        callsign="RAFALE 21",
        time=_t(95),
        position=Position(lat=34.2171, lon=39.8123),
        altitude_ft=25_000,
        heading_deg=42.5,
        speed_kt=460.0,
        sortie_id="H5-20151123-014",
    )


def _maritime_track() -> MaritimeTrack:
    return MaritimeTrack(
        label=_label("MaritimeTrack", "naval.cvn-group", classification=Classification.RESTRICTED),
        ship_id="R91",
        ship_class="Charles de Gaulle class",
        ship_name="Charles de Gaulle",
        time=_t(0),
        position=Position(lat=34.1032, lon=33.4521),
        course_deg=95.0,
        speed_kt=14.5,
        mission="Carrier strike group flight operations, eastern Mediterranean",
        readiness=Readiness.ELEVATED,
    )


def _strike_report() -> StrikeReport:
    return StrikeReport(
        label=_label("StrikeReport", "air.jordan", minutes=180),
        strike_id="STK-20151123-007",
        sortie_id="H5-20151123-014",
        time=_t(112.5),
        position=Position(lat=34.9871, lon=40.5612),
        target_category=TargetCategory.OIL_TRANSPORT_LOGISTICS,
        group_id="daesh",
        assessed_effect=AssessedEffect.DESTROYED,
        collateral_assessment="No civilian structures within 500 m; no collateral damage assessed.",
        weapon="GBU-24 Paveway III",
        launch_platform="Rafale B",
    )


def _group_location_report() -> GroupLocationReport:
    return GroupLocationReport(
        label=_label("GroupLocationReport", "intel.cell", minutes=60),
        report_id="GLR-20151123-031",
        group_id="daesh",
        time=_t(45),
        position=Position(lat=35.9523, lon=39.0087),
        radius_m=750.0,
        confidence=0.7,
        observed_activity="Vehicle staging and fuel resupply near a former grain silo",
        source_type=SourceType.IMINT,
        source_reliability=SourceReliability.B_USUALLY_RELIABLE,
    )


def _foreign_fighter_report() -> ForeignFighterReport:
    return ForeignFighterReport(
        label=_label("ForeignFighterReport", "intel.cell", caveats=("PERSONAL DATA",), minutes=90),
        report_id="FFR-20151123-004",
        subject=Subject(
            name="EXAMPLE Subject-One",
            subject_ref="ffs-000417",
            nationality=["RUS"],
            languages=["ru", "ar"],
            date_of_birth=date(1991, 4, 17),
        ),
        affiliation="daesh",
        last_known_area=Area(name="Raqqa city", center=Position(lat=35.95, lon=39.01), radius_km=10.0),
        travel_indicators=["Reported transit through southern Turkey in 2014"],
        time=_t(-1440),
    )


def _logistics_observation() -> LogisticsObservation:
    return LogisticsObservation(
        label=_label("LogisticsObservation", "intel.cell", minutes=240),
        observation_id="LOG-20151123-D2",
        area=Area(name="Deir ez-Zor / al-Omar fields", center=Position(lat=34.99, lon=40.57), radius_km=25.0),
        time_bucket_start=_t(0),
        time_bucket_end=_t(24 * 60),
        counts=[
            TrafficCount(kind=TrafficKind.FUEL_TRUCK, count=112),
            TrafficCount(kind=TrafficKind.TANKER_CONVOY, count=3),
            TrafficCount(kind=TrafficKind.CARGO_TRUCK, count=41),
        ],
        trend=Trend.DECREASING,
    )


def deconfliction_alert(partner: str = "RUS") -> DeconflictionAlert:
    """The DeconflictionAlert example about ``partner``'s flight (``example("DeconflictionAlert")``: RUS's)."""
    alert = _deconfliction_alert()
    if partner != "RUS":
        alert.label.releasable_to = ["FRA", partner]
        alert.label.message_id = uuid.uuid5(_ID_NAMESPACE, f"example:DeconflictionAlert:{partner}")
        alert.alert_id = uuid.uuid5(_ID_NAMESPACE, f"example:DeconflictionAlert:alert:{partner}")
        alert.partner = partner
        alert.theirs.nation = partner
    return alert


def _deconfliction_alert() -> DeconflictionAlert:
    # Our RAFALE 21 (the AirTrack example) and a partner's aircraft on converging tracks over the Euphrates valley;
    # REL TO FRA and the partner of the alert only (alerts.alert_record), caveat DECONFLICTION ONLY.
    return DeconflictionAlert(
        label=_label("DeconflictionAlert", "air.deconfliction", releasable_to=("FRA", "RUS"),
                     caveats=("DECONFLICTION ONLY",), minutes=95),
        alert_id=uuid.uuid5(_ID_NAMESPACE, "example:DeconflictionAlert:alert"),
        revision=1,
        status=AlertStatus.UPDATED,
        kind=ConflictKind.TRACK_TRACK,
        partner="RUS",
        ours=ConflictParty(nation="FRA", object=ConflictObject.TRACK, callsign="RAFALE 21",
                           sortie_id="H5-20151123-014", track_id="TN-40217"),
        theirs=ConflictParty(nation="RUS", object=ConflictObject.TRACK, callsign="FALCON 12",
                             sortie_id="RU-HMM-1123-07", track_id="RU-5512"),
        volume=ConflictVolume(centre=Position(lat=34.41, lon=40.02), radius_nm=3.2, floor_ft=24_500,
                              ceiling_ft=25_500),
        window=TimeWindow(start=_t(97), end=_t(99)),
        closest_approach=ClosestApproach(time=_t(98), time_to_cpa_s=180.0),
        lateral_nm=1.8,
        vertical_ft=0,
        minima=SeparationMinima(lateral_nm=5.0, vertical_ft=1000),
    )


_FACTORIES: dict[str, Callable[[], LiaisonMessage]] = {
    "AirMissionPlan": _air_mission_plan,
    "AirTrack": _air_track,
    "MaritimeTrack": _maritime_track,
    "StrikeReport": _strike_report,
    "GroupLocationReport": _group_location_report,
    "ForeignFighterReport": _foreign_fighter_report,
    "LogisticsObservation": _logistics_observation,
    "DeconflictionAlert": _deconfliction_alert,
}
assert tuple(_FACTORIES) == MESSAGE_TYPES


def example(name: str) -> LiaisonMessage:
    """A fresh, valid, realistic instance of message type ``name``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {name!r}; known: {', '.join(MESSAGE_TYPES)}") from None
    return factory()


def examples() -> dict[str, LiaisonMessage]:
    """One fresh example of every message type, in the order of ``MESSAGE_TYPES``."""
    return {name: example(name) for name in MESSAGE_TYPES}

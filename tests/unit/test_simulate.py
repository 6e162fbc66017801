"""producers.simulate: deterministic, evenly paced, coherent, valid and useful to the filters."""

from __future__ import annotations

import bisect
import io
import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import fastavro
import pytest

import schemas
from producers.simulate import (
    DESIGNATED_GROUPS,
    EAST_MED,
    GULF,
    MIX,
    NON_DESIGNATED_GROUPS,
    SENTINEL_FIELDS,
    SENTINEL_PREFIX,
    SENTINEL_RE,
    TARGETS,
    Simulator,
    find_sentinels,
    iter_events,
    message_types,
    parse_components,
    sample,
)
from schemas.models import from_avro, model_name, to_avro

pytestmark = pytest.mark.unit

#: The types our component simulators publish: all but DeconflictionAlert, which no component produces (the
#: deconfliction service computes alerts from the plans and tracks, as `liaison deconflict`).
SIMULATED = tuple(t for t in schemas.MESSAGE_TYPES if t != "DeconflictionAlert")

START = datetime(2015, 11, 23, 6, 0, tzinfo=timezone.utc)
RATE, DURATION = 200.0, 120.0


def name_of(model) -> str:
    return model_name(model)


@pytest.fixture(scope="module")
def run() -> list[tuple[float, object]]:
    """The reference run: all components, 200 events/s for 120 s."""
    return list(Simulator("all", seed=42, start=START).events(RATE, DURATION))


@pytest.fixture(scope="module")
def by_type(run) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for _, model in run:
        out[name_of(model)].append(model)
    return out


def dumps(events) -> list[tuple[float, str, dict]]:
    return [(offset, name_of(model), model.model_dump(mode="json")) for offset, model in events]


# --------------------------------------------------------------------------- determinism, count, pacing


def test_same_seed_gives_the_same_sequence():
    a = dumps(Simulator("all", seed=7, start=START).events(100, 30))
    b = dumps(Simulator({"naval", "air", "intel"}, seed=7, start=START).events(100, 30))
    assert a == b
    c = dumps(Simulator("all", seed=8, start=START).events(100, 30))
    assert a != c


def test_a_simulator_restarts_its_world_on_every_call():
    sim = Simulator("all", seed=3, start=START)
    assert dumps(sim.events(50, 10)) == dumps(sim.events(50, 10))


def test_a_longer_run_extends_a_shorter_one():
    sim = Simulator("all", seed=5, start=START)
    short = dumps(sim.events(50, 20))
    long = dumps(sim.events(50, 40))
    assert long[: len(short)] == short


def test_message_ids_come_from_the_seed_and_are_unique(run):
    ids = [model.label.message_id for _, model in run]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 4 for i in ids)
    again = [m.label.message_id for _, m in Simulator("all", seed=42, start=START).events(RATE, 1)]
    assert again == ids[: len(again)]


def test_the_reference_run_has_rate_times_duration_events(run):
    assert len(run) == round(RATE * DURATION) == 24_000


@pytest.mark.parametrize("rate, duration", [(50, 1), (0.5, 3), (33.3, 7.7), (10, 0), (1000, 0.0015), (7, 100)])
def test_exactly_rate_times_duration_events(rate, duration):
    events = list(Simulator("all", seed=1, start=START).events(rate, duration))
    assert len(events) == round(rate * duration)
    assert all(0 <= offset < max(duration, 1e-9) for offset, _ in events)


def test_offsets_are_non_decreasing_and_timestamps_follow_them(run):
    offsets = [offset for offset, _ in run]
    assert offsets == sorted(offsets)
    assert offsets[0] == 0.0
    for offset, model in run:
        expected = START + timedelta(milliseconds=round(offset * 1000))
        assert model.label.created_at == expected


def test_every_30s_window_holds_the_rate_within_10_percent(run):
    offsets = [offset for offset, _ in run]
    expected = RATE * 30
    step = 0.25
    start = 0.0
    while start + 30 <= DURATION:
        n = bisect.bisect_left(offsets, start + 30) - bisect.bisect_left(offsets, start)
        assert abs(n - expected) <= 0.1 * expected, (start, n)
        start += step
    # And evenly at a finer grain too: every 1 s holds the rate to one event.
    for second in range(int(DURATION)):
        n = bisect.bisect_left(offsets, second + 1) - bisect.bisect_left(offsets, second)
        assert abs(n - RATE) <= 1


def test_stream_is_endless_and_iter_events_matches_it():
    stream = iter_events("all", seed=9, start=START, rate=100)
    first = [next(stream) for _ in range(5000)]
    assert len(first) == 5000
    assert dumps(first[:1000]) == dumps(Simulator("all", seed=9, start=START).events(100, 10))


def test_sample_returns_models():
    models = sample(50, seed=4)
    assert len(models) == 50
    assert sample(50, seed=4) == models
    assert {name_of(m) for m in sample(40, seed=4, components="naval")} == {"MaritimeTrack"}


# --------------------------------------------------------------------------- components and mix


def test_components_select_the_message_types():
    assert message_types("naval") == ("MaritimeTrack",)
    assert message_types("air") == ("AirMissionPlan", "AirTrack", "StrikeReport")
    assert message_types("intel") == ("GroupLocationReport", "ForeignFighterReport", "LogisticsObservation")
    assert set(message_types("all")) == set(SIMULATED)
    assert parse_components("air,intel") == {"air", "intel"}
    assert parse_components(["naval"]) == {"naval"}
    with pytest.raises(ValueError, match="unknown component"):
        parse_components("army")
    with pytest.raises(ValueError, match="no component"):
        parse_components("")


@pytest.mark.parametrize("components", ["naval", "air", "intel", "naval,intel"])
def test_only_the_components_types_are_emitted(components):
    names = Counter(name_of(m) for _, m in Simulator(components, seed=2, start=START).events(100, 60))
    assert set(names) == set(message_types(components))


def test_the_mix_is_roughly_as_specified(run):
    counts = Counter(name_of(m) for _, m in run)
    total = sum(MIX.values())
    for name, weight in MIX.items():
        share = counts[name] / len(run)
        # Strike reports only start once the first sorties reached their targets; until then
        # their slots carry air tracks.
        tolerance = 0.02 if name in ("StrikeReport", "AirTrack") else 0.015
        assert abs(share - weight / total) <= tolerance, (name, share)


def test_mix_of_the_air_component_alone():
    counts = Counter(name_of(m) for _, m in Simulator("air", seed=2, start=START).events(100, 120))
    n = sum(counts.values())
    assert counts["AirTrack"] / n == pytest.approx(55 / 65, abs=0.04)
    assert counts["AirMissionPlan"] / n == pytest.approx(5 / 65, abs=0.02)
    assert counts["StrikeReport"] > 0


# --------------------------------------------------------------------------- coherence


def _bearing(lat1, lon1, lat2, lon2):
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def _angle_diff(a, b):
    return abs((a - b + 180) % 360 - 180)


def test_air_tracks_follow_the_published_plan_of_their_sortie(run):
    plans: dict[str, object] = {}
    checked = 0
    tracks_per_sortie = Counter()
    for _, model in run:
        name = name_of(model)
        if name == "AirMissionPlan":
            plans.setdefault(model.sortie_id, model)
        elif name == "AirTrack" and model.sortie_id is not None:
            plan = plans.get(model.sortie_id)
            assert plan is not None, f"track of {model.sortie_id} before its plan"
            assert model.callsign == plan.callsign
            route = plan.route
            etas = [wp.eta for wp in route]
            assert etas[0] <= model.time <= etas[-1]
            k = min(max(bisect.bisect_right(etas, model.time) - 1, 0), len(route) - 2)
            a, b = route[k], route[k + 1]
            f = (model.time - a.eta) / (b.eta - a.eta)
            lat = a.position.lat + (b.position.lat - a.position.lat) * f
            lon = a.position.lon + (b.position.lon - a.position.lon) * f
            assert model.position.lat == pytest.approx(lat, abs=1e-4)
            assert model.position.lon == pytest.approx(lon, abs=1e-4)
            low = min(a.altitude_band.floor_ft, b.altitude_band.floor_ft)
            high = max(a.altitude_band.ceiling_ft, b.altitude_band.ceiling_ft)
            assert low <= model.altitude_ft <= high
            if f < 0.99:
                expected = _bearing(model.position.lat, model.position.lon, b.position.lat, b.position.lon)
                assert _angle_diff(model.heading_deg, expected) < 1.0
            assert plan.status.value != "CANCELLED"
            tracks_per_sortie[model.sortie_id] += 1
            checked += 1
    assert checked > 5000
    assert len(tracks_per_sortie) > 100


def test_plan_status_lifecycle(run):
    first: dict[str, tuple[int, object]] = {}
    tracked = set()
    for index, (_, model) in enumerate(run):
        name = name_of(model)
        if name == "AirTrack" and model.sortie_id:
            tracked.add(model.sortie_id)
        if name != "AirMissionPlan":
            continue
        status = model.status.value
        if model.sortie_id not in first:
            assert status == "PLANNED"
            first[model.sortie_id] = (index, model)
            assert model.label.created_at <= model.time_windows[0].start
            continue
        original = first[model.sortie_id][1]
        assert model.route == original.route and model.callsign == original.callsign
        assert model.label.classification == original.label.classification
        assert model.label.message_id != original.label.message_id
        if status == "ACTIVE":
            assert model.time_windows[0].start <= model.label.created_at <= model.time_windows[0].end
        elif status == "COMPLETED":
            assert model.label.created_at >= model.time_windows[0].end
        elif status == "CANCELLED":
            assert model.sortie_id not in tracked
    statuses = Counter(m.status.value for _, m in run if name_of(m) == "AirMissionPlan")
    assert set(statuses) == {"PLANNED", "ACTIVE", "COMPLETED", "CANCELLED"}


def test_strike_reports_follow_a_flown_mission_after_the_target_was_reached(run):
    plans: dict[str, object] = {}
    reached: dict[str, object] = {}  # sortie -> first track at or past the target ETA
    strikes = 0
    for _, model in run:
        name = name_of(model)
        if name == "AirMissionPlan":
            plans.setdefault(model.sortie_id, model)
        elif name == "AirTrack" and model.sortie_id:
            plan = plans[model.sortie_id]
            target_eta = _target_waypoint(plan).eta
            if model.time >= target_eta:
                reached.setdefault(model.sortie_id, model)
        elif name == "StrikeReport":
            strikes += 1
            assert model.sortie_id in plans, "strike of an unknown sortie"
            assert model.sortie_id in reached, "strike before any track reached the target"
            target = _target_waypoint(plans[model.sortie_id])
            assert target.eta <= model.time <= reached[model.sortie_id].time <= model.label.created_at
            assert abs(model.position.lat - target.position.lat) < 0.01
            assert abs(model.position.lon - target.position.lon) < 0.01
            assert model.weapon.split(" ")[0] in " ".join(plans[model.sortie_id].weapons_loadout)
    assert strikes > 500


def _target_waypoint(plan):
    """The waypoint nearest one of the strike targets (the route's target waypoint)."""
    def distance(wp):
        return min(abs(wp.position.lat - lat) + abs(wp.position.lon - lon) for lat, lon in TARGETS.values())

    return min(plan.route, key=distance)


def test_ships_move_along_course_and_speed_between_reports(run):
    last: dict[str, object] = {}
    checked = 0
    for _, model in run:
        if name_of(model) != "MaritimeTrack":
            continue
        previous = last.get(model.ship_id)
        last[model.ship_id] = model
        if previous is None or model.course_deg != previous.course_deg:
            continue
        hours = (model.time - previous.time).total_seconds() / 3600
        if hours == 0:
            continue
        nm = model.speed_kt * hours
        dlat = nm * math.cos(math.radians(model.course_deg)) / 60
        assert model.position.lat - previous.position.lat == pytest.approx(dlat, abs=2e-5)
        checked += 1
    assert checked > 1000


# --------------------------------------------------------------------------- geography


def _inside(box, position):
    lat_min, lat_max, lon_min, lon_max = box
    return lat_min <= position.lat <= lat_max and lon_min <= position.lon <= lon_max


def test_positions_are_in_the_stated_regions(by_type):
    seas = Counter()
    for track in by_type["MaritimeTrack"]:
        assert _inside(EAST_MED, track.position) or _inside(GULF, track.position), track.ship_id
        seas["med" if _inside(EAST_MED, track.position) else "gulf"] += 1
    assert seas["med"] and seas["gulf"]
    for track in by_type["AirTrack"]:
        assert _inside((24.0, 37.5, 32.0, 56.0), track.position)
    for strike in by_type["StrikeReport"]:
        assert min(abs(strike.position.lat - lat) + abs(strike.position.lon - lon) for lat, lon in TARGETS.values()) < 0.2
    for report in by_type["GroupLocationReport"]:
        assert _inside((32.0, 37.5, 35.5, 44.0), report.position)
    bases = Counter(plan.label.originator for plan in by_type["AirMissionPlan"])
    assert set(bases) == {"air.jordan", "air.uae", "air.carrier-wing"}
    carrier = [p for p in by_type["AirMissionPlan"] if p.carrier_based]
    assert carrier and all(_inside(EAST_MED, p.route[0].position) for p in carrier)


# --------------------------------------------------------------------------- work for the filters


def _no_partner(model) -> bool:
    label = model.label
    return label.classification.value == "TOP_SECRET" or not ({"RUS", "USA"} & set(label.releasable_to))


def test_labels_are_mixed_and_some_records_reach_no_partner(run):
    models = [m for _, m in run]
    share = sum(_no_partner(m) for m in models) / len(models)
    assert 0.10 <= share <= 0.16
    classifications = Counter(m.label.classification.value for m in models)
    assert classifications["RESTRICTED"] + classifications["CONFIDENTIAL"] > 0.6 * len(models)
    assert classifications["SECRET"] > 0.05 * len(models)
    assert 0 < classifications["TOP_SECRET"] < 0.06 * len(models)
    rel = Counter(tuple(m.label.releasable_to) for m in models)
    for expected in [("FRA", "USA", "RUS"), ("FRA", "USA"), ("FRA",), ("FRA", "USA", "GBR"), ("FRA", "RUS")]:
        assert rel[expected] > 0, expected
    assert all(m.label.caveats == ["SPECIAL FRANCE"] for m in models if m.label.releasable_to == ["FRA"])
    originators = {m.label.originator for m in models}
    assert {"naval.cvn-group", "air.jordan", "air.uae", "air.carrier-wing", "intel.cell"} <= originators


def test_designated_and_non_designated_groups_are_reported(by_type):
    located = Counter(r.group_id for r in by_type["GroupLocationReport"])
    assert set(DESIGNATED_GROUPS) <= set(located)
    assert set(NON_DESIGNATED_GROUPS) <= set(located)
    struck = Counter(s.group_id for s in by_type["StrikeReport"])
    assert "daesh" in struck and "al-nusra" in struck
    assert set(struck) - set(DESIGNATED_GROUPS), "some strikes must hit groups no partner designates"


def test_foreign_fighters_span_nationalities_and_languages(by_type):
    reports = by_type["ForeignFighterReport"]
    nationalities = Counter(n for r in reports for n in r.subject.nationality)
    languages = Counter(lang for r in reports for lang in r.subject.languages)
    assert {"RUS", "FRA", "USA", "GBR", "DEU", "TUN", "SAU", "BEL", "KAZ", "UZB", "GEO"} <= set(nationalities)
    assert {"ru", "fr", "en", "ar", "de", "ce", "ky"} <= set(languages)
    russian_speaking_non_russians = [
        r for r in reports if "ru" in r.subject.languages and "RUS" not in r.subject.nationality
    ]
    assert russian_speaking_non_russians
    assert any(len(r.subject.nationality) > 1 for r in reports)
    # Subjects recur: the same reference in several reports (pseudonymisation must be stable).
    refs = Counter(r.subject.subject_ref for r in reports)
    assert max(refs.values()) > 1
    names_per_ref = defaultdict(set)
    for r in reports:
        names_per_ref[r.subject.subject_ref].add((r.subject.name, tuple(r.subject.nationality)))
    assert all(len(v) == 1 for v in names_per_ref.values())


def test_fields_the_filters_remove_are_populated(by_type):
    assert all(p.weapons_loadout for p in by_type["AirMissionPlan"] if p.aircraft_type != "E-2C Hawkeye")
    assert all(p.mission_purpose for p in by_type["AirMissionPlan"])
    assert any(p.target_area for p in by_type["AirMissionPlan"])
    assert all(s.weapon and s.launch_platform and s.collateral_assessment for s in by_type["StrikeReport"])
    assert all(t.mission for t in by_type["MaritimeTrack"])
    weapons = {s.weapon for s in by_type["StrikeReport"]}
    assert {"GBU-12 Paveway II", "GBU-38 JDAM", "AGM-114 Hellfire", "SCALP EG"} <= weapons
    assert len({r.source_type for r in by_type["GroupLocationReport"]}) >= 4
    assert len({s.ship_class for s in by_type["MaritimeTrack"]}) >= 5


# --------------------------------------------------------------------------- validity on the wire


def test_a_sample_of_every_type_round_trips_through_avro(by_type):
    for name in SIMULATED:
        models = by_type[name]
        assert models, name
        step = max(1, len(models) // 50)
        for model in models[::step]:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schemas.parsed_schema(name), to_avro(model))
            buffer.seek(0)
            record = fastavro.schemaless_reader(buffer, schemas.parsed_schema(name), schemas.parsed_schema(name))
            assert from_avro(name, record) == model
            assert schemas.key_of(name, model)


def test_models_are_valid_when_revalidated(run):
    for _, model in run[::97]:
        assert type(model).model_validate(model.model_dump()) == model


# --------------------------------------------------------------------------- sentinels


def _values_at(obj, path: str) -> list[str]:
    parts = path.split(".")
    current = [obj]
    for part in parts:
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        nxt = []
        for item in current:
            value = item.get(key)
            if value is None:
                continue
            nxt.extend(value if many else [value])
        current = nxt
    return current


def test_sentinel_mode_plants_a_sentinel_in_every_listed_field():
    events = list(Simulator("all", seed=11, start=START, sentinels=True).events(100, 60))
    seen_paths = set()
    for _, model in events:
        name = name_of(model)
        record = model.model_dump(mode="json")
        for path in SENTINEL_FIELDS[name]:
            for value in _values_at(record, path):
                found = SENTINEL_RE.findall(value)
                assert len(found) == 1 and found[0].startswith(f"{SENTINEL_PREFIX}{path.replace('[]', '')}-"), (path, value)
                seen_paths.add((name, path))
        # Nothing outside the listed fields carries one.
        for path in SENTINEL_FIELDS[name]:
            head = path.split(".")[0].removesuffix("[]")
            record.pop(head, None)
        assert not find_sentinels(record), (name, record)
    expected = {(name, path) for name, paths in SENTINEL_FIELDS.items() for path in paths}
    assert seen_paths == expected


def test_sentinels_change_nothing_but_the_sentinels():
    plain = dumps(Simulator("all", seed=11, start=START).events(100, 30))
    marked = dumps(Simulator("all", seed=11, start=START, sentinels=True).events(100, 30))

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(strip(v) for v in value)
        if isinstance(value, list):  # a caveat that was only a sentinel disappears
            return [v for v in (strip(v) for v in value) if v != ""]
        if isinstance(value, str):
            return SENTINEL_RE.sub("", value).rstrip()
        return value

    assert [strip(d) for d in marked] == plain
    assert marked != plain
    assert not any(find_sentinels(d) for d in plain)


def test_sentinels_are_unique_and_stable_per_subject():
    events = [m for _, m in Simulator("intel", seed=12, start=START, sentinels=True).events(100, 60)]
    fighters = [m for m in events if name_of(m) == "ForeignFighterReport"]
    refs = Counter(m.subject.subject_ref for m in fighters)
    assert max(refs.values()) > 1  # the same (marked) reference recurs
    activity = [m.observed_activity for m in events if name_of(m) == "GroupLocationReport"]
    marks = [SENTINEL_RE.search(a).group(0) for a in activity]
    assert len(set(marks)) == len(marks)


def test_find_sentinels_searches_any_shape():
    token = "SENTINEL-weapon-0123abcd"
    assert find_sentinels({"a": [f"x {token}", b"y"], token: 1}) == {token}
    assert find_sentinels(f"... {token} ...".encode()) == {token}
    assert find_sentinels({"a": "no sentinel here"}) == set()


# --------------------------------------------------------------------------- arguments and speed


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        Simulator("all", 1, datetime(2015, 11, 23))
    with pytest.raises(ValueError, match="rate"):
        Simulator("all", 1, START).events(0, 10)
    with pytest.raises(ValueError, match="rate"):
        Simulator("all", 1, START).stream(float("nan"))
    with pytest.raises(ValueError, match="duration"):
        Simulator("all", 1, START).events(10, -1)
    with pytest.raises(ValueError, match="sortie_seconds"):
        Simulator("all", 1, START, sortie_seconds=0)


def test_start_is_truncated_to_milliseconds_and_normalised_to_utc():
    local = datetime(2015, 11, 23, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    sim = Simulator("naval", 1, local)
    assert sim.start == datetime(2015, 11, 23, 6, 0, 0, 123000, tzinfo=timezone.utc)
    _, first = next(iter(sim.events(10, 1)))
    assert first.label.created_at == sim.start


def test_sortie_duration_adapts_to_the_rate():
    sim = Simulator("all", 1, START)
    assert sim.sortie_seconds(200) == pytest.approx(30.0)
    assert 30 < sim.sortie_seconds(1) < 3 * 3600
    assert sim.sortie_seconds(0.001) == pytest.approx(3 * 3600)
    assert Simulator("all", 1, START, sortie_seconds=600).sortie_seconds(200) == 600

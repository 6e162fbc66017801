"""producers.simulate.partner: the simulated partner's stream, deterministic, good records in the inbound format,
bad input of every class, and sorties that really cross ours (no Kafka, no registry)."""

from __future__ import annotations

import io
import json
import zlib
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import fastavro
import pytest

from core import REPO_ROOT
from core.serde import unframe
from core.topics import inbound_topic, type_of_inbound_topic
from producers.simulate import Simulator, geo
from producers.simulate.partner import (
    BAD_CLASSES,
    BAD_HEADER,
    BROKER_MAX_RECORD_BYTES,
    GUARD_MAX_RECORD_BYTES,
    UNREGISTERED_SCHEMA_ID,
    VARIANT_HEADER,
    Format,
    Ours,
    PartnerSimulator,
)
from release import load_policies
from release.exchange import inbound_schema
from schemas.models import MODELS

pytestmark = pytest.mark.unit

START = datetime(2015, 11, 23, 6, 0, tzinfo=timezone.utc)
RATE, COUNT = 50.0, 4000
OURS = Ours("all", seed=1, rate=100.0)
ORDER = ("AirMissionPlan", "AirTrack", "MaritimeTrack", "StrikeReport", "GroupLocationReport",
         "ForeignFighterReport", "LogisticsObservation")
CEILING = {"RUS": "CONFIDENTIAL", "USA": "SECRET"}
LEVELS = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP_SECRET")


@pytest.fixture(scope="module")
def policies():
    return load_policies(REPO_ROOT / "deploy" / "policies")


def formats_of(policies, code):
    """Inbound formats as `liaison schemas register` registers them, with made-up ids (100 + i), and feed ids
    (200 + i)."""
    policy = policies[code]
    formats = {t: Format(100 + i, inbound_schema(policy, t)) for i, t in enumerate(ORDER) if t in policy.types}
    return formats, {t: 200 + i for i, t in enumerate(ORDER)}


def simulate(policies, code, seed=7, count=COUNT, **kw):
    formats, feeds = formats_of(policies, code)
    stream = PartnerSimulator(code, formats, seed, START, feed_ids=feeds, ours=OURS, **kw).events(RATE, count)
    return list(stream), stream, formats


@pytest.fixture(scope="module", params=["RUS", "USA"])
def run(request, policies):
    code = request.param
    outs, stream, formats = simulate(policies, code)
    return code, outs, stream, formats


def decode(formats, out):
    sid, body = unframe(out.value)
    type_name = type_of_inbound_topic(out.topic)[1]
    assert sid == formats[type_name].schema_id, out
    return fastavro.schemaless_reader(io.BytesIO(bytes(body)), fastavro.parse_schema(formats[type_name].schema))


def headers(out):
    return {k: v.decode() for k, v in out.headers}


# ------------------------------------------------------------------------------------------------ determinism

def test_same_seed_same_records_and_another_seed_other_records(policies):
    a, _, _ = simulate(policies, "RUS", seed=11, count=1500)
    b, _, _ = simulate(policies, "RUS", seed=11, count=1500)
    c, _, _ = simulate(policies, "RUS", seed=12, count=1500)
    assert a == b
    assert [o.value for o in a] != [o.value for o in c]
    # a longer run extends a shorter one
    d, _, _ = simulate(policies, "RUS", seed=11, count=600)
    assert a[:600] == d


def test_records_are_evenly_paced(run):
    _, outs, _, _ = run
    assert [o.index for o in outs] == list(range(COUNT))
    assert all(abs(o.offset - o.index / RATE) < 1e-9 for o in outs)


# ------------------------------------------------------------------------------------------------ good records

def test_good_records_decode_with_the_inbound_schema_and_carry_the_partners_label(run):
    code, outs, _, formats = run
    good = [o for o in outs if o.bad is None]
    assert len(good) > 0.8 * COUNT
    types = Counter()
    for out in good:
        assert out.topic == inbound_topic(code, out.type_name) and headers(out) == {}
        record = decode(formats, out)
        types[out.type_name] += 1
        label = record["label"]
        assert label is not None
        assert LEVELS.index(label["classification"]) <= LEVELS.index(CEILING[code])
        assert "FRA" in label["releasable_to"] and code in label["releasable_to"]
        assert label["originator"].startswith(code.lower() + ".")
        created = label["created_at"]
        assert created == START + timedelta(milliseconds=round(out.offset * 1000))
        assert str(label["message_id"]) == out.message_id
        for when in _times(record):
            assert when <= created + timedelta(seconds=1) or out.type_name == "AirMissionPlan"
            assert when >= created - timedelta(days=6)
        for lat, lon in _positions(record):
            assert -90 <= lat <= 90 and -180 <= lon <= 180
    assert set(types) == set(formats), types  # every type the partner sends
    ids = [o.message_id for o in good]
    assert len(set(ids)) == len(ids)  # a good record never reuses a message id


def test_good_records_are_valid_models_before_projection(policies):
    """validate=True (the default) checks the full record with the message model; a run without it gives the
    same bytes, so every good record sent is a projection of a valid model."""
    formats, feeds = formats_of(policies, "RUS")
    a = list(PartnerSimulator("RUS", formats, 5, START, feed_ids=feeds, ours=OURS).events(RATE, 800))
    b = list(PartnerSimulator("RUS", formats, 5, START, feed_ids=feeds, ours=OURS, validate=False).events(RATE, 800))
    assert a == b
    assert set(MODELS) >= {o.type_name for o in a}


def test_content_of_the_rus_stream(policies):
    outs, _, formats = simulate(policies, "RUS", count=3000)
    records = defaultdict(list)
    for out in outs:
        if out.bad is None:
            records[out.type_name].append(decode(formats, out))
    plans = records["AirMissionPlan"]
    assert {p["aircraft_type"] for p in plans} >= {"Su-34", "Su-24M", "Su-35S"}
    assert all(p["route"][0]["name"] == "HMM" for p in plans)
    home = plans[0]["route"][0]["position"]
    assert geo.distance_km(home["lat"], home["lon"], 35.40, 35.95) < 5  # Hmeimim, near Latakia
    assert {p["callsign"].split()[0] for p in plans} <= {"SOKOL", "BERKUT", "GROZA", "KOMETA", "ALMAZ", "STRIZH",
                                                          "VITYAZ", "KORSHUN"}
    assert {p["status"] for p in plans} >= {"PLANNED", "ACTIVE", "COMPLETED"}
    assert {p["label"]["originator"] for p in plans} == {"rus.vks.hmeimim"}
    ships = records["MaritimeTrack"]
    assert all(geo.distance_km(s["position"]["lat"], s["position"]["lon"], 34.9, 35.87) < 80 for s in ships)
    assert {s["label"]["originator"] for s in ships} == {"rus.vmf.tartus"}
    assert {s["group_id"] for s in records["StrikeReport"]} <= {"daesh", "al-nusra"}
    fighters = records["ForeignFighterReport"]
    assert fighters and all("FRA" in f["subject"]["nationality"] or "fr" in f["subject"]["languages"]
                            for f in fighters)
    assert any(f["subject"]["nationality"] == ["FRA"] for f in fighters)
    assert any("FRA" not in f["subject"]["nationality"] for f in fighters)  # French speakers of other nations
    assert records["LogisticsObservation"] and records["GroupLocationReport"]


# ------------------------------------------------------------------------------------------------ bad input

def test_every_bad_class_is_present_with_its_header(run):
    code, outs, stream, _ = run
    bad = [o for o in outs if o.bad is not None]
    assert 0.06 * COUNT < len(bad) < 0.14 * COUNT  # bad_share 0.1
    classes = Counter(o.bad for o in bad)
    assert set(classes) == set(BAD_CLASSES)
    assert max(classes.values()) - min(classes.values()) <= 2  # every class in turn
    assert classes == stream.bad
    for out in bad:
        h = headers(out)
        assert h[BAD_HEADER] == out.bad and h[VARIANT_HEADER] == out.variant


def test_a_short_run_holds_every_class(policies):
    outs, _, _ = simulate(policies, "RUS", count=300, bad_share=0.5)
    assert {o.bad for o in outs} - {None} == set(BAD_CLASSES)


def test_each_bad_class_is_bad_in_its_own_way(run):
    """Each class fails exactly the check it names (as far as a generator can tell) and nothing earlier."""
    code, outs, _, formats = run
    by_class = defaultdict(list)
    for out in outs:
        if out.bad:
            by_class[out.bad].append(out)
    ids = {f.schema_id for f in formats.values()}
    good_ids = {o.message_id: o for o in outs if o.bad is None}
    for cls, items in by_class.items():
        for out in items:
            if cls == "wrong_schema_id":
                sid, _ = unframe(out.value)
                assert sid != formats[out.type_name].schema_id
                assert out.variant in ("other_inbound", "partner_feed", "unregistered")
                if out.variant == "unregistered":
                    assert sid == UNREGISTERED_SCHEMA_ID
                continue
            if cls == "bad_magic":
                assert out.value[:1] != b"\x00" or len(out.value) < 5
                continue
            if cls == "garbage_body":
                with pytest.raises(Exception):
                    decode(formats, out)
                continue
            record = decode(formats, out)
            label = record["label"]
            if cls == "label_missing":
                assert label is None
                continue
            assert label is not None
            if cls == "label_classification":
                assert label["classification"] == "TOP_SECRET"
            elif cls == "label_rel_to":
                assert "FRA" not in label["releasable_to"]
            elif cls == "wrong_originator":
                assert not label["originator"].startswith(code.lower() + ".")
            elif cls == "future_timestamp":
                assert label["created_at"] - START - timedelta(seconds=out.offset) >= timedelta(days=2) - timedelta(seconds=1)
            elif cls == "past_timestamp":
                assert START + timedelta(seconds=out.offset) - label["created_at"] >= timedelta(days=30) - timedelta(seconds=1)
            elif cls == "replay":
                assert out.message_id in good_ids
                original = good_ids[out.message_id]
                assert original.index < out.index and original.topic == out.topic and original.key == out.key
                assert (out.value == original.value) == (out.variant == "resend")
            elif cls == "invalid_values":
                assert _refused_by_model(out.type_name, record)
            elif cls == "oversized":
                assert GUARD_MAX_RECORD_BYTES < len(out.value) < BROKER_MAX_RECORD_BYTES - 4096
            elif cls == "oversized_broker":
                assert len(out.value) > BROKER_MAX_RECORD_BYTES and out.refused_by_broker
            if cls not in ("label_classification", "label_rel_to", "oversized", "oversized_broker"):
                assert LEVELS.index(label["classification"]) <= LEVELS.index(CEILING[code])
            if cls != "label_rel_to":
                assert "FRA" in label["releasable_to"]
    assert {o.variant for o in by_class["replay"]} == {"resend", "reused_id"}
    assert {o.variant for o in by_class["bad_magic"]} == {"magic_0x01", "json", "short"}
    assert {o.variant for o in by_class["invalid_values"]} >= {"latitude_95", "altitude_-5000", "speed_-50"}


def test_oversized_records_do_not_compress_below_the_broker_limit(policies):
    """The broker judges the (lz4-compressed) batch: the padding is random text, so compression cannot hide it
    (deflate at level 9, which compresses better than lz4, leaves it above the limit too)."""
    outs, _, _ = simulate(policies, "RUS", count=400, bad_share=0.5)
    big = [o for o in outs if o.bad == "oversized_broker"]
    assert big and all(len(zlib.compress(o.value, 9)) > BROKER_MAX_RECORD_BYTES for o in big)
    mid = [o for o in outs if o.bad == "oversized"]
    assert mid and all(len(zlib.compress(o.value, 9)) > GUARD_MAX_RECORD_BYTES for o in mid)


# ------------------------------------------------------------------------------------------------ crossings

def test_crossing_sorties_really_cross_ours(run):
    """Recomputed from the records alone: a partner plan crosses one of ours when a waypoint of each lie within
    10 km, their altitude bands overlap, their ETAs differ by less than 5 % of a sortie and their time windows
    overlap."""
    code, outs, stream, formats = run
    plans = {}
    for out in outs:
        if out.bad is None and out.type_name == "AirMissionPlan":
            record = decode(formats, out)
            if record["status"] == "PLANNED":
                plans[record["sortie_id"]] = record
    span = timedelta(seconds=COUNT / RATE + 300)
    sim = Simulator(OURS.components, seed=OURS.seed, start=START)
    ours = [_our_plan(m) for _, m in sim.events(OURS.rate, span.total_seconds())
            if type(m).__name__ == "AirMissionPlan" and m.status.value == "PLANNED"]
    sortie_s = sim.sortie_seconds(OURS.rate)
    found = {}
    for sid, plan in plans.items():
        start, end = plan["time_windows"][0]["start"], plan["time_windows"][0]["end"]
        for mine in ours:
            if not (mine["start"] < end and start < mine["end"]):  # the time windows overlap
                continue
            best = _crossing(plan, mine, sortie_s)
            if best and (sid not in found or best[0] < found[sid][0]):
                found[sid] = (*best, mine["sortie_id"])
    # what the generator says it planned is what the records show
    assert stream.crossings
    for c in stream.crossings:
        assert c.partner_sortie in found, c
        assert c.distance_km <= 8.5
    share = len(found) / len(plans)
    assert 0.15 <= share <= 0.6, (len(found), len(plans))  # cross_share 0.3 of the new sorties
    distances = sorted(f[0] for f in found.values())
    assert distances[len(distances) // 2] < 8.0
    assert all(f[1] > 0 for f in found.values())  # band overlap in feet
    assert all(abs(f[2]) <= 0.05 * sortie_s for f in found.values())


def test_no_crossing_without_our_run(policies):
    formats, feeds = formats_of(policies, "RUS")
    stream = PartnerSimulator("RUS", formats, 7, START, feed_ids=feeds, ours=None).events(RATE, 1000)
    list(stream)
    assert stream.crossings == []


# ------------------------------------------------------------------------------------------------ helpers

def _our_plan(model):
    return {"sortie_id": model.sortie_id, "start": model.time_windows[0].start, "end": model.time_windows[0].end,
            "route": [(w.position.lat, w.position.lon, w.altitude_band.floor_ft, w.altitude_band.ceiling_ft, w.eta)
                      for w in model.route[1:-1]]}


def _crossing(plan, mine, sortie_s):
    """(distance km, band overlap ft, ETA difference s) of the closest qualifying waypoint pair, or None."""
    best = None
    for pw in plan["route"][1:-1]:
        band = pw["altitude_band"]
        for lat, lon, floor, ceiling, eta in mine["route"]:
            dt = (pw["eta"] - eta).total_seconds()
            if abs(dt) > 0.05 * sortie_s:
                continue
            overlap = min(band["ceiling_ft"], ceiling) - max(band["floor_ft"], floor)
            if overlap <= 0:
                continue
            d = geo.distance_km(pw["position"]["lat"], pw["position"]["lon"], lat, lon)
            if d <= 10 and (best is None or d < best[0]):
                best = (d, overlap, dt)
    return best


def _positions(node):
    if isinstance(node, dict):
        if set(node) == {"lat", "lon"}:
            yield node["lat"], node["lon"]
        else:
            for v in node.values():
                yield from _positions(v)
    elif isinstance(node, list):
        for v in node:
            yield from _positions(v)


def _times(record):
    for key in ("time", "time_bucket_end"):
        if key in record:
            yield record[key]


def _refused_by_model(type_name, record):
    """Whether the message model's validators refuse a value of the (projected) record."""
    lats = [lat for lat, _ in _positions(record)]
    return (any(not -90 <= lat <= 90 for lat in lats) or record.get("altitude_ft", 0) < -1500
            or record.get("speed_kt", 0) < 0 or not 0 <= record.get("confidence", 0.5) <= 1)


def test_refusal_helper_matches_the_models():
    """_refused_by_model above names values the pydantic models refuse (spot check on AirTrack)."""
    from schemas.examples import example

    base = example("AirTrack").model_dump()
    for change in ({"altitude_ft": -5000}, {"speed_kt": -50.0}, {"position": {"lat": 95.0, "lon": 35.0}}):
        with pytest.raises(ValueError):
            MODELS["AirTrack"].model_validate({**base, **change})
    assert json.dumps(BAD_CLASSES)  # every class documented

"""operations.ledger's pure core: what counts, hour buckets, day and week windows, ratios, pauses, the changelog
format and load_state over records (no Kafka)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from operations.ledger import load_state, pauses
from operations.ledger.evaluate import LedgerState, entry_of_decision, entry_of_ingress, ratio, rows
from operations.ledger.model import (GIVEN, HOUR_MS, RECEIVED, BucketKey, Figures, LedgerFormatError, decode_key,
                                     decode_value, encode_key, encode_value, hour_of)

pytestmark = pytest.mark.unit

#: 2026-01-01T00:00:00Z, an hour start
T0 = 1_767_225_600_000
DAY, WEEK = 24 * HOUR_MS, 7 * 24 * HOUR_MS


def decision(partner="RUS", decision="RELEASE", message_type="StrikeReport", at=T0, size=100):
    return {"partner": partner, "decision": decision, "message_type": message_type, "decided_at": at, "bytes": size}


def ingress(partner="RUS", decision="ACCEPT", message_type="StrikeReport", at=T0, size=80):
    return {"partner": partner, "decision": decision, "message_type": message_type, "decided_at": at, "bytes": size}


def state_of(*audits) -> LedgerState:
    s = LedgerState()
    s.add(entry_of_ingress(a) if a["decision"] in ("ACCEPT", "QUARANTINE") else entry_of_decision(a) for a in audits)
    return s


def policy(partner, *entries, kind="partner"):
    return SimpleNamespace(partner=partner, kind=kind, spec=SimpleNamespace(reciprocity=[
        SimpleNamespace(category=c, window=w, min_ratio=r, min_given=g) for c, w, r, g in entries]))


# ---------------------------------------------------------------------------------------------- what counts


def test_release_and_released_are_given_held_and_others_are_not():
    for d in ("RELEASE", "RELEASED"):
        assert entry_of_decision(decision(decision=d)) == (BucketKey("RUS", "strike_results", GIVEN, T0),
                                                           Figures(1, 100))
    for d in ("HELD", "WITHHOLD", "DEAD_LETTER", "UNKNOWN"):
        assert entry_of_decision(decision(decision=d)) is None


def test_components_are_never_counted():
    for recipient in ("naval", "air", "intel", "Rus", "RUSS", ""):
        assert entry_of_decision(decision(partner=recipient)) is None
        assert entry_of_ingress(ingress(partner=recipient)) is None


def test_accept_is_received_quarantine_is_not():
    assert entry_of_ingress(ingress()) == (BucketKey("RUS", "strike_results", RECEIVED, T0), Figures(1, 80))
    assert entry_of_ingress(ingress(decision="QUARANTINE")) is None
    assert entry_of_ingress(ingress(decision="UNKNOWN")) is None


def test_category_of_message_type_and_of_source_key_unknown_ignored():
    assert entry_of_decision(decision(message_type="AirTrack"))[0].category == "air_deconfliction"
    assert entry_of_decision(decision(message_type="RUS/LogisticsObservation"))[0].category == "logistics"
    assert entry_of_decision(decision(message_type=None)) is None
    assert entry_of_decision(decision(message_type="Nope")) is None


def test_null_bytes_count_zero_and_datetime_decided_at():
    e = entry_of_decision({**decision(size=None),
                           "decided_at": datetime.fromtimestamp((T0 + 5) / 1000, timezone.utc)})
    assert e == (BucketKey("RUS", "strike_results", GIVEN, T0), Figures(1, 0))


# ---------------------------------------------------------------------------------------------- hour buckets


def test_hour_boundaries():
    assert hour_of(T0) == T0 and hour_of(T0 + HOUR_MS - 1) == T0 and hour_of(T0 + HOUR_MS) == T0 + HOUR_MS
    s = state_of(decision(at=T0 - 1), decision(at=T0), decision(at=T0 + HOUR_MS - 1), decision(at=T0 + HOUR_MS))
    assert s.get(BucketKey("RUS", "strike_results", GIVEN, T0 - HOUR_MS)) == Figures(1, 100)
    assert s.get(BucketKey("RUS", "strike_results", GIVEN, T0)) == Figures(2, 200)
    assert s.get(BucketKey("RUS", "strike_results", GIVEN, T0 + HOUR_MS)) == Figures(1, 100)


def test_stage_does_not_change_state_until_update():
    s = state_of(decision())
    changed = s.stage([entry_of_decision(decision()), entry_of_decision(decision(size=5)), None])
    assert changed == {BucketKey("RUS", "strike_results", GIVEN, T0): Figures(3, 205)}
    assert s.get(BucketKey("RUS", "strike_results", GIVEN, T0)) == Figures(1, 100)
    s.update(changed)
    assert s.get(BucketKey("RUS", "strike_results", GIVEN, T0)) == Figures(3, 205)


# ---------------------------------------------------------------------------------------------- windows


def totals(s, now, partner="RUS", category="strike_results", direction=GIVEN):
    t = s.totals(now)
    return {w: t.get((partner, category, direction, w), Figures()) for w in ("day", "week")}


def test_day_is_the_current_hour_and_the_23_before_week_167():
    now = T0 + 30 * 60_000  # half past
    s = state_of(decision(at=now), decision(at=T0 - 23 * HOUR_MS), decision(at=T0 - 24 * HOUR_MS),
                 decision(at=T0 - 167 * HOUR_MS), decision(at=T0 - 168 * HOUR_MS))
    assert totals(s, now) == {"day": Figures(2, 200), "week": Figures(4, 400)}


def test_window_moves_with_now_and_future_buckets_left_out():
    s = state_of(decision(at=T0), decision(at=T0 + HOUR_MS))
    assert totals(s, T0) == {"day": Figures(1, 100), "week": Figures(1, 100)}  # the next hour is in the future
    assert totals(s, T0 + HOUR_MS) == {"day": Figures(2, 200), "week": Figures(2, 200)}
    assert totals(s, T0 + DAY - 1) == {"day": Figures(2, 200), "week": Figures(2, 200)}
    assert totals(s, T0 + DAY) == {"day": Figures(1, 100), "week": Figures(2, 200)}
    assert totals(s, T0 + WEEK + HOUR_MS) == {"day": Figures(), "week": Figures()}


def test_ratio_and_rows_with_zero_given():
    assert ratio(3, 0) is None and ratio(0, 0) is None and ratio(1, 4) == 0.25
    s = state_of(ingress(), ingress(message_type="AirTrack"), decision(message_type="AirTrack"),
                 decision(message_type="AirTrack"))
    by = {(r.category, r.window): r for r in rows(s, T0)}
    assert len(by) == 12  # six categories x two windows
    strike = by[("strike_results", "day")]
    assert strike.given == Figures() and strike.received == Figures(1, 80) and strike.ratio is None
    air = by[("air_deconfliction", "week")]
    assert air.given == Figures(2, 200) and air.ratio == 0.5 and air.bytes_ratio == 0.4
    assert air.to_dict()["ratio"] == 0.5 and strike.to_dict()["ratio"] is None
    assert [r.partner for r in rows(s, T0, partners=["USA"])] == ["USA"] * 12


# ---------------------------------------------------------------------------------------------- pauses


def test_pause_when_enough_given_and_ratio_below():
    s = state_of(*[decision() for _ in range(10)], ingress(), ingress())
    got = pauses({"RUS": policy("RUS", ("strike_results", "week", 0.5, 10))}, s, T0)
    reason = got["RUS"]["strike_results"]
    plans = {"RUS": SimpleNamespace(policy=policy("RUS", ("strike_results", "week", 0.5, 10)))}
    assert pauses(plans, s, T0) == got
    assert set(got) == {"RUS"} and set(got["RUS"]) == {"strike_results"}
    for text in ("RUS", "strike_results", "week", "received 2", "given 10", "ratio 0.200", "min_ratio 0.5",
                 "min_given 10"):
        assert text in reason


def test_no_pause_below_min_given_at_threshold_or_with_nothing_given():
    s = state_of(*[decision() for _ in range(9)])
    assert pauses([policy("RUS", ("strike_results", "week", 0.5, 10))], s, T0) == {}
    s = state_of(*[decision() for _ in range(10)], *[ingress() for _ in range(5)])  # ratio == min_ratio
    assert pauses([policy("RUS", ("strike_results", "week", 0.5, 10))], s, T0) == {}
    assert pauses([policy("RUS", ("strike_results", "week", 0.5, 1))], LedgerState(), T0) == {}


def test_pause_window_day_vs_week():
    old = T0 - 2 * DAY
    s = state_of(*[decision(at=old) for _ in range(10)], *[ingress() for _ in range(1)],
                 *[decision() for _ in range(2)])
    week = pauses([policy("RUS", ("strike_results", "week", 0.5, 10))], s, T0)
    day = pauses([policy("RUS", ("strike_results", "day", 0.5, 2))], s, T0)
    assert "given 12" in week["RUS"]["strike_results"] and day == {}  # day: 1 / 2 = 0.5, not below


def test_pauses_skip_components_safety_and_other_partners():
    s = state_of(*[decision(message_type="AirTrack") for _ in range(20)],
                 *[decision(partner="USA") for _ in range(20)])
    policies = [policy("RUS", ("air_deconfliction", "week", 0.5, 1)), policy("USA", ("strike_results", "day", 1, 1)),
                policy("naval", ("strike_results", "day", 1, 1), kind="component"),
                SimpleNamespace(partner="FRA", spec=SimpleNamespace(reciprocity=[])),
                SimpleNamespace(partner="GBR", spec=None)]
    got = pauses(policies, s, T0)
    assert list(got) == ["USA"] and list(got["USA"]) == ["strike_results"]


def test_two_entries_on_one_category_join_reasons():
    s = state_of(*[decision() for _ in range(10)])
    got = pauses([policy("RUS", ("strike_results", "week", 0.5, 5), ("strike_results", "day", 0.2, 5))], s, T0)
    assert got["RUS"]["strike_results"].count("reciprocity pause") == 2


def test_pauses_with_the_real_policy_spec():
    from release.spec import Reciprocity

    s = state_of(*[decision(message_type="GroupLocationReport") for _ in range(10)])
    p = SimpleNamespace(partner="RUS", spec=SimpleNamespace(reciprocity=[
        Reciprocity(category="group_locations", window="day", min_ratio=0.1)]))
    assert "group_locations" in pauses({"RUS": p}, s, T0)["RUS"]


# ---------------------------------------------------------------------------------------------- changelog


def test_key_and_value_format():
    key = BucketKey("RUS", "strike_results", GIVEN, T0)
    assert encode_key(key) == f"RUS/strike_results/given/{T0}".encode() and decode_key(encode_key(key)) == key
    assert encode_value(Figures(12, 4810)) == b'{"count":12,"bytes":4810}'
    assert decode_value(b'{"count":12,"bytes":4810}') == Figures(12, 4810) and decode_value(None) is None
    for bad in (b"RUS/strike_results/given", b"RUS/nope/given/0", b"RUS/strike_results/sideways/0",
                f"RUS/strike_results/given/{T0 + 1}".encode(), b"RUS/strike_results/given/-1"):
        with pytest.raises(LedgerFormatError):
            decode_key(bad)
    for bad in (b"nope", b'{"count":1}', b'{"count":-1,"bytes":0}', b'{"count":"1","bytes":0}'):
        with pytest.raises(LedgerFormatError):
            decode_value(bad)


def test_load_state_from_records_latest_wins_tombstone_forgets_bad_skipped():
    k1 = BucketKey("RUS", "strike_results", GIVEN, T0)
    k2 = BucketKey("RUS", "logistics", RECEIVED, T0)
    s = load_state([(encode_key(k1), encode_value(Figures(1, 10))), (encode_key(k2), encode_value(Figures(2, 5))),
                    (encode_key(k1), encode_value(Figures(3, 30))), (b"garbage", b"{}"), (None, b"x"),
                    (encode_key(k2), None)])
    assert s == LedgerState({k1: Figures(3, 30)})

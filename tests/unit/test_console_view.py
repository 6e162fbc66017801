"""The console's pure parts: who may sign in, the grid a coarsened position stands for, and what a released
record becomes on the page (console.principals, console.precision, console.view, console.ops_model)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from console.ops_model import LagHistory, Outcomes
from console.precision import cell_of, load_grids
from console.principals import COMPONENT, OFFICER, OPERATIONS, SignInRefused, principal_of
from console.view import item_of, jsonable
from core import REPO_ROOT

pytestmark = pytest.mark.unit
POLICIES = REPO_ROOT / "deploy" / "policies"
PARTNERS, COMPONENTS = frozenset({"RUS", "USA"}), frozenset({"naval", "air", "intel"})


@pytest.mark.parametrize("user,kind,recipient,prefix", [
    ("partner-rus", OFFICER, "RUS", "liaison.partner.rus."), ("partner-usa", OFFICER, "USA", "liaison.partner.usa."),
    ("component-naval", COMPONENT, "naval", "liaison.component.naval."), ("operations", OPERATIONS, None, None)])
def test_the_principals_the_console_serves(user, kind, recipient, prefix):
    p = principal_of(user, PARTNERS, COMPONENTS)
    assert (p.name, p.kind, p.recipient, p.feed_prefix) == (user, kind, recipient, prefix)


@pytest.mark.parametrize("user", ["partner-rus", "partner-usa", "component-naval", "component-air", "operations"])
def test_a_sessions_group_id_is_one_its_principal_may_describe(user):
    """The session's consumer never joins its group, but looks up the group's coordinator: the broker wants
    DESCRIBE (READ implies it) on the group, from deploy/acls.yaml, and nothing wider is needed."""
    from deploy.acl import load_acls

    group = principal_of(user, PARTNERS, COMPONENTS).client_group
    allowed = [a for a in load_acls(REPO_ROOT / "deploy" / "acls.yaml") if a.principal == user
               and a.resource == "group" and a.operation in ("READ", "DESCRIBE")
               and (group.startswith(a.name) if a.pattern == "prefixed" else group == a.name)]
    assert allowed, f"{user} may not describe group {group}"
    assert group != principal_of(user, PARTNERS, COMPONENTS).client_group  # a new one per session


@pytest.mark.parametrize("user", ["admin", "forwarder", "ingress", "lag-monitor", "ledger", "producer-air",
                                  "partner-fra", "partner-RUS", "component-space", "registry", "", "operations2"])
def test_every_other_user_is_refused_even_before_the_broker_is_asked(user):
    with pytest.raises(SignInRefused, match="cannot sign in to the console"):
        principal_of(user, PARTNERS, COMPONENTS)


def test_the_grids_come_from_the_recipients_own_policy():
    rus, usa = load_grids(POLICIES / "RUS.yaml"), load_grids(POLICIES / "USA.yaml")
    assert rus[(None, "StrikeReport", "position")] == {0.1}
    assert rus[(None, "GroupLocationReport", "position")] == {0.05}
    assert (None, "StrikeReport", "position") not in usa or usa[(None, "StrikeReport", "position")] != {0.1}


@pytest.mark.parametrize("lat,lon,cell", [
    (34.5, 36.2, (34.5, 36.2, 34.6, 36.3)), (-0.3, -179.9, (-0.3, -179.9, -0.2, -179.8)),
    (34.55, 36.2, None),  # not on the 0.1 grid: a point
])
def test_a_position_on_the_grid_is_its_cell(lat, lon, cell):
    grids = {(None, "StrikeReport", "position"): frozenset({0.1})}
    assert cell_of(grids, None, "StrikeReport", "position", lat, lon) == cell
    assert cell_of(grids, "RUS", "StrikeReport", "position", lat, lon) is None  # another origin's rule: no grid
    assert cell_of(grids, None, "AirTrack", "position", lat, lon) is None


def test_the_coarsest_grid_the_position_lies_on_wins():
    grids = {(None, "X", "position"): frozenset({0.1, 0.5})}
    assert cell_of(grids, None, "X", "position", 34.5, 36.0) == (34.5, 36.0, 35.0, 36.5)
    assert cell_of(grids, None, "X", "position", 34.6, 36.0) == (34.6, 36.0, 34.7, 36.1)


T = dt.datetime(2026, 12, 2, 10, 30, tzinfo=dt.timezone.utc)
LABEL = {"classification": "RESTRICTED", "created_at": T}


def test_a_coarsened_strike_is_a_cell_and_a_track_a_point_with_a_trail_key():
    grids = load_grids(POLICIES / "RUS.yaml")
    strike = item_of("liaison.partner.rus.air.strike-report", 0, 7, 1000, b"k", [("type", b"StrikeReport"),
                     ("message_id", b"m-1")], {"label": LABEL, "time": T, "position": {"lat": 34.5, "lon": 36.2},
                                                "target_category": "VEHICLE"}, grids)
    assert strike["shapes"] == [{"kind": "cell", "south": 34.5, "west": 36.2, "north": 34.6, "east": 36.3,
                                 "path": "position"}]
    assert (strike["id"], strike["type"], strike["message_id"], strike["key"]) == (
        "liaison.partner.rus.air.strike-report/0/7", "StrikeReport", "m-1", "k")
    track = item_of("liaison.partner.rus.air.track", 1, 3, 1000, None, [], {
        "label": LABEL, "track_id": "t-9", "callsign": "VIPER11", "time": T,
        "position": {"lat": 34.512345, "lon": 36.2}}, grids)
    assert track["shapes"] == [{"kind": "point", "lat": 34.512345, "lon": 36.2, "path": "position"}]
    assert (track["title"], track["track"], track["time"]) == ("VIPER11", "/AirTrack/t-9", "2026-12-02T10:30:00Z")
    assert ["callsign", "VIPER11"] in track["summary"]


def test_a_partners_record_released_onward_keeps_its_origin():
    item = item_of("liaison.component.naval.origin.rus.air.track", 0, 0, 0, None, [], {
        "label": LABEL, "callsign": "RUS01", "position": {"lat": 1.0, "lon": 2.0}}, {})
    assert (item["origin"], item["type"], item["track"]) == ("RUS", "AirTrack", "RUS/AirTrack/RUS01")


def test_a_plan_is_a_route_with_bands_and_windows_and_an_alert_a_volume():
    plan = item_of("liaison.partner.usa.air.mission-plan", 0, 0, 0, None, [], {
        "label": LABEL, "callsign": "HAWK1", "time_windows": [{"start": T, "end": T}],
        "route": [{"name": "WP1", "position": {"lat": 1.0, "lon": 2.0}, "altitude_band": {"floor_ft": 1000,
                                                                                         "ceiling_ft": 5000}},
                  {"name": "WP2", "position": {"lat": 1.5, "lon": 2.5}, "altitude_band": None}]}, {})
    (route,) = plan["shapes"]
    assert route["kind"] == "route" and [p["name"] for p in route["points"]] == ["WP1", "WP2"]
    assert (route["points"][0]["floor_ft"], route["points"][1]["floor_ft"]) == (1000, None)
    assert route["windows"] == [{"start": "2026-12-02T10:30:00Z", "end": "2026-12-02T10:30:00Z"}]
    alert = item_of("liaison.partner.usa.deconfliction.alert", 0, 0, 0, None, [], {
        "label": LABEL, "kind": "PLAN_PLAN", "volume": {"centre": {"lat": 1.0, "lon": 2.0}, "radius_nm": 5.0,
                                                         "floor_ft": 0, "ceiling_ft": 9000},
        "window": {"start": T, "end": T}}, {})
    (vol,) = alert["shapes"]
    assert vol["kind"] == "circle" and vol["radius_m"] == 5 * 1852.0 and vol["alert"] and vol["ceiling_ft"] == 9000


def test_a_withheld_position_draws_nothing_and_odd_values_stay_json():
    item = item_of("liaison.partner.rus.air.track", 0, 0, 0, None, [], {"label": LABEL, "position": None}, {})
    assert item["shapes"] == [] and item["track"] is None
    assert jsonable({"b": b"\x00\x01", "f": float("nan"), "l": (1, 2)}) == {"b": "AAE=", "f": "nan", "l": [1, 2]}


def test_outcomes_count_per_minute_and_forget_old_minutes():
    o = Outcomes(keep_minutes=10)
    now = 1_800_000_030_000  # 30 s into a minute
    o.add_decisions([{"decided_at": now - 1000, "partner": "RUS", "message_type": "AirTrack", "decision": "RELEASE"},
                     {"decided_at": now - 61_000, "partner": "RUS", "message_type": "AirTrack",
                      "decision": "WITHHOLD"},
                     {"decided_at": now, "partner": "USA", "message_type": "AirTrack", "decision": "DEAD_LETTER"}])
    o.add_ingress({"decided_at": now, "partner": "RUS", "message_type": "RUS/StrikeReport", "decision": "QUARANTINE"})
    o.add_decisions([{"decided_at": now - 3_600_000, "partner": "RUS", "message_type": "AirTrack",
                      "decision": "RELEASE"}])
    snap = o.snapshot(now, minutes=5)
    series = {(s["recipient"], s["outcome"]): s["counts"] for s in snap["series"]}
    assert series[("RUS", "released")][-1] == 1 and sum(series[("RUS", "released")]) == 1  # the old one: gone
    assert sum(series[("RUS", "withheld")]) == 1 and series[("USA", "dead_lettered")][-1] == 1
    assert series[("RUS", "quarantined")][-1] == 1
    totals = {(t["recipient"], t["type"], t["outcome"]): t["count"] for t in snap["totals"]}
    assert totals[("RUS", "StrikeReport", "quarantined")] == 1 and totals[("RUS", "AirTrack", "released")] == 2


def test_lag_history_keeps_the_last_points_per_group():
    h = LagHistory(points=3)
    for i in range(5):
        g = SimpleNamespace(group="liaison-forwarder", status="OK" if i < 4 else "STALLED", reason="", state="Stable",
                            members=1, lag_offsets=i, max_lag_seconds=None)
        h.add(100.0 + i, SimpleNamespace(groups=[g]))
    (snap,) = h.snapshot()
    assert snap["status"] == "STALLED" and [p[2] for p in snap["history"]] == [2, 3, 4]

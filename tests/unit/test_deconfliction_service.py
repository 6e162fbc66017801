"""The deconfliction service's parts that need no broker: decoding a batch, the alert and state records of a step,
the state rebuilt from state-topic records (per group, tombstones), exactly once across a crash (a pure replay of
what the broker does: only committed batches count, the restart reads the committed state and resumes at the
committed offsets), the rollback of an aborted batch, the topic names and the subscription pattern, metrics and
health, the CLI's refusal of bad minima before any connection."""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict

import fastavro
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from consumers.deconfliction import State
from consumers.deconfliction import geometry as geo
from consumers.deconfliction.lifecycle import CLEARED, NEW
from consumers.deconfliction.metrics import Current, _Collector, deconflict_counters, status
from consumers.deconfliction.params import Params
from consumers.deconfliction.service import (ALERT_TOPIC, INPUT_TOPICS, ORIGIN_AIR_PATTERN, STATE_TOPIC, Batch,
                                             alert_outputs, alert_schema_text, apply_changelog, build_batch,
                                             decode_batch, next_offsets, state_entries, state_outputs)
from consumers.shell.codec import DecodeError, RegistryUnavailable
from consumers.shell.records import InRecord
from core import serde
from tests.unit.deconfliction_support import C, SENTINELS, T0, plan, straight, towards, track

pytestmark = pytest.mark.unit

GROUP = "liaison-deconflict-test"
V = 250.0
T_CROSS = T0 + 3_600_000
OURS_PLAN, OURS_TRACK = INPUT_TOPICS
RUS_PLAN, RUS_TRACK = "liaison.origin.rus.air.mission-plan", "liaison.origin.rus.air.track"


class FakeDecoder:
    """value bytes -> (source, record), as InputDecoder.decode gives them; b"bad" fails, b"away" is the registry
    away."""

    available, last_error = True, None

    def __init__(self):
        self.by_value: dict[bytes, tuple[str, dict]] = {}

    def value(self, source: str, record: dict) -> bytes:
        v = f"v{len(self.by_value)}".encode()
        self.by_value[v] = (source, record)
        return v

    def decode(self, topic, value):
        if value == b"away":
            raise RegistryUnavailable("registry unreachable", 500)
        if value not in self.by_value:
            raise DecodeError("framing", "value is not framed")
        return self.by_value[value]


@pytest.fixture(scope="module")
def encoder():
    return serde.Encoder(42, json.loads(alert_schema_text()))


def _decode_alert(value: bytes) -> dict:
    schema_id, body = serde.unframe(value)
    assert schema_id == 42
    return fastavro.schemaless_reader(io.BytesIO(bytes(body)), fastavro.parse_schema(json.loads(alert_schema_text())))


def _crossing(dec: FakeDecoder, t_theirs=T_CROSS, created_ms=T0):
    ours = plan("A1", *straight(C, 90.0, 100_000, V, T_CROSS), callsign="RAFALE 11")
    theirs = plan("R1", *straight(C, 0.0, 100_000, V, t_theirs), (22000, 27000), ours=False, created_ms=created_ms,
                  callsign="SOKOL 21")
    return [InRecord(OURS_PLAN, 0, 10, b"A1", dec.value("AirMissionPlan", ours), None, T0 - 50),
            InRecord(RUS_PLAN, 2, 7, b"R1", dec.value("RUS/AirMissionPlan", theirs), None, T0 - 20)]


# ---------------------------------------------------------------------------------------------- names


def test_topic_names_and_the_origin_pattern():
    from core import topics

    assert ALERT_TOPIC == "liaison.internal.deconfliction.alert"
    assert STATE_TOPIC == "liaison.deconfliction.state"
    if hasattr(topics, "DECONFLICTION_STATE_TOPIC"):
        assert STATE_TOPIC == topics.DECONFLICTION_STATE_TOPIC
    assert INPUT_TOPICS == ("liaison.internal.air.mission-plan", "liaison.internal.air.track")
    from deploy.topics import load_topics

    names = [t.name for t in load_topics()]
    matched = sorted(n for n in names if re.search(ORIGIN_AIR_PATTERN, n))
    assert matched == sorted(f"liaison.origin.{p}.air.{t}" for p in ("rus", "usa") for t in ("mission-plan", "track"))
    for n in ("liaison.origin.rus.air.strike-report", "liaison.origin.rus.naval.track",
              "liaison.component.air.origin.rus.air.track", "liaison.origin.rus.air.track.x"):
        assert not re.search(ORIGIN_AIR_PATTERN, n)


# ---------------------------------------------------------------------------------------------- one batch


def test_next_offsets_are_one_past_the_last_record_of_each_partition():
    b = [InRecord("a", 0, 5, None, b""), InRecord("a", 0, 9, None, b""), InRecord("a", 1, 3, None, b""),
         InRecord("b", 0, 0, None, b"")]
    assert next_offsets(b) == {("a", 0): 10, ("a", 1): 4, ("b", 0): 1}
    assert next_offsets([]) == {}


def test_decode_batch_keeps_order_skips_undecodable_and_lets_the_registry_wait():
    dec = FakeDecoder()
    recs = _crossing(dec)
    bad = InRecord(OURS_TRACK, 3, 1, None, b"bad")
    pairs, skipped = decode_batch([recs[0], bad, recs[1]], dec)
    assert [s for s, _ in pairs] == ["AirMissionPlan", "RUS/AirMissionPlan"]
    assert [(r.offset, stage) for r, stage, _ in skipped] == [(1, "framing")]
    with pytest.raises(RegistryUnavailable):
        decode_batch([recs[0], InRecord(OURS_TRACK, 3, 2, None, b"away")], dec)


def test_a_crossing_gives_one_alert_record_and_state_records_in_one_batch(encoder):
    dec = FakeDecoder()
    recs = _crossing(dec) + [InRecord(OURS_TRACK, 1, 4, None, b"bad")]
    state = State()
    batch, bad = build_batch(state, recs, dec, T0, Params(), encoder, GROUP)
    assert len(bad) == 1 and batch.stats.skipped == 1 and batch.stats.records == 3
    assert batch.offsets == {(OURS_PLAN, 0): 11, (RUS_PLAN, 2): 8, (OURS_TRACK, 1): 5}
    alerts = [o for o in batch.outputs if o.topic == ALERT_TOPIC]
    states = [o for o in batch.outputs if o.topic == STATE_TOPIC]
    assert len(alerts) == 1 and batch.outputs[:1] == alerts  # alerts first, then the state entries
    rec = _decode_alert(alerts[0].value)
    assert (rec["status"], rec["kind"], rec["partner"], rec["revision"]) == ("NEW", "PLAN_PLAN", "RUS", 0)
    assert (rec["ours"]["callsign"], rec["theirs"]["callsign"]) == ("RAFALE 11", "SOKOL 21")
    assert alerts[0].key == str(rec["alert_id"]).encode() and alerts[0].headers is None
    assert sorted(o.key for o in states) == sorted(f"{GROUP}/{k}".encode() for k in state.to_changelog())
    assert batch.stats.alerts == Counter({("NEW", "PLAN_PLAN", "RUS"): 1})
    assert (batch.oldest_ms, batch.newest_ms) == (T0 - 50, T0 - 20)


def test_nothing_of_our_mission_target_loadout_or_base_in_any_output(encoder):
    dec = FakeDecoder()
    batch, _ = build_batch(State(), _crossing(dec), dec, T0, Params(), encoder, GROUP)
    blob = b"".join((o.key or b"") + (o.value or b"") for o in batch.outputs)
    for v in SENTINELS.values():
        for s in v if isinstance(v, list) else [v]:
            assert s.encode() not in blob


def test_state_records_round_trip_per_group_with_tombstones():
    log = state_outputs(GROUP, {"obj/b": {"x": 1}, "obj/a": {"y": [1, 2]}, "alert/z": None})
    assert [o.key for o in log] == [f"{GROUP}/alert/z".encode(), f"{GROUP}/obj/a".encode(), f"{GROUP}/obj/b".encode()]
    assert log[0].value is None and json.loads(log[1].value) == {"y": [1, 2]}
    other = [(b"liaison-deconflict-other/obj/a", b'{"q":1}'), (b"liaison-deconflict/obj/c", b'{"q":2}')]
    records = [(o.key, o.value) for o in log] + other + [(f"{GROUP}/obj/b".encode(), None),
                                                         (f"{GROUP}/obj/d".encode(), b"not json"), (None, b"{}")]
    assert state_entries(records, GROUP) == {"obj/a": {"y": [1, 2]}}


def test_the_picture_rebuilt_from_its_state_records_carries_on_like_the_original(encoder):
    dec = FakeDecoder()
    a = State()
    b1, _ = build_batch(a, _crossing(dec), dec, T0, Params(), encoder, GROUP)
    rebuilt = State.from_changelog(state_entries([(o.key, o.value) for o in b1.outputs if o.topic == STATE_TOPIC],
                                                 GROUP))
    assert rebuilt.to_changelog() == a.to_changelog()
    later = _crossing(dec, T0 + 7_200_000, T0 + 60)[1:]  # theirs moved an hour later: RESOLVED
    ea, _ = build_batch(a, later, dec, T0 + 60, Params(), encoder, GROUP)
    eb, _ = build_batch(rebuilt, later, dec, T0 + 60, Params(), encoder, GROUP)
    assert [o.value for o in ea.outputs] == [o.value for o in eb.outputs]
    assert [e.status for e in ea.emissions] == [CLEARED]


def test_an_aborted_batch_rolls_back_to_the_committed_entries(encoder):
    dec = FakeDecoder()
    state, committed = State(), {}
    b1, _ = build_batch(state, _crossing(dec), dec, T0, Params(), encoder, GROUP)
    apply_changelog(committed, b1.changelog)
    before = state.to_changelog()
    build_batch(state, _crossing(dec, T0 + 7_200_000, T0 + 60)[1:], dec, T0 + 60, Params(), encoder, GROUP)
    assert state.to_changelog() != before  # stepped, then the transaction aborted:
    assert State.from_changelog(committed).to_changelog() == before == committed


# ---------------------------------------------------------------------------------------------- exactly once


def _stream(dec: FakeDecoder, n: int = 130):
    """Batches of head-on and crossing track reports every 2 s (three encounters in turn), with a clock."""
    out = []
    for k in range(n):
        t = T0 + 2000 * k
        recs = []
        for enc in range(3):
            start = 40 * enc
            if not start <= k < start + 35:
                continue
            centre = (C[0] + 0.5 * enc, C[1])
            for tid, topic, source, side_bearing in ((f"T{enc}", OURS_TRACK, "AirTrack", 270.0),
                                                     (f"R{enc}", RUS_TRACK, "RUS/AirTrack", 90.0)):
                p0, heading = towards(centre, side_bearing, 30_000)
                pos = geo.destination(p0, heading, 400 * geo.KT_MS * (t - T0 - start * 2000) / 1000)
                rec = track(tid, pos, heading, 400, 20000, t, callsign=f"CS {tid}")
                recs.append(InRecord(topic, enc, k, tid.encode(), dec.value(source, rec), None, t))
        out.append((t, recs))
    return out


def _run(state, batches, dec, encoder, log, committed, fail_at=None):
    """Like the service: each batch one transaction; ``fail_at``: that batch's transaction never commits (a kill
    -9), nothing after it runs."""
    for i, (t, recs) in enumerate(batches):
        b, _ = build_batch(state, recs, dec, t, Params(track_max_age_s=10), encoder, GROUP)
        if i == fail_at:
            return i
        log.extend(o for o in b.outputs)
        apply_changelog(committed, b.changelog)
    return len(batches)


def _lifecycles(outputs):
    by_id = defaultdict(list)
    for o in outputs:
        if o.topic == ALERT_TOPIC:
            rec = _decode_alert(o.value)
            by_id[str(rec["alert_id"])].append((rec["revision"], rec["status"]))
    return by_id


def test_a_crash_mid_run_and_a_restart_give_each_lifecycle_once(encoder):
    dec = FakeDecoder()
    batches = _stream(dec)
    whole: list = []
    _run(State(Params(track_max_age_s=10)), batches, dec, encoder, whole, {})
    clean = _lifecycles(whole)
    assert len(clean) == 3 and all(v[0][1] == NEW and v[-1][1] == CLEARED for v in clean.values())

    log, committed = [], {}
    crashed = _run(State(Params(track_max_age_s=10)), batches, dec, encoder, log, committed, fail_at=50)
    assert crashed == 50  # the 51st batch's transaction is lost with the process
    # restart: the state from what the state topic holds (committed), consumption from the committed offsets
    state_log = [(o.key, o.value) for o in log if o.topic == STATE_TOPIC]
    restored = State.from_changelog(state_entries(state_log, GROUP), Params(track_max_age_s=10))
    assert restored.to_changelog() == committed
    _run(restored, batches[crashed:], dec, encoder, log, committed)
    after = _lifecycles(log)
    assert len(after) == 3
    for alert_id, revs in after.items():
        statuses = [s for _r, s in revs]
        assert statuses.count(NEW) == 1 and statuses[0] == NEW and statuses.count(CLEARED) <= 1, revs
        assert [r for r, _s in revs] == sorted({r for r, _s in revs}), revs  # strictly increasing, no repeat
    assert sorted(len(v) for v in after.values()) == sorted(len(v) for v in clean.values())


# ---------------------------------------------------------------------------------------------- metrics, CLI


class _FakeService:
    def __init__(self):
        import time

        self.loop_at = self.last_progress = time.monotonic()
        self.last_commit = None
        self.assigned = {(OURS_TRACK, 0)}
        self.decoder = FakeDecoder()
        self.registry_paused, self.paused, self.fault = {}, {}, None
        self.state = State()
        self.restored_entries = 0
        self.listeners, self.error_listeners = [], []


def test_metrics_and_health(encoder):
    reg = CollectorRegistry()
    cur = Current()
    on_batch = deconflict_counters(reg, clock=lambda: (T0 + 250) / 1000)
    svc = _FakeService()
    cur.attach(svc)
    cur.state = "running"
    dec = FakeDecoder()
    b, _ = build_batch(svc.state, _crossing(dec), dec, T0, Params(), encoder, GROUP)
    on_batch(b)
    reg.register(_Collector(cur))
    text = generate_latest(reg).decode()
    assert 'liaison_deconflict_alerts_total{kind="PLAN_PLAN",partner="RUS",status="NEW"} 1.0' in text
    assert 'liaison_deconflict_records_total{source="RUS/AirMissionPlan"} 1.0' in text
    assert 'liaison_deconflict_objects{side="RUS",type="plan"} 1.0' in text
    assert "liaison_deconflict_open_alerts 1.0" in text
    assert 'liaison_deconflict_batch_latency_seconds_bucket{le="0.5"} 1.0' in text  # 300 ms from the oldest record
    assert "liaison_deconflict_ready 1.0" in text
    healthy, ready, body = status(cur)
    assert healthy and ready and body["assigned_partitions"] == 1
    svc.assigned = set()
    assert status(cur)[1] is False
    on_batch(Batch())  # an empty batch (a tick) counts nothing and observes no latency


def test_cli_refuses_bad_minima_before_any_connection():
    from typer.testing import CliRunner

    from liaison.cli import app

    r = CliRunner().invoke(app, ["deconflict", "--lateral-nm", "0"])
    assert r.exit_code == 2 and "deconfliction not started" in r.output


def test_alert_outputs_are_keyed_by_alert_id_and_unstamped(encoder):
    s = State()
    ours = plan("A1", *straight(C, 90.0, 100_000, V, T_CROSS))
    theirs = plan("R1", *straight(C, 0.0, 100_000, V, T_CROSS), (22000, 27000), ours=False)
    em = s.step([("AirMissionPlan", ours), ("RUS/AirMissionPlan", theirs)], T0).emissions
    (o,) = alert_outputs(em, T0, Params(), encoder)
    assert (o.topic, o.key, o.headers, o.timestamp) == (ALERT_TOPIC, em[0].alert.alert_id.encode(), None, None)

"""`liaison deconflict` on the real broker and registry (issue 12, acceptance 2 and 3).

Our sorties are written on our internal air topics (framed with the internal subjects' ids, as the publisher does),
with a sentinel SENTINEL-<field>-<hex> planted in mission_purpose, target_area, weapons_loadout and base; the
partners' sorties are partner-origin records (framed with the origin subjects' ids, as the ingress guard writes
them), written as admin. The service runs as its own principal (deconflict) on a group of its own; then the
forwarder (fresh group) releases the alerts.

* Crossings (acceptance 2): a RUS sortie crossing ours and a USA sortie crossing another of ours give NEW PLAN_PLAN
  alerts on liaison.internal.deconfliction.alert; RUS's sortie moved an hour later (a second run of the service:
  its state restored from the state topic) clears its alert (CLEARED, RESOLVED). Our air component's feed holds
  every one of them; RUS's feed only RUS's, USA's only USA's; a raw scan (value, key, headers) of RUS's alert
  records finds no sentinel.
* Kill -9 (acceptance 3): many crossing pairs, each raised then moved away, processed in small batches; the service
  is killed -9 once some batches are committed and not all (the group's committed offsets say so), then restarted:
  the alert stream read with read_committed holds each conflict's lifecycle once (per alert id one NEW first, at
  most one CLEARED and last, revisions strictly increasing, no repeat), and every alert raised is cleared.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import fastavro
import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

from consumers.deconfliction import geometry as geo
from consumers.ingress.registry import plain_uuids
from core import kafka, serde
from core.readback import committed_offsets, end_offsets, read_between, seed_group
from core.topics import DECONFLICTION_STATE_TOPIC, origin_topic, recipient_topic, topic_for
from schemas.examples import example
from schemas.models import to_avro
from tests.integration.forwarder_helpers import LIAISON, ForwarderLog, fresh_group, run_forwarder

pytestmark = pytest.mark.integration

ALERT_TOPIC = topic_for("DeconflictionAlert")
AIR_FEED = recipient_topic("air", "DeconflictionAlert")
PARTNER_FEED = {p: recipient_topic(p, "DeconflictionAlert") for p in ("RUS", "USA")}
INPUTS = [topic_for("AirMissionPlan"), topic_for("AirTrack")] + [
    origin_topic(p, t) for p in ("RUS", "USA") for t in ("AirMissionPlan", "AirTrack")]
MISSION_FIELDS = ("mission_purpose", "target_area", "weapons_loadout", "base")
V = 230.0  # m/s


# ---------------------------------------------------------------------------------------------- records


def _dt(ms: float) -> datetime:
    return datetime.fromtimestamp(round(ms) / 1000, tz=timezone.utc)


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


class Writer:
    """Framed Avro to our internal air topics and to the partners' origin topics, as admin."""

    def __init__(self):
        client = serde.registry_client()
        self.schemas: dict[str, tuple[int, object, dict]] = {}
        for topic in INPUTS:
            v = client.get_latest_version(serde.value_subject(topic))
            doc = json.loads(v.schema.schema_str)
            self.schemas[topic] = (v.schema_id, fastavro.parse_schema(plain_uuids(doc)), doc)
        self.producer = kafka.producer({"linger.ms": 10})
        self.failed: list = []

    def value(self, topic: str, rec: dict) -> bytes:
        sid, parsed, doc = self.schemas[topic]
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, _project(rec, doc))
        return serde.frame(sid, buf.getvalue())

    def send(self, topic: str, key: str, rec: dict) -> None:
        self.producer.produce(topic, self.value(topic, rec), key.encode(),
                              on_delivery=lambda err, msg: err and self.failed.append(err))
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(60) == 0 and not self.failed, self.failed


def _project(record, schema):
    """``record`` with only the fields of ``schema`` (a partner-origin schema has no base, mission or loadout)."""
    from consumers.ingress.validation import _record_of

    out = {}
    for f in schema["fields"]:
        v = record.get(f["name"])
        sub = _record_of(f["type"])
        if sub is not None and isinstance(v, dict):
            v = _project(v, sub)
        elif sub is not None and isinstance(v, list):
            v = [_project(x, sub) for x in v]
        out[f["name"]] = v
    return out


def plan(side: str | None, sortie_id: str, callsign: str, centre, bearing: float, t_cross_ms: float,
         band=(20000, 25000), created_ms: float | None = None, sentinels: dict | None = None,
         half: float = 100_000) -> dict:
    """A plan flying straight through ``centre`` on ``bearing``, ``half`` metres either side, passing it at
    ``t_cross_ms``."""
    a = geo.destination(centre, (bearing + 180) % 360, half)
    b = geo.destination(centre, bearing, half)
    etas = [t_cross_ms - half / V * 1000, t_cross_ms + half / V * 1000]
    rec = to_avro(example("AirMissionPlan"))
    rel = ["FRA", "RUS", "USA"] if side is None else ["FRA", side]
    rec["label"] = {"classification": "CONFIDENTIAL", "releasable_to": rel, "caveats": [],
                    "originator": "air.test" if side is None else f"{side.lower()}.vks",
                    "created_at": _dt(created_ms or _now_ms()), "message_id": str(uuid.uuid4())}
    rec.update(sortie_id=sortie_id, callsign=callsign, status="PLANNED",
               time_windows=[{"start": _dt(etas[0]), "end": _dt(etas[1])}],
               route=[{"name": f"WP{i}", "position": {"lat": p[0], "lon": p[1]},
                       "altitude_band": {"floor_ft": band[0], "ceiling_ft": band[1]}, "eta": _dt(e)}
                      for i, (p, e) in enumerate(zip((a, b), etas))])
    if sentinels:
        rec.update(sentinels)
    return rec


def sentinels(tag: str) -> dict:
    h = uuid.uuid4().hex[:8]
    return {"mission_purpose": f"SENTINEL-mission_purpose-{tag}{h}", "target_area": f"SENTINEL-target_area-{tag}{h}",
            "weapons_loadout": [f"SENTINEL-weapons_loadout-{tag}{h}"], "base": f"SENTINEL-base-{tag}{h}"}


# ---------------------------------------------------------------------------------------------- the service


def start_service(group: str, *extra: str) -> tuple[subprocess.Popen, ForwarderLog]:
    instance = group.removeprefix("liaison-deconflict-")
    p = subprocess.Popen([LIAISON, "deconflict", "--group", group, "--instance", instance, *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    return p, ForwarderLog(p)


def wait_done(p: subprocess.Popen, log: ForwarderLog, timeout: float = 240) -> str:
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    err = log.finish()
    assert p.returncode == 0, err[-3000:]
    return p.stdout.read() + err


def run_service(group: str, *extra: str) -> str:
    p, log = start_service(group, "--max-idle", "4", *extra)
    return wait_done(p, log)


def decode(msgs) -> list[tuple[object, dict]]:
    deser = serde.avro_deserializer()
    return [(m, deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))) for m in msgs]


def _raw(m) -> bytes:
    return b"".join([m.value() or b"", m.key() or b""] + [k.encode() + (v or b"") for k, v in m.headers() or []])


@pytest.fixture(scope="module")
def writer(bus):
    return Writer()


def _group() -> str:
    return f"liaison-deconflict-t{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------- acceptance 2


def test_crossings_alert_our_air_component_and_each_partner_its_own_without_our_mission(writer):
    group, tag = _group(), uuid.uuid4().hex[:4].upper()
    fwd_group, _ = fresh_group()
    watched = [ALERT_TOPIC, AIR_FEED, *PARTNER_FEED.values(), DECONFLICTION_STATE_TOPIC]
    before = end_offsets(watched)
    seed_group(group, end_offsets(INPUTS))  # the group starts here, not at earlier tests' records
    now = _now_ms()
    t_x = now + 3_600_000
    c_rus, c_usa = (35.0, 38.0), (34.0, 40.0)
    planted = {"A": sentinels("A"), "B": sentinels("B")}
    ours = {"RUS": plan(None, f"FRA-{tag}-A", f"RAFALE {tag}A", c_rus, 90.0, t_x, sentinels=planted["A"]),
            "USA": plan(None, f"FRA-{tag}-B", f"RAFALE {tag}B", c_usa, 90.0, t_x, sentinels=planted["B"])}
    theirs = {"RUS": plan("RUS", f"RUS-{tag}", f"SOKOL {tag}", c_rus, 0.0, t_x, (22000, 27000)),
              "USA": plan("USA", f"USA-{tag}", f"VIPER {tag}", c_usa, 0.0, t_x, (22000, 27000))}
    for p, rec in ours.items():
        writer.send(topic_for("AirMissionPlan"), rec["sortie_id"], rec)
        writer.send(origin_topic(p, "AirMissionPlan"), theirs[p]["sortie_id"], theirs[p])
    writer.flush()
    out1 = run_service(group)
    # RUS's sortie moved an hour later: out of the way (a second run: the state comes back from the state topic)
    moved = plan("RUS", f"RUS-{tag}", f"SOKOL {tag}", c_rus, 0.0, t_x + 3_600_000, (22000, 27000),
                 created_ms=now + 1000)
    writer.send(origin_topic("RUS", "AirMissionPlan"), moved["sortie_id"], moved)
    writer.flush()
    out2 = run_service(group)
    assert '"state restored"' in out2 and '"entries": 0' not in out2.split('"state restored"')[1][:200]
    run_forwarder(fwd_group, fwd_group)
    msgs = read_between(before, end_offsets(watched))

    def mine(topic):
        return [(m, r) for m, r in decode([m for m in msgs if m.topic() == topic])
                if r["ours"]["callsign"].endswith((f"{tag}A", f"{tag}B"))]

    internal = mine(ALERT_TOPIC)
    lifecycle = {p: [(r["status"], r["cleared_reason"], r["kind"]) for _m, r in internal if r["partner"] == p]
                 for p in ("RUS", "USA")}
    assert lifecycle["RUS"] == [("NEW", None, "PLAN_PLAN"), ("CLEARED", "RESOLVED", "PLAN_PLAN")], (out1, out2)
    assert lifecycle["USA"] == [("NEW", None, "PLAN_PLAN")]
    for m, r in internal:
        assert m.key() == str(r["alert_id"]).encode()
        assert {r["ours"]["callsign"], r["theirs"]["callsign"]} in (
            {f"RAFALE {tag}A", f"SOKOL {tag}"}, {f"RAFALE {tag}B", f"VIPER {tag}"})
    ids = {p: {str(r["alert_id"]) for _m, r in internal if r["partner"] == p} for p in ("RUS", "USA")}
    # our air component: every alert, whole
    air = mine(AIR_FEED)
    assert sorted((str(r["alert_id"]), r["revision"]) for _m, r in air) == \
        sorted((str(r["alert_id"]), r["revision"]) for _m, r in internal)
    assert {r["ours"]["sortie_id"] for _m, r in air} == {f"FRA-{tag}-A", f"FRA-{tag}-B"}
    # each partner: its own alerts only, our sortie id pseudonymised
    for p, other in (("RUS", "USA"), ("USA", "RUS")):
        feed = decode([m for m in msgs if m.topic() == PARTNER_FEED[p]])
        got = {str(r["alert_id"]) for _m, r in feed}
        assert ids[p] <= got and not (ids[other] & got), (p, got)
        assert all(r["partner"] == p for _m, r in feed)
    rus_feed = [m for m in msgs if m.topic() == PARTNER_FEED["RUS"]]
    rus_mine = [m for m, r in decode(rus_feed) if str(r["alert_id"]) in ids["RUS"]]
    assert [r["status"] for _m, r in decode(rus_mine)] == ["NEW", "CLEARED"]
    assert all(r["ours"]["sortie_id"] != f"FRA-{tag}-A" for _m, r in decode(rus_mine))
    # a raw scan of everything RUS received of alerts: no sentinel of our mission, target, loadout or base, nor
    # our sortie id
    blob = b"".join(_raw(m) for m in rus_feed)
    for planted_fields in planted.values():
        for f in MISSION_FIELDS:
            v = planted_fields[f]
            for s in v if isinstance(v, list) else [v]:
                assert s.encode() not in blob, f
    assert f"FRA-{tag}-A".encode() not in blob
    # nor anything of our mission in the service's own state entries (deconfliction never keeps them)
    state = [m for m in msgs if m.topic() == DECONFLICTION_STATE_TOPIC and m.key().startswith(group.encode())]
    assert state and any(f"FRA-{tag}-A".encode() in m.key() for m in state)
    blob = b"".join(_raw(m) for m in state)
    for planted_fields in planted.values():
        for f in MISSION_FIELDS:
            v = planted_fields[f]
            assert (v[0] if isinstance(v, list) else v).encode() not in blob, f


# ---------------------------------------------------------------------------------------------- acceptance 3


def test_kill_9_mid_run_and_restart_give_each_lifecycle_once(writer):
    group, tag = _group(), uuid.uuid4().hex[:4].upper()
    n = 40
    before = end_offsets([ALERT_TOPIC] + INPUTS)
    seed_group(group, {tp: o for tp, o in before.items() if tp[0] in INPUTS})
    now = _now_ms()
    t_x = now + 3_600_000
    ours, theirs = [], []
    for i in range(n):
        centre = (33.0 + 0.3 * (i % 10), 36.5 + 0.5 * (i // 10))
        # 30 km routes, centres 33 and 46 km apart: pair i crosses, no other pair comes within 5 NM
        ours.append(plan(None, f"FRA-{tag}-{i}", f"RAFALE {tag}{i}", centre, 90.0, t_x, half=15_000))
        theirs.append([plan("RUS", f"RUS-{tag}-{i}", f"SOKOL {tag}{i}", centre, 0.0, t_x + shift, (22000, 27000),
                            created_ms=now + k, half=15_000)
                       for k, shift in enumerate((0, 150_000, 3_600_000))])  # raised, UPDATED, moved away
    # phase 1: ours and their first versions (every pair crossing): NEW alerts, committed
    for i in range(n):
        writer.send(topic_for("AirMissionPlan"), ours[i]["sortie_id"], ours[i])
    writer.flush()
    for i in range(n):
        writer.send(origin_topic("RUS", "AirMissionPlan"), theirs[i][0]["sortie_id"], theirs[i][0])
    writer.flush()
    run_service(group, "--batch-size", "20")
    phase1 = end_offsets([ALERT_TOPIC] + INPUTS)
    # phase 2: their later versions (moved 2.5 min: UPDATED; moved an hour: CLEARED), in batches of 4; kill -9
    # once some alerts of this phase are committed
    for k in (1, 2):
        for i in range(n):
            writer.send(origin_topic("RUS", "AirMissionPlan"), theirs[i][k]["sortie_id"], theirs[i][k])
        writer.flush()
    total = 4 * n
    p, log = start_service(group, "--batch-size", "4")
    log.wait_for("alert", 12, timeout=180)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    at_kill = end_offsets([ALERT_TOPIC])
    # landed mid-run: some batches committed, not all
    done = committed_offsets(group, INPUTS)
    consumed = sum(max(0, done.get(tp, before.get(tp, 0)) - before.get(tp, 0)) for tp in before
                   if tp[0] in INPUTS)
    assert 0 < consumed < total, consumed
    wait_done(*start_service(group, "--max-idle", "4", "--batch-size", "4"))
    assert sum(committed_offsets(group, INPUTS).get(tp, 0) - before.get(tp, 0) for tp in before
               if tp[0] in INPUTS) >= total
    msgs = read_between(before, end_offsets([ALERT_TOPIC] + INPUTS))
    alerts = [r for _m, r in decode([m for m in msgs if m.topic() == ALERT_TOPIC])
              if r["ours"]["callsign"].startswith(f"RAFALE {tag}")]
    by_id: dict[str, list] = defaultdict(list)
    by_pair: dict[tuple, set] = defaultdict(set)
    for r in alerts:
        by_id[str(r["alert_id"])].append((r["revision"], r["status"]))
        by_pair[(r["ours"]["callsign"], r["theirs"]["callsign"])].add(str(r["alert_id"]))
    assert len(by_id) == n, len(by_id)  # phase 1 raised one alert per pair
    for alert_id, revs in by_id.items():
        statuses = [s for _r, s in revs]
        assert statuses[0] == "NEW" and statuses.count("NEW") == 1, revs
        assert statuses.count("CLEARED") == 1 and statuses[-1] == "CLEARED", revs  # every one moved away
        revisions = [r for r, _s in revs]
        assert revisions == sorted(set(revisions)), revs  # strictly increasing: no repeat
    assert all(len(ids) == 1 for ids in by_pair.values()), by_pair  # one lifecycle per conflict
    # the kill cut phase 2: alerts emitted before it and after the restart (from the restored state)
    early = {str(r["alert_id"]) for _m, r in decode(read_between(phase1, at_kill))
             if r["ours"]["callsign"].startswith(f"RAFALE {tag}")}
    late = {str(r["alert_id"]) for _m, r in decode(read_between(at_kill, end_offsets([ALERT_TOPIC])))
            if r["ours"]["callsign"].startswith(f"RAFALE {tag}")}
    assert early and late, (len(early), len(late))
    print(f"kill -9 after {consumed}/{total} input records committed; {len(by_id)} alerts; {len(early)} of them "
          f"emitted in phase 2 before the kill, {len(late)} after the restart, {len(early & late)} both")

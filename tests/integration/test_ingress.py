"""The ingress guard on the real broker and registry: RUS publishes (as its own principal, partner-rus) good records
and bad ones of every class the guard checks; `liaison ingress --partner RUS` runs as the `ingress` principal.

Counted from the topics between snapshots of their end offsets (read_committed): every bad record in quarantine with
its check and none on a partner-origin topic; every good one on its partner-origin topic, relabelled; inbound =
accepted + quarantined; a message id accepted before a kill -9 of the guard (landed mid-run: part of the inbound
records committed, part not) is refused as a replay after the restart, and no record is decided twice."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import fastavro
import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

from consumers.ingress.checks import MAX_VALUE_BYTES
from consumers.ingress.registry import plain_uuids
from consumers.ingress.validation import _record_of
from core import REPO_ROOT, kafka, serde
from core.readback import committed_offsets, end_offsets, read_between
from core.topics import INGRESS_AUDIT_TOPIC, SEEN_TOPIC, inbound_topic, origin_topic, quarantine_topic, topic_for
from release import load_policies
from release.exchange import exchanged_types, inbound_schema
from schemas.examples import example
from schemas.models import to_avro
from tests.integration.forwarder_helpers import LIAISON, ForwarderLog

POLICIES = REPO_ROOT / "deploy" / "policies"
GROUP = "liaison-ingress-rus"


@pytest.fixture(scope="module")
def rus(bus):
    policy = load_policies(POLICIES)["RUS"]
    client = serde.registry_client()  # admin (the partner may read its inbound subjects too: the gateway)
    types = exchanged_types(policy)
    ids = {t: client.get_latest_version(serde.value_subject(inbound_topic("RUS", t))).schema_id for t in types}
    internal_id = client.get_latest_version(serde.value_subject(topic_for("AirTrack"))).schema_id
    return {"policy": policy, "types": types, "ids": ids, "internal_id": internal_id}


def topics_of(types) -> dict[str, list[str]]:
    return {"inbound": [inbound_topic("RUS", t) for t in types], "origin": [origin_topic("RUS", t) for t in types],
            "quarantine": [quarantine_topic("RUS")], "audit": [INGRESS_AUDIT_TOPIC], "seen": [SEEN_TOPIC]}


def everything(types) -> list[str]:
    return [t for ts in topics_of(types).values() for t in ts]


# ---------------------------------------------------------------------------------------------- records


def _project(record, schema):
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


def _shift(v, delta):
    if isinstance(v, datetime):
        return v + delta
    if isinstance(v, dict):
        return {k: _shift(x, delta) for k, x in v.items()}
    if isinstance(v, list):
        return [_shift(x, delta) for x in v]
    return v


def record(rus, type_name: str, **label) -> dict:
    """A valid RUS record of ``type_name``: the example projected on the inbound schema, times moved to now."""
    schema = inbound_schema(rus["policy"], type_name)
    rec = _project(to_avro(example(type_name)), schema)
    rec = _shift(rec, datetime.now(timezone.utc) - rec["label"]["created_at"] - timedelta(seconds=5))
    rec["label"].update({"originator": "rus.vks", "releasable_to": ["FRA", "RUS"], "caveats": [],
                         "classification": "RESTRICTED", "message_id": str(uuid.uuid4())})
    rec["label"].update(label)
    return rec


def value(rus, type_name: str, rec: dict, schema_id: int | None = None) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(plain_uuids(inbound_schema(rus["policy"], type_name))), rec)
    return serde.frame(schema_id or rus["ids"][type_name], buf.getvalue())


def publish_as_partner(items: list[tuple[str, bytes, bytes | None]]) -> None:
    """(type, key, value) to RUS's inbound topics, as the partner-rus principal (its ACLs: WRITE its own only)."""
    p = kafka.producer({"linger.ms": 20, "message.max.bytes": 200_000}, principal="partner-rus")
    failed = []
    for type_name, key, val in items:
        p.produce(inbound_topic("RUS", type_name), val, key, headers=[("sent-by", b"rus-test")],
                  on_delivery=lambda err, msg: err and failed.append(err))
        p.poll(0)
    assert p.flush(60) == 0 and not failed, failed


def bad_records(rus) -> list[tuple[str, str, bytes]]:
    """(expected check, type, value): one of every class of bad input."""
    t = "AirTrack"
    good = value(rus, t, record(rus, t))
    now = datetime.now(timezone.utc)
    internal_body = io.BytesIO()
    fastavro.schemaless_writer(internal_body, fastavro.parse_schema(plain_uuids(
        json.loads(serde.registry_client().get_schema(rus["internal_id"]).schema_str))), to_avro(example(t)))
    no_label = record(rus, t)
    no_label["label"] = None
    invalid = record(rus, t)
    invalid["altitude_ft"] = 250_000
    return [
        ("size", t, good + b"\0" * (MAX_VALUE_BYTES + 1 - len(good))),
        ("framing", t, b"not avro at all"),
        ("schema", t, serde.frame(rus["internal_id"], internal_body.getvalue())),
        ("schema", t, serde.frame(rus["ids"]["MaritimeTrack"], good[5:])),
        ("avro", t, good[:-4]),
        ("avro", t, good + b"\x00\x01"),
        ("label", t, value(rus, t, no_label)),
        ("label", t, value(rus, t, record(rus, t, classification="TOP_SECRET"))),
        ("label", t, value(rus, t, record(rus, t, releasable_to=["RUS", "USA"]))),
        ("label", t, value(rus, t, record(rus, t, message_id="not-a-uuid"))),
        ("originator", t, value(rus, t, record(rus, t, originator="usa.af"))),
        ("originator", t, value(rus, t, record(rus, t, originator="naval.cvn-group"))),
        ("validation", t, value(rus, t, invalid)),
        ("time", t, value(rus, t, record(rus, t, created_at=now - timedelta(days=9)))),
        ("time", t, value(rus, t, record(rus, t, created_at=now + timedelta(hours=2)))),
    ]


def header(msg, name: str) -> str | None:
    return next((v.decode() for k, v in msg.headers() or [] if k == name), None)


def start_guard(*extra: str) -> tuple[subprocess.Popen, ForwarderLog]:
    p = subprocess.Popen([LIAISON, "ingress", "--partner", "RUS", "--policies", str(POLICIES), *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    return p, ForwarderLog(p)


def wait_done(p: subprocess.Popen, log: ForwarderLog, timeout: float = 180) -> str:
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    out = p.stdout.read()
    err = log.finish()
    assert p.returncode == 0, err[-3000:]
    return out + err


def drain() -> None:
    """Let the partner's guard decide whatever an earlier run left on the inbound topics, so that what a test
    counts between its snapshots comes from its own records only."""
    p, log = start_guard("--max-idle", "2")
    wait_done(p, log)


def audits_of(msgs) -> list[dict]:
    deser = serde.avro_deserializer()
    return [deser(m.value(), SerializationContext(INGRESS_AUDIT_TOPIC, MessageField.VALUE))
            for m in msgs if m.topic() == INGRESS_AUDIT_TOPIC]


def split(msgs) -> dict[str, list]:
    out: dict[str, list] = {"inbound": [], "origin": [], "quarantine": [], "audit": [], "seen": []}
    for m in msgs:
        t = m.topic()
        kind = ("inbound" if t.startswith("liaison.inbound.") else "origin" if t.startswith("liaison.origin.")
                else "quarantine" if t.startswith("liaison.quarantine.") else "audit" if t == INGRESS_AUDIT_TOPIC
                else "seen")
        out[kind].append(m)
    return out


# ---------------------------------------------------------------------------------------------- tests


def test_every_bad_class_quarantined_valid_relabelled_and_counted(rus):
    types = rus["types"]
    drain()
    start = end_offsets(everything(types))
    good = {t: record(rus, t, caveats=["REL EXERCISE"]) for t in types}
    bad = bad_records(rus)
    replayed = record(rus, "AirTrack")  # the same message id twice in one stream: the second is a replay
    items = [(t, f"good-{t}".encode(), value(rus, t, r)) for t, r in good.items()]
    items += [(t, f"bad-{i}-{check}".encode(), v) for i, (check, t, v) in enumerate(bad)]
    items += [("AirTrack", b"replay-1", value(rus, "AirTrack", replayed)),
              ("AirTrack", b"replay-2", value(rus, "AirTrack", replayed))]
    publish_as_partner(items)
    p, log = start_guard("--max-idle", "4")
    text = wait_done(p, log)
    end = end_offsets(everything(types))
    got = split(read_between(start, end))
    inbound, origin, quarantine, audit = got["inbound"], got["origin"], got["quarantine"], audits_of(got["audit"])
    assert len(inbound) == len(items)
    # every bad class in quarantine with its check, the original key, value and headers
    by_key = {q.key(): q for q in quarantine}
    for i, (check, t, v) in enumerate(bad):
        q = by_key[f"bad-{i}-{check}".encode()]
        assert header(q, "liaison.quarantine.check") == check, (i, header(q, "liaison.quarantine.reason"))
        assert q.value() == v and header(q, "sent-by") == "rus-test"
        assert header(q, "liaison.quarantine.source.topic") == inbound_topic("RUS", t)
        assert header(q, "liaison.quarantine.guard") == GROUP
        src = next(m for m in inbound if m.key() == q.key())
        assert (int(header(q, "liaison.quarantine.source.partition")), int(header(q, "liaison.quarantine.source."
                                                                                     "offset"))) == \
            (src.partition(), src.offset())
    assert header(by_key[b"replay-2"], "liaison.quarantine.check") == "replay"
    assert b"replay-1" not in by_key
    # valid records relabelled on their partner-origin topics; nothing bad reached one
    deser = serde.avro_deserializer()
    accepted = {}
    for m in origin:
        rec = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
        accepted[rec["label"]["message_id"]] = (m.topic(), rec)
    want = {r["label"]["message_id"]: t for t, r in good.items()} | {replayed["label"]["message_id"]: "AirTrack"}
    assert {str(k) for k in accepted} == set(want)
    for mid, (topic, rec) in accepted.items():
        t = want[str(mid)]
        assert topic == origin_topic("RUS", t)
        assert rec["label"]["originator"] == "partner.rus"
        assert rec["label"]["caveats"][-1] == "ORIGIN RUS"
        assert rec["label"]["classification"] == "RESTRICTED" and rec["label"]["releasable_to"] == ["FRA", "RUS"]
    # inbound = accepted + quarantined, from the topics and from the audit
    assert len(inbound) == len(origin) + len(quarantine) == len(audit)
    assert len(got["seen"]) == len(origin)
    decisions = Counter((a["decision"], a["check"]) for a in audit)
    assert decisions[("ACCEPT", "accepted")] == len(origin)
    assert Counter(c for (d, c) in decisions.elements() if d == "QUARANTINE") == \
        Counter([c for c, _t, _v in bad] + ["replay"])
    assert {(a["input_topic"], a["input_partition"], a["input_offset"]) for a in audit} == \
        {(m.topic(), m.partition(), m.offset()) for m in inbound}
    assert f"accepted {len(origin)}, quarantined {len(quarantine)}" in text
    events = [json.loads(line) for line in log.lines if line.startswith("{")]
    q_events = [e for e in events if e.get("event") == "record quarantined"]
    assert len(q_events) == len(quarantine)
    assert {"partner", "topic", "partition", "offset", "message_id", "check"} <= set(q_events[0])


def test_replay_refused_across_kill_9_and_restart(rus):
    types = rus["types"]
    drain()
    start = end_offsets(everything(types))
    n = 1500
    records = [record(rus, types[i % len(types)]) for i in range(n)]
    publish_as_partner([(types[i % len(types)], f"k{i}".encode(), value(rus, types[i % len(types)], r))
                        for i, r in enumerate(records)])
    inbound_end = end_offsets(topics_of(types)["inbound"])
    p, log = start_guard("--batch-size", "10")
    log.wait_for("batch committed", n=3)
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert p.returncode == -signal.SIGKILL
    log.finish()
    committed = committed_offsets(GROUP, topics_of(types)["inbound"])
    done = sum(committed[tp] - start.get(tp, 0) for tp in inbound_end)
    assert 0 < done < n, f"the kill did not land mid-run: {done} of {n} committed"
    # an id accepted before the kill (its origin record and seen id are committed) sent again after it
    before = split(read_between(start, end_offsets(everything(types))))
    first = serde.avro_deserializer()(before["origin"][0].value(),
                                      SerializationContext(before["origin"][0].topic(), MessageField.VALUE))
    mid = str(first["label"]["message_id"])
    t = next(t for t in types if before["origin"][0].topic() == origin_topic("RUS", t))
    again = record(rus, t, message_id=mid)
    publish_as_partner([(t, b"replay-after-kill", value(rus, t, again))])
    p2, log2 = start_guard("--max-idle", "4")
    wait_done(p2, log2)
    restored = [json.loads(line) for line in log2.lines if '"seen ids restored"' in line]
    assert restored and restored[0]["seen_ids"] >= 1
    got = split(read_between(start, end_offsets(everything(types))))
    by_key = {q.key(): q for q in got["quarantine"]}
    assert header(by_key[b"replay-after-kill"], "liaison.quarantine.check") == "replay"
    audit = audits_of(got["audit"])
    coords = Counter((a["input_topic"], a["input_partition"], a["input_offset"]) for a in audit)
    assert max(coords.values()) == 1, "a record decided twice across the kill"
    assert set(coords) == {(m.topic(), m.partition(), m.offset()) for m in got["inbound"]}
    assert len(got["inbound"]) == n + 1 == len(got["origin"]) + len(got["quarantine"])
    assert len(got["origin"]) == n and len({m.key() for m in got["origin"]}) == n


def test_a_second_guard_of_the_partner_fences_the_first(rus):
    """Same partner, same transactional.id and static member id: the second instance's init_transactions fences
    the first, which commits nothing more and exits (3 fenced, or 1 when its consumer is told first); the
    record is decided once."""
    types = rus["types"]
    drain()
    start = end_offsets(everything(types))
    p1, log1 = start_guard()
    log1.wait_for("ingress guard started")
    p2, log2 = start_guard("--max-idle", "3")
    log2.wait_for("ingress guard started")
    publish_as_partner([("AirTrack", b"fence", value(rus, "AirTrack", record(rus, "AirTrack")))])
    wait_done(p2, log2)
    try:
        p1.wait(60)
    finally:
        if p1.poll() is None:
            p1.kill()
    err = log1.finish()
    assert p1.returncode in (1, 3), err[-2000:]
    assert "fenced" in err
    got = split(read_between(start, end_offsets(everything(types))))
    assert len(got["inbound"]) == 1 == len(got["origin"]) == len(audits_of(got["audit"]))

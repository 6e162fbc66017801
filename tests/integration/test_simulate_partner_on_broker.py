"""The simulated partner on the real, secured broker and registry gateway: it publishes as partner-rus (the ACLs
allow its inbound topics and nothing else), its records land on liaison.inbound.rus.* (read back as admin,
read_committed, counted per bad class), the broker refuses the record above max.message.bytes, and the gateway
lets a partner read its inbound subjects and a component its feed subjects, nothing else."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections import Counter

import fastavro
import pytest
from confluent_kafka import KafkaError
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from core import REPO_ROOT, kafka, serde
from core.readback import end_offsets, read_between
from core.topics import (INGRESS_AUDIT_TOPIC, inbound_topic, origin_topic, partner_topic, quarantine_topic,
                         recipient_topic, topic_for)
from producers.simulate.partner import (BAD_CLASS_CHECK, BAD_CLASSES, BAD_HEADER, GUARD_MAX_RECORD_BYTES,
                                        VARIANT_HEADER, Ours)
from producers.simulate.partner_run import inbound_formats, run_partner
from schemas.agreement import is_exchanged

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
#: What a partner sends: every type but its deconfliction alerts (each side computes its own).
EXCHANGED = tuple(t for t in schemas.MESSAGE_TYPES if is_exchanged(t))
RUS_INBOUND = [inbound_topic("RUS", t) for t in EXCHANGED]
RUS_ORIGIN = [origin_topic("RUS", t) for t in EXCHANGED]


@pytest.fixture(scope="module")
def secured(bus):
    if not bus.security():
        pytest.fail("the simulated partner's tests need the secured servers (SASL_SSL + ACLs)")
    return bus


def _headers(msg) -> dict[str, str]:
    return {k: v.decode() for k, v in (msg.headers() or [])}


def test_the_simulated_partner_publishes_as_partner_rus_on_its_inbound_topics(secured):
    admin_registry = serde.registry_client()
    ids = {t: admin_registry.get_latest_version(serde.value_subject(inbound_topic("RUS", t))).schema_id
           for t in EXCHANGED}
    before = end_offsets(RUS_INBOUND)
    result = run_partner("RUS", rate=400, count=900, seed=5, bad_share=0.3, ours=Ours(), paced=False)
    assert result.principal == "partner-rus"
    assert not result.errors, result.errors
    # the broker refuses exactly the records above the topics' 128 KiB, and nothing else
    assert set(result.refused) == {"oversized_broker"} and result.refused["oversized_broker"] >= 2
    assert "oversized_broker" not in result.bad
    sent = sum(result.good.values()) + sum(result.bad.values())
    assert sent + sum(result.refused.values()) == result.produced == 900
    assert set(result.bad) == set(BAD_CLASSES) - {"oversized_broker"}
    assert len(result.crossings) > 0

    records = read_between(before, end_offsets(RUS_INBOUND))
    assert len(records) == sent
    landed_bad = Counter(_headers(m).get(BAD_HEADER) for m in records if BAD_HEADER in _headers(m))
    assert landed_bad == result.bad
    landed_good = Counter(topic for m in records if BAD_HEADER not in _headers(m) for topic in [m.topic()])
    assert landed_good == Counter({inbound_topic("RUS", t): n for t, n in result.good.items()})
    parsed = {}
    for m in records:
        h = _headers(m)
        if BAD_HEADER in h:
            assert h[VARIANT_HEADER]
            if h[BAD_HEADER] == "oversized":
                assert len(m.value()) > GUARD_MAX_RECORD_BYTES
            continue
        # a good record: framed with the id registered under its inbound subject, decodes with that schema
        sid, body = serde.unframe(m.value())
        type_name = next(t for t in EXCHANGED if inbound_topic("RUS", t) == m.topic())
        assert sid == ids[type_name]
        schema = parsed.setdefault(sid, fastavro.parse_schema(
            json.loads(admin_registry.get_schema(sid).schema_str)))
        record = fastavro.schemaless_reader(io.BytesIO(bytes(body)), schema)
        assert record["label"]["originator"].startswith("rus.") and "FRA" in record["label"]["releasable_to"]


def test_the_cli_prints_sent_good_bad_per_class_and_broker_refusals(secured):
    r = subprocess.run([LIAISON, "simulate", "partner", "--partner", "RUS", "--count", "200", "--rate", "100",
                        "--bad-share", "0.4", "--seed", "9", "--unpaced"], capture_output=True, text=True,
                       timeout=180, env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "as principal partner-rus" in out
    for cls in BAD_CLASSES:
        assert cls in out, (cls, out)
    assert "refused by the broker: " in out and "MSG_SIZE_TOO_LARGE" in out


def test_partner_rus_is_refused_writing_usa_inbound(secured):
    p = kafka.producer({"enable.idempotence": False, "retries": 0, "message.timeout.ms": 15000},
                       principal="partner-rus")
    errors = []
    p.produce(inbound_topic("USA", "AirTrack"), b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(30)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors


def test_the_gateway_serves_a_partner_its_inbound_subjects_and_a_component_its_feed(secured):
    rus = serde.registry_client(principal="partner-rus")
    formats, feed_ids, missing = inbound_formats("RUS", rus)
    assert set(formats) == set(EXCHANGED) and not missing
    assert set(feed_ids) == set(EXCHANGED)
    with pytest.raises(SchemaRegistryError) as e:
        rus.get_latest_version(serde.value_subject(inbound_topic("USA", "AirTrack")))
    assert e.value.http_status_code == 403
    with pytest.raises(SchemaRegistryError) as e:
        rus.get_latest_version(serde.value_subject(partner_topic("USA", topic_for("AirTrack"))))
    assert e.value.http_status_code == 403

    naval = serde.registry_client(principal="component-naval")
    own = serde.value_subject(recipient_topic("naval", "AirTrack"))
    latest = naval.get_latest_version(own)
    assert naval.get_schema(latest.schema_id).schema_str
    for other in (serde.value_subject(topic_for("AirTrack")), serde.value_subject(recipient_topic("air",
                                                                                                  "MaritimeTrack")),
                  serde.value_subject(inbound_topic("RUS", "AirTrack"))):
        with pytest.raises(SchemaRegistryError) as e:
            naval.get_latest_version(other)
        assert e.value.http_status_code == 403, other


def _guard_until_idle() -> str:
    """`liaison ingress --partner RUS` until it has had no input for 3 s (it decides everything on the topics)."""
    r = subprocess.run([LIAISON, "ingress", "--partner", "RUS", "--max-idle", "3"], capture_output=True, text=True,
                       timeout=300, env=os.environ.copy())
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout + r.stderr


def test_the_ingress_guard_quarantines_every_bad_class_with_its_check_and_accepts_the_good(secured):
    """End to end with the real guard: every class ends in liaison.quarantine.rus with the check it names
    (BAD_CLASS_CHECK), the original sim.bad header kept; nothing bad reaches a partner-origin topic; every good
    record does. A fresh seed each run: the guard remembers the message ids of earlier runs."""
    _guard_until_idle()  # decide what earlier tests left on the inbound topics
    watched = RUS_INBOUND + RUS_ORIGIN + [quarantine_topic("RUS"), INGRESS_AUDIT_TOPIC]
    before = end_offsets(watched)
    seed = int.from_bytes(os.urandom(4), "big")
    result = run_partner("RUS", rate=200, count=500, seed=seed, bad_share=0.4, paced=False)
    assert not result.errors and set(result.bad) == set(BAD_CLASSES) - {"oversized_broker"}
    _guard_until_idle()
    msgs = read_between(before, end_offsets(watched))
    quarantined = [m for m in msgs if m.topic() == quarantine_topic("RUS")]
    origin = [m for m in msgs if m.topic() in RUS_ORIGIN]
    checks: dict[str, Counter] = {}
    for m in quarantined:
        h = _headers(m)
        assert BAD_HEADER in h, ("a good record was quarantined", h)
        checks.setdefault(h[BAD_HEADER], Counter())[h["liaison.quarantine.check"]] += 1
    assert {cls: dict(c) for cls, c in checks.items()} == {
        cls: {BAD_CLASS_CHECK[cls]: n} for cls, n in result.bad.items()}
    assert not any(BAD_HEADER in _headers(m) for m in origin)
    assert len(origin) == sum(result.good.values())
    assert len(quarantined) == sum(result.bad.values())

"""What a partner gives us, end to end on the real broker and registry: RUS publishes as partner-rus on its inbound
topics, the ingress guard accepts and relabels, the forwarder decides the partner-origin records for every
recipient with the same engine and audit as ours.

* Components (acceptance 4): the naval feed holds the air picture in its area (our tracks and RUS's) and nothing
  else; the intelligence cell gets fighter reports (ours and RUS's), RUS's strike results and group locations;
  read back as each component's own principal.
* Third-party rule (acceptance 3): with a sentinel planted in every RUS record, a raw scan (values, keys, headers)
  of every USA topic finds none; a policy set in which RUS's policy lets its strike results go on to USA and USA's
  policy has a rule for them lets exactly those through (and only when the record's REL TO names USA).
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter

import pytest
from confluent_kafka.admin import NewTopic
from confluent_kafka.serialization import MessageField, SerializationContext

from core import kafka, serde
from core.readback import end_offsets, read_between
from core.topics import AUDIT_TOPIC, origin_source, recipient_topic, source_of_recipient_topic
from deploy.topics import wait_for_leaders
from producers.publisher import Publisher
from schemas.examples import example
from schemas.models import Position
from tests.integration.forwarder_helpers import (COMPONENT_TOPICS, PARTNER_TOPICS, POLICIES, audits, fresh_group,
                                                 run_forwarder)
from tests.integration.test_ingress import drain, publish_as_partner, record, rus, start_guard, value, wait_done  # noqa: F401

pytestmark = pytest.mark.integration

NAVAL_AREA = (32.0, 36.5, 31.0, 36.5)  # deploy/policies/naval.yaml
THIRD_PARTY_TOPIC = recipient_topic("USA", origin_source("RUS", "StrikeReport"))


def _sentinel() -> str:
    return f"SENTINEL-rus-{uuid.uuid4().hex[:8]}"


def rus_records(rus, per_type: int = 3, rel_to_usa: bool = True) -> dict[str, tuple[str, bytes, str]]:
    """message id -> (type, framed value, sentinel) for ``per_type`` records of every type RUS sends: each with a
    sentinel in a free string field, REL TO naming USA when ``rel_to_usa`` (RUS's consent, on the record)."""
    fields = {"AirMissionPlan": "callsign", "AirTrack": "callsign", "MaritimeTrack": "ship_id",
              "StrikeReport": "strike_id", "GroupLocationReport": "report_id", "ForeignFighterReport": "report_id",
              "LogisticsObservation": "observation_id"}
    out = {}
    for type_name in rus["types"]:
        for i in range(per_type):
            rel = ["FRA", "RUS", "USA"] if rel_to_usa and i % 3 != 2 else ["FRA", "RUS"]
            rec = record(rus, type_name, releasable_to=rel)
            sentinel = _sentinel()
            rec[fields[type_name]] = sentinel
            if type_name == "AirTrack":  # two inside the naval area (over Hmeimim), one outside (Iraq)
                rec["position"] = {"lat": 35.40, "lon": 35.95} if i < 2 else {"lat": 33.3, "lon": 44.4}
            out[rec["label"]["message_id"]] = (type_name, value(rus, type_name, rec), sentinel)
    return out


def _raw(m) -> bytes:
    return b"".join([m.value() or b"", m.key() or b""] + [(k.encode() + (v or b"")) for k, v in m.headers() or []])


def _flow(rus, records, group, policies=POLICIES, extra_topics=()):
    """Publish as RUS, guard, forward; the records each topic got (read_committed, as admin)."""
    watched = PARTNER_TOPICS + COMPONENT_TOPICS + [AUDIT_TOPIC, *extra_topics]
    drain()
    before = end_offsets(watched)
    publish_as_partner([(t, mid.encode(), v) for mid, (t, v, _s) in records.items()])
    p, log = start_guard("--max-idle", "3")
    wait_done(p, log)
    run_forwarder(group, group, policies=policies)
    return read_between(before, end_offsets(watched))


def test_components_get_what_they_need_and_no_partner_gets_what_rus_gave(rus):
    records = rus_records(rus)
    ours = [example("AirTrack"), example("AirTrack"), example("ForeignFighterReport")]
    ours[0] = ours[0].model_copy(update={"position": Position(lat=33.9, lon=33.6)})  # near the carrier group
    ours = [m.model_copy(update={"label": m.label.model_copy(update={"message_id": uuid.uuid4()})}) for m in ours]
    group, _ = fresh_group()
    with Publisher() as pub:
        for m in ours:
            pub.publish(m)
    msgs = _flow(rus, records, group)
    by_topic: dict[str, list] = {}
    for m in msgs:
        by_topic.setdefault(m.topic(), []).append(m)

    # every RUS record decided once for each of the five recipients, audited
    mine = [a for a in audits(msgs) if a["message_id"] in records]
    assert Counter(a["message_id"] for a in mine) == {mid: 5 for mid in records}
    assert {a["input_topic"] for a in mine} == {f"liaison.origin.rus.{t}" for t in (
        "air.mission-plan", "air.track", "naval.track", "air.strike-report", "intel.group-location",
        "intel.foreign-fighter", "intel.logistics")}

    # the third-party rule: no sentinel of RUS's anywhere on a USA topic (value, key, headers), nor RUS's own
    sentinels = {s.encode() for _t, _v, s in records.values()}
    usa = [m for m in msgs if m.topic().startswith("liaison.partner.usa.")]
    rus_feed = [m for m in msgs if m.topic().startswith("liaison.partner.rus.")]
    assert usa, "USA received nothing at all: the scan could not see a leak"
    assert [m.topic() for m in usa + rus_feed if any(s in _raw(m) for s in sentinels)] == []

    def feed(component):
        return [(source_of_recipient_topic(m.topic())[1], serde.avro_deserializer()(
            m.value(), SerializationContext(m.topic(), MessageField.VALUE))) for t, ms in by_topic.items()
            if t.startswith(f"liaison.component.{component}.") for m in ms]

    naval = feed("naval")
    assert {s for s, _ in naval} == {"AirTrack", "RUS/AirTrack"}
    lat0, lat1, lon0, lon1 = NAVAL_AREA
    assert all(lat0 <= v["position"]["lat"] <= lat1 and lon0 <= v["position"]["lon"] <= lon1 for _, v in naval)
    rus_tracks = [v for s, v in naval if s == "RUS/AirTrack"]
    assert len(rus_tracks) == 2 and {v["label"]["originator"] for v in rus_tracks} == {"partner.rus"}
    assert all("ORIGIN RUS" in v["label"]["caveats"] for v in rus_tracks)
    assert [v for s, v in naval if s == "AirTrack" and str(v["label"]["message_id"]) == str(ours[0].label.message_id)]

    intel = Counter(s for s, _ in feed("intel"))
    assert intel["RUS/ForeignFighterReport"] == intel["RUS/StrikeReport"] == intel["RUS/GroupLocationReport"] == 3
    assert intel["ForeignFighterReport"] >= 1
    assert not [s for s in intel if "Air" in s or "Maritime" in s]
    air = Counter(s for s, _ in feed("air"))
    assert air["RUS/AirMissionPlan"] == air["RUS/AirTrack"] == air["RUS/MaritimeTrack"] == 3
    assert not [s for s in air if "Fighter" in s or "Strike" in s or "Group" in s]


def test_a_policy_that_allows_one_category_lets_exactly_that_through(rus, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "RUS.yaml").write_text((policies / "RUS.yaml").read_text() + "\nonward:\n  StrikeReport: [USA]\n")
    (policies / "USA.yaml").write_text((policies / "USA.yaml").read_text() + """
from_partners:
  RUS:
    StrikeReport:
      - id: usa-rus-strike
        fields: {strike_id: keep, time: keep, position: keep, target_category: keep, group_id: keep,
                 assessed_effect: keep}
""")
    admin = kafka.admin()
    if THIRD_PARTY_TOPIC not in admin.list_topics(timeout=10).topics:  # deploy/topics.yaml `third_party:` in prod
        admin.create_topics([NewTopic(THIRD_PARTY_TOPIC, 3, 1)])[THIRD_PARTY_TOPIC].result()
        wait_for_leaders(admin, [THIRD_PARTY_TOPIC])
    records = rus_records(rus)
    group, _ = fresh_group()
    msgs = _flow(rus, records, group, policies, extra_topics=[THIRD_PARTY_TOPIC])
    usa = [m for m in msgs if m.topic().startswith("liaison.partner.usa.")]
    found = {s for _t, _v, s in records.values() for m in usa if s.encode() in _raw(m)}
    strikes_rel_usa = {s for mid, (t, _v, s) in records.items() if t == "StrikeReport"
                       and "USA" in _label_rel(rus, mid, records)}
    assert found == strikes_rel_usa and len(found) == 2
    assert {m.topic() for m in usa if any(s.encode() in _raw(m) for s in found)} == {THIRD_PARTY_TOPIC}
    decided = {a["message_id"]: a for a in audits(msgs) if a["partner"] == "USA" and a["message_id"] in records}
    for mid, (t, _v, _s) in records.items():  # labels first: a record not releasable to USA never gets further
        want = (("WITHHOLD", "label-releasability") if "USA" not in _label_rel(rus, mid, records) else
                ("RELEASE", "usa-rus-strike") if t == "StrikeReport" else ("WITHHOLD", "default-deny"))
        assert (decided[mid]["decision"], decided[mid]["rule"]) == want, (t, decided[mid]["reason"])


def _label_rel(rus, mid, records) -> list[str]:
    # rus_records gives REL TO USA to the first two of every three records of a type
    same_type = [m for m, (t, _v, _s) in records.items() if t == records[mid][0]]
    return ["FRA", "RUS", "USA"] if same_type.index(mid) % 3 != 2 else ["FRA", "RUS"]


def test_a_reciprocity_pause_withholds_the_category_with_its_reason(bus):
    """The ledger says RUS gave back nothing in foreign_fighters this week while we gave it 1,000: the forwarder,
    following liaison.ledger, withholds RUS's fighter reports (rule reciprocity-pause, reason in numbers, audited)
    and nothing else changes; USA's are not affected. The bucket's previous figure is written back afterwards."""
    import time as _time

    from core.topics import LEDGER_TOPIC, topic_for
    from operations.ledger.changelog import load_state
    from operations.ledger.model import GIVEN, BucketKey, Figures, encode_key, encode_value, hour_of
    from producers.simulate import Simulator
    from schemas.models import Classification, GroupId

    key = BucketKey("RUS", "foreign_fighters", GIVEN, hour_of(int(_time.time() * 1000)))
    state = load_state(kafka.consumer(f"test-ledger-{uuid.uuid4().hex[:6]}", {"enable.partition.eof": True}))
    original = state.buckets.get(key)
    producer = kafka.producer({})

    def put(fig):
        producer.produce(LEDGER_TOPIC, encode_value(fig) if fig is not None else None, encode_key(key))
        assert producer.flush(30) == 0

    models = []
    for _, m in Simulator({"intel"}, seed=99).events(400.0, 60.0):
        if type(m).__name__ == "ForeignFighterReport":
            subject = m.subject.model_copy(update={"nationality": ["RUS", "USA"]})
            label = m.label.model_copy(update={"releasable_to": ["RUS", "USA"],
                                               "classification": Classification.RESTRICTED})
            models.append(m.model_copy(update={"subject": subject, "label": label, "affiliation": GroupId("daesh")}))
        if len(models) == 5:
            break
    assert len(models) == 5
    group, _ = fresh_group()
    put(Figures(1000 + (original.count if original else 0), 10**6))
    try:
        before = end_offsets([AUDIT_TOPIC])
        with Publisher() as pub:
            for m in models:
                pub.publish(m)
        run_forwarder(group, group)
        decided = [a for a in audits(read_between(before, end_offsets([AUDIT_TOPIC])))
                   if a["input_topic"] == topic_for("ForeignFighterReport")]
    finally:
        put(original)  # the figure as it was (a tombstone when there was none)
    mids = {str(m.label.message_id) for m in models}
    rus = [a for a in decided if a["partner"] == "RUS" and a["message_id"] in mids]
    usa = [a for a in decided if a["partner"] == "USA" and a["message_id"] in mids]
    assert len(rus) == len(usa) == 5
    assert {(a["decision"], a["rule"]) for a in rus} == {("WITHHOLD", "reciprocity-pause")}
    reason = rus[0]["reason"]
    assert "RUS foreign_fighters over the week" in reason and "< min_ratio 0.2" in reason, reason
    assert {a["decision"] for a in usa} == {"RELEASE"}


def test_liaison_subscribe_reads_a_components_feed_as_its_principal_and_no_other(rus):
    """`liaison subscribe --component naval` reads liaison.component.naval.* as component-naval; the naval
    principal reading the intelligence cell's feed is refused by the broker."""
    import json as _json
    import subprocess

    from tests.integration.forwarder_helpers import LIAISON

    res = subprocess.run([LIAISON, "subscribe", "--component", "naval", "--from-beginning", "--json",
                          "--max-records", "5", "--idle-exit", "10"], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [_json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert lines and all(line["topic"].startswith("liaison.component.naval.") for line in lines)
    assert "as component-naval" in res.stderr
    denied = subprocess.run([LIAISON, "subscribe", "--component", "intel", "--as", "naval", "--topics",
                             "liaison.component.intel.origin.rus.intel.foreign-fighter", "--max-records", "1",
                             "--idle-exit", "5"], capture_output=True, text=True, timeout=180)
    assert denied.returncode == 3, denied.stderr[-2000:]
    assert ("principal component-naval may not read topic liaison.component.intel.origin.rus.intel.foreign-fighter "
            "(TOPIC_AUTHORIZATION_FAILED)") in denied.stderr

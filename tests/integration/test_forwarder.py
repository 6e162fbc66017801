"""The forwarder on the real broker and registry: no leaks, exact accounting, exactly once, dead letters.

These run on the shipped policies, whose RUS strike reports (hour) and foreign-fighter reports (day) are held
until their buckets end: they count as HELD here (test_envelope.py releases held records on short buckets)."""

from __future__ import annotations

import datetime
import random
import shutil
import signal
import time
from collections import Counter

import pytest

from core import kafka, serde
from core.readback import end_offsets, read_between
from core.topics import DEADLETTER_TOPIC, HOLD_TOPIC, topic_for
from forwarder_helpers import (ALL, INTERNAL, POLICIES, ForwarderLog, audit_key, audits, by_partner, partner_feeds,
                               check_partner_records, decision_audits, fresh_group, header, publish, run_forwarder,
                               scan_sentinels, start_forwarder)
from producers.simulate import SENTINEL_PREFIX, Simulator
from release import SecretStore


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture(scope="module")
def leak_run(bus):
    """>= 100,000 simulated records with sentinels in every field some partner must not see, forwarded."""
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    group, instance = fresh_group()
    start = end_offsets(ALL)
    sim = Simulator({"naval", "air", "intel"}, seed=4242, start=now(), sentinels=True)
    models = [m for _, m in sim.events(2000.0, 50.5)]
    assert len(models) >= 100_000
    sent = publish(models)
    run_forwarder(group, instance, idle=5, timeout=900)
    msgs = read_between(start, end_offsets(ALL), timeout=300)
    return sent, msgs


#: Sentinel fields a partner may legitimately receive (BRIEF): everything else planted must never appear.
#: observed_activity / travel_indicators are released only for designated groups, checked below.
ALLOWED_SENTINELS = {
    "RUS": {"observed_activity", "travel_indicators"},
    "USA": {"observed_activity", "travel_indicators", "mission_purpose", "mission", "collateral_assessment"},
}


def test_leak_no_forbidden_sentinel_reaches_any_partner_topic(leak_run):
    sent, msgs = leak_run
    partner_msgs = partner_feeds(msgs)
    assert set(partner_msgs) == {"RUS", "USA"}, "nothing was released to some partner"
    planted = sum(1 for m in msgs if m.topic() in INTERNAL and SENTINEL_PREFIX.encode() in m.value())
    assert planted > 10_000, "the simulator did not plant sentinels"
    seen, leaks = scan_sentinels(partner_msgs, ALLOWED_SENTINELS)
    assert leaks == []
    # the scan can see sentinels: the fields a partner is granted do arrive
    assert seen["USA"]["mission_purpose"] > 0 and seen["USA"]["collateral_assessment"] > 0
    assert seen["RUS"]["mission_purpose"] == 0


def test_leak_positive_cases_each_partner_gets_what_the_brief_grants(leak_run):
    sent, msgs = leak_run
    # every partner record is decide()'s view of an input released at once (or from the hold) with its
    # envelope, none missing, none twice; RUS's strike and foreign-fighter reports are held (hour, day)
    decided = check_partner_records(sent, msgs)
    assert decided["RUS"]["HELD"] > 0 and decided["RUS"]["RELEASE"] > 0 and decided["USA"]["RELEASE"] > 0
    # the brief, in the large: both get air tracks and logistics; only designated strike results; RUS never
    # gets a non-designated group's location
    from confluent_kafka.serialization import MessageField, SerializationContext

    deser = serde.avro_deserializer()
    types = {code: Counter(m.topic().split(".", 3)[3] for m in ms) for code, ms in by_partner(msgs).items()}
    for code in ("RUS", "USA"):
        for t in ("air.track", "naval.track", "intel.logistics", "air.mission-plan") + (
                ("intel.foreign-fighter", "air.strike-report") if code == "USA" else ()):
            assert types[code][t] > 0, (code, t)
    rus_groups = {deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE)).get("group_id")
                  for m in by_partner(msgs)["RUS"] if m.topic().endswith(("group-location", "strike-report"))}
    assert rus_groups <= {"daesh"}
    usa_groups = {deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE)).get("group_id")
                  for m in by_partner(msgs)["USA"] if m.topic().endswith(("group-location", "strike-report"))}
    assert usa_groups <= {"daesh", "al-nusra"} and "al-nusra" in usa_groups
    # travel indicators and last known area only for designated affiliations
    for code, designated in (("RUS", {"daesh"}), ("USA", {"daesh", "al-nusra"})):
        ff = [deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
              for m in by_partner(msgs)[code] if m.topic().endswith("foreign-fighter")]
        assert ff or code == "RUS"  # RUS's are held until the end of their day
        for v in ff:
            assert "name" not in v["subject"] and "date_of_birth" not in v["subject"]
            if v.get("travel_indicators") or v.get("last_known_area"):
                assert v["affiliation"] in designated


def test_accounting_one_audit_per_input_and_partner(leak_run):
    sent, msgs = leak_run
    inputs = [m for m in msgs if m.topic() in INTERNAL]
    records = audits(msgs)
    per_key = Counter(audit_key(a) for a in decision_audits(records))
    assert set(per_key.values()) == {1}
    assert {(t, p, o) for t, p, o, _ in per_key} == {(m.topic(), m.partition(), m.offset()) for m in inputs}
    held_keys = {audit_key(a) for a in records if a["decision"] == "HELD"}
    released_keys = Counter(audit_key(a) for a in records if a["decision"] == "RELEASED")
    assert set(released_keys) <= held_keys and set(released_keys.values()) <= {1}
    dead = sum(1 for m in msgs if m.topic() == DEADLETTER_TOPIC)
    holds = [m for m in msgs if m.topic() == HOLD_TOPIC]
    for code in ("RUS", "USA"):
        mine = Counter(a["decision"] for a in records if a["partner"] == code)
        released = mine["RELEASE"] + mine["RELEASED"]
        held = mine["HELD"] - mine["RELEASED"]
        # released + withheld + held = input - dead-lettered, at any instant
        assert released + mine["WITHHOLD"] + held == len(inputs) - dead, (code, mine)
        assert released == len(by_partner(msgs)[code])
        assert mine["HELD"] == sum(1 for m in holds if header(m, "liaison.hold.partner") == code)
        assert all(a["policy_version"] for a in records if a["partner"] == code)
    assert Counter(a["decision"] for a in records if a["partner"] == "RUS")["HELD"] > 0


def test_crash_kill_9_five_times_then_exactly_once(bus):
    group, instance = fresh_group()
    start = end_offsets(ALL)
    sim = Simulator({"naval", "air", "intel"}, seed=99, start=now())
    sent = publish([m for _, m in sim.events(1000.0, 30.0)])
    # Where each kill lands: right after the n-th batch's transaction was begun (before its commit), or
    # right after the n-th commit (between transactions), or before any batch.
    kills = [("batch begun", 1), ("batch committed", 2), ("batch begun", 2), ("forwarder started", 1),
             ("batch begun", 3)]
    in_transaction = []
    for event, n in kills:
        p = start_forwarder(group, instance)
        logs = ForwarderLog(p)
        logs.wait_for(event, n)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        logs.finish()
        p.stdout.close()
        # the last transaction event it logged before it died: "batch begun" = killed with a transaction open
        # (begun, outputs being produced or committed, never logged committed; the only false positive, a kill
        # between commit_transaction() returning and its log line, is microseconds against a batch's tens of ms)
        last = [e for e in logs.events if e in ("batch begun", "batch committed")][-1:]
        in_transaction.append(last == ["batch begun"])
    assert sum(in_transaction) >= 1, f"no kill landed while a transaction was open: {list(zip(kills, in_transaction))}"
    run_forwarder(group, instance, idle=5)
    msgs = read_between(start, end_offsets(ALL), timeout=300)
    # no partner record missing, none duplicated (by content and envelope), held ones held once
    check_partner_records(sent, msgs)
    records = audits(msgs)
    per_key = Counter(audit_key(a) for a in decision_audits(records))
    assert set(per_key.values()) == {1}
    recipients = len(list(POLICIES.glob("*.yaml")))  # partners and our components: one decision each per record
    assert len(per_key) == recipients * len(sent)
    holds = Counter((header(m, "liaison.hold.source.topic"), int(header(m, "liaison.hold.source.partition")),
                     int(header(m, "liaison.hold.source.offset")), header(m, "liaison.hold.partner"))
                    for m in msgs if m.topic() == HOLD_TOPIC)
    assert holds == Counter(audit_key(a) for a in records if a["decision"] == "HELD")


def test_poison_pills_go_to_dead_letter_and_the_forwarder_keeps_going(bus):
    group, instance = fresh_group()
    start = end_offsets(ALL)
    topic = topic_for("AirTrack")
    p = kafka.producer()
    pills = {
        b"pill-random": bytes(random.Random(1).getrandbits(8) for _ in range(64)),
        b"pill-magic": b"\x07" + bytes(20),
        b"pill-unknown-id": serde.frame(987654, b"\x02\x04abc"),
        b"pill-truncated": serde.frame(serde.registry_client().get_latest_version(
            serde.value_subject(topic)).schema_id, b"\x02"),
    }
    for key, value in pills.items():
        p.produce(topic, key=key, value=value, headers=[("origin", b"test")])
    assert p.flush(30) == 0
    good = publish([m for _, m in Simulator({"air"}, seed=3, start=now()).events(100.0, 2.0)])
    run_forwarder(group, instance, idle=4)
    msgs = read_between(start, end_offsets(ALL))
    dead = {m.key(): m for m in msgs if m.topic() == DEADLETTER_TOPIC}
    assert set(dead) == set(pills)
    for key, m in dead.items():
        assert m.value() == pills[key]
        assert header(m, "liaison.dlq.source.topic") == topic
        assert header(m, "liaison.dlq.source.offset") is not None
        assert header(m, "origin") == "test"
    assert "magic byte" in header(dead[b"pill-magic"], "liaison.dlq.error")
    assert "987654" in header(dead[b"pill-unknown-id"], "liaison.dlq.error")
    assert header(dead[b"pill-truncated"], "liaison.dlq.stage") == "avro"
    # the good records after the pills were forwarded: one decision per input and partner
    recipients = len(list(POLICIES.glob("*.yaml")))  # partners and our components: one audit each
    assert len([a for a in decision_audits(audits(msgs)) if a["decision"] != "DEAD_LETTER"]) == recipients * len(good)
    assert len([a for a in audits(msgs) if a["decision"] == "DEAD_LETTER"]) == recipients * len(pills)


def test_invalid_policy_refuses_to_start_naming_file_and_field(bus, tmp_path):
    bad = tmp_path / "policies"
    shutil.copytree(POLICIES, bad)
    text = (bad / "RUS.yaml").read_text()
    assert "classification_ceiling: CONFIDENTIAL" in text
    (bad / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                               "classification_ceiling: CONFIDENTIAL\nweapons_ok: true", 1))
    p = start_forwarder("test-bad-policy", "bad", "--max-idle", "1", policies=bad)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert "RUS.yaml" in err and "weapons_ok" in err


def test_sighup_reloads_policies_and_refuses_an_invalid_one(bus, tmp_path):
    pol = tmp_path / "policies"
    shutil.copytree(POLICIES, pol)
    group, instance = fresh_group()
    p = start_forwarder(group, instance, policies=pol)
    logs = ForwarderLog(p)

    def versions(msgs) -> set[str]:
        # the versions in force at decision time: of air tracks (a record released from the hold carries the
        # version it was held under)
        return {header(m, "liaison.policy.version") for m in by_partner(msgs)["RUS"] if m.topic().endswith("air.track")}

    try:
        def send_tracks(n):
            start = end_offsets(ALL)
            ms = [m for _, m in Simulator({"air"}, seed=rng_seed(), start=now()).events(200.0, n / 200.0)]
            publish(ms)
            deadline = time.time() + 60
            while time.time() < deadline:
                msgs = read_between(start, end_offsets(ALL))
                decided = audits(msgs)
                released = sum(a["decision"] in ("RELEASE", "RELEASED") for a in decided)
                # commit markers reach each partition on their own: wait until the partner topics show
                # every release the audit topic records
                if len(decision_audits(decided)) >= 2 * len(ms) and \
                        sum(len(v) for v in by_partner(msgs).values()) == released:
                    return msgs
                time.sleep(0.5)
            raise AssertionError("forwarder did not process the records")

        first = send_tracks(300)
        decisions = Counter((a["partner"], a["decision"], a["rule"]) for a in audits(first))
        assert "RUS" in by_partner(first), decisions
        before = versions(first)
        assert len(before) == 1
        # an invalid policy is refused; the old one stays in force
        text = (pol / "RUS.yaml").read_text()
        (pol / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                                   "classification_ceiling: CONFIDENTIAL\nbogus_key: 1", 1))
        p.send_signal(signal.SIGHUP)
        logs.wait_for("policy reload refused", timeout=60)  # reloads happen at a batch boundary
        still = versions(send_tracks(300))
        assert still == before and p.poll() is None
        # a valid change is taken: a new version hash on released records
        # (a higher ceiling: a valid change that can only release more, so RUS records keep arriving)
        (pol / "RUS.yaml").write_text(text.replace("classification_ceiling: CONFIDENTIAL",
                                                   "classification_ceiling: SECRET", 1))
        p.send_signal(signal.SIGHUP)
        logs.wait_for("policies reloaded", timeout=60)
        after = versions(send_tracks(300))
        assert after and after.isdisjoint(before)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        err = logs.finish()
        p.stdout.close()
    assert p.returncode == 0
    assert logs.count("policy reload refused") == 1 and logs.count("policies reloaded") == 1
    assert "bogus_key" in err
    assert "policies reloaded" in err


_SEEDS = iter(range(1000, 2000))


def rng_seed() -> int:
    return next(_SEEDS)


def test_forwarder_exports_its_counters_as_prometheus_metrics(bus):
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    group, instance = fresh_group()
    p = start_forwarder(group, instance, "--metrics-port", str(port))
    try:
        start = end_offsets(ALL)
        ms = [m for _, m in Simulator({"air", "intel"}, seed=rng_seed(), start=now()).events(100.0, 1.0)]
        publish(ms)
        deadline = time.time() + 60
        while time.time() < deadline:
            records = audits(read_between(start, end_offsets(ALL)))
            if len(decision_audits(records)) >= 2 * len(ms):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "liaison_forwarder_decisions" in families, text[-1500:]
    got = Counter()
    for sample in families["liaison_forwarder_decisions"].samples:
        if sample.name.endswith("_total"):
            got[(sample.labels["partner"], sample.labels["decision"])] += sample.value
    want = Counter((a["partner"], a["decision"]) for a in records)
    assert got == want
    held = Counter(a["partner"] for a in records if a["decision"] == "HELD")
    assert {s.labels["partner"]: s.value for s in families["liaison_forwarder_held"].samples
            if s.name.endswith("_total")} == dict(held)
    assert sum(s.value for s in families["liaison_forwarder_records"].samples if s.name.endswith("_total")) == len(ms)


def test_deconfliction_alerts_reach_our_air_component_whole_and_each_partner_its_own(bus):
    """Alerts published as `deconflict` (liaison publish's principal for liaison.internal.deconfliction.*) are released
    by the same engine: every one, whole, to the air component; to RUS and USA only their own, our sortie id
    pseudonymised; naval and intelligence get none; one audit per alert and recipient."""
    import uuid

    from confluent_kafka.serialization import MessageField, SerializationContext

    from core.topics import recipient_topic
    from schemas.examples import deconfliction_alert

    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    alerts = {}
    for code in ("RUS", "USA"):
        a = deconfliction_alert(code)
        a.label.message_id, a.alert_id = uuid.uuid4(), uuid.uuid4()
        alerts[code] = a
    feeds = [recipient_topic(r, "DeconflictionAlert") for r in ("RUS", "USA", "air", "naval", "intel")]
    group, instance = fresh_group()
    start = end_offsets(feeds + [topic_for("DeconflictionAlert")])
    publish(list(alerts.values()))
    run_forwarder(group, instance, idle=4)
    msgs = read_between(start, end_offsets(feeds + [topic_for("DeconflictionAlert")]))
    deser = serde.avro_deserializer()
    got: dict[str, list[dict]] = {}
    for m in msgs:
        got.setdefault(m.topic(), []).append(deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE)))
    assert len(got[topic_for("DeconflictionAlert")]) == 2
    assert sorted(v["partner"] for v in got[recipient_topic("air", "DeconflictionAlert")]) == ["RUS", "USA"]
    assert all(v["ours"]["sortie_id"] == "H5-20151123-014" for v in got[recipient_topic("air", "DeconflictionAlert")])
    for code in ("RUS", "USA"):
        (view,) = got[recipient_topic(code, "DeconflictionAlert")]
        assert view["partner"] == code and str(view["alert_id"]) == str(alerts[code].alert_id)
        assert view["ours"]["sortie_id"].startswith("p-") and "H5" not in repr(view)
        assert set(view["label"]) == {"classification", "created_at", "message_id"}
    assert recipient_topic("naval", "DeconflictionAlert") not in got
    assert recipient_topic("intel", "DeconflictionAlert") not in got

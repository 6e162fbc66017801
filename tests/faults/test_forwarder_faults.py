"""Fault suite: the forwarder keeps working through registry, broker and client faults, on the real servers.

(a) a 999,850-byte value on an internal topic: dead-lettered with its bytes, the records after it forwarded; and
    on a dead-letter topic too small for it (as on servers set up before deploy/topics.yaml set the sizes): the
    broker refuses the dead letter, the batch is done again in a fresh transaction with a dead letter by reference
(b) the registry gateway killed (-9) for about 30 s under load, a forwarder killed (-9) and started again while
    it is away (from its schema cache): 0 good records dead-lettered, then every record released, withheld or
    held as its policy says, 0 duplicates, 0 missing (read_committed)
(c) an incompatible derived schema (a nullable field made required): the start is refused naming subject and
    field, and so is a reload
(d) SIGHUP with a new partner's policy: its key is created, its schema registered, its topic receives records
(e) the broker restarted under load with --supervise: the forwarder recovers by itself, 0 duplicates, 0 missing

Own servers and ports only: LIAISON_TEST_STATE=/work/main/.state/test-ffault LIAISON_TEST_PORT_BASE=51092
LIAISON_TEST_REGISTRY_PORT=51081. Each test prints its figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AlterConfigOpType, ConfigEntry,
                                  ConfigResource, NewTopic, ResourcePatternType, ResourceType)

import schemas
from core import kafka
from core import settings as settings_mod
from core.readback import end_offsets, read_between
from core.topics import DEADLETTER_TOPIC, partner_topic, topic_for
from deploy import governance, topics
from deploy.infra import servers
from producers.publisher import Publisher
from producers.simulate import Simulator
from release import SecretStore

from forwarder_fault_support import (TEST_STATE, figures, free_port, http, infra_settings, kill_server, now,
                                     paced, stop, until, wait_decided)
from fault_helpers import ALL, check_recipient_records, recipients

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from forwarder_helpers import (POLICIES, ForwarderLog, fresh_group, header, publish, run_forwarder,  # noqa: E402
                               start_forwarder)

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def fbus(settings):
    """Topics applied, schemas registered, and this suite's state dir for the forwarders' caches and keys."""
    old = os.environ.get("LIAISON_STATE_DIR")
    os.environ["LIAISON_STATE_DIR"] = str(TEST_STATE)
    settings_mod.get_settings.cache_clear()
    topics.apply_topics(topics.load_topics())
    governance.register_all()
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    yield settings_mod.get_settings()
    if old is None:
        os.environ.pop("LIAISON_STATE_DIR", None)
    else:
        os.environ["LIAISON_STATE_DIR"] = old
    settings_mod.get_settings.cache_clear()


# ---------------------------------------------------------------------------------------------- (a)


def test_a_a_999850_byte_value_is_dead_lettered_and_the_forwarder_goes_on(fbus):
    group, instance = fresh_group()
    topic = topic_for("AirTrack")
    huge = os.urandom(999_850)
    start = end_offsets(ALL)
    before = publish([m for _, m in Simulator({"air"}, seed=31, start=now()).events(100.0, 1.0)])
    raw = kafka.producer({"message.max.bytes": 1_100_000, "compression.type": "none"})  # as admin
    raw.produce(topic, key=b"huge-1", value=huge, headers=[("origin", b"fault-test")])
    assert raw.flush(30) == 0
    after = publish([m for _, m in Simulator({"air"}, seed=32, start=now()).events(100.0, 1.0)])
    err = run_forwarder(group, instance, idle=4)
    msgs = read_between(start, end_offsets(ALL))
    dead = [m for m in msgs if m.topic() == DEADLETTER_TOPIC]
    assert [(m.key(), m.value() == huge, header(m, "liaison.dlq.stage"), header(m, "origin")) for m in dead] == \
        [(b"huge-1", True, "framing", "fault-test")]
    models = {**before, **after}
    decided = check_recipient_records(models, msgs)
    got = figures("a: 999,850-byte value, dead-letter topic 1,200,000 bytes", models, msgs)
    assert got["records in"] == len(models) + 1 and got["dead-letter topic"] == 1
    assert all(got[c]["missing"] == 0 and got[c]["duplicates"] == 0 and got[c]["dead-lettered"] == 1
               for c in ("RUS", "USA"))
    assert sum(decided["USA"].values()) == len(models) + 1 and "record could not be produced" not in err

    # the dead-letter topic of older servers takes less than that record: the broker refuses its dead letter, the
    # transaction is aborted and the batch done again with a dead letter by reference
    admin = kafka.admin()
    resource = ConfigResource(ResourceType.TOPIC, DEADLETTER_TOPIC, incremental_configs=[
        ConfigEntry("max.message.bytes", "500000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result()
    try:
        group, instance = fresh_group()
        start = end_offsets(ALL)
        raw.produce(topic, key=b"huge-2", value=huge)
        assert raw.flush(30) == 0
        after = publish([m for _, m in Simulator({"air"}, seed=33, start=now()).events(100.0, 1.0)])
        err = run_forwarder(group, instance, idle=4)
    finally:
        resource = ConfigResource(ResourceType.TOPIC, DEADLETTER_TOPIC, incremental_configs=[
            ConfigEntry("max.message.bytes", "1200000", incremental_operation=AlterConfigOpType.SET)])
        for f in admin.incremental_alter_configs([resource]).values():
            f.result()
    assert "record could not be produced, batch done again without it" in err, err[-3000:]
    msgs = read_between(start, end_offsets(ALL))
    [dead] = [m for m in msgs if m.topic() == DEADLETTER_TOPIC]
    assert dead.value() is None and header(dead, "liaison.dlq.by_reference") == "true"
    assert header(dead, "liaison.dlq.value.bytes") == "999850" and header(dead, "liaison.dlq.stage") == "framing"
    assert header(dead, "liaison.dlq.value.sha256") == hashlib.sha256(huge).hexdigest()
    assert "MSG_SIZE_TOO_LARGE" in header(dead, "liaison.dlq.error")
    check_recipient_records(after, msgs)
    got = figures("a: the same on a dead-letter topic of 500,000 bytes (by reference)", after, msgs)
    assert all(got[c]["missing"] == 0 and got[c]["duplicates"] == 0 and got[c]["dead-lettered"] == 1
               for c in ("RUS", "USA"))


# ---------------------------------------------------------------------------------------------- (b)


def test_b_registry_away_for_30s_under_load_nothing_dead_lettered_nothing_lost(fbus):
    group, instance = fresh_group()
    port = free_port()
    start = end_offsets(ALL)
    pub = Publisher()
    for name in schemas.MESSAGE_TYPES:
        pub.encoder(name)  # the load generator looks its schemas up now: it publishes through the outage
    p = start_forwarder(group, instance, "--supervise", "--metrics-port", str(port))
    logs = ForwarderLog(p)
    second = None
    try:
        # before: only naval tracks, so the forwarder has cached only their writer schema
        sent = paced({"naval"}, 3.0, 100.0, 41, pub)
        wait_decided(start, len(sent))
        assert until("ready", lambda: http(port, "/readyz")[0] == 200, 60)
        killed = kill_server(servers.GATEWAY)
        t_kill = time.monotonic()
        # ~30 s of load with every type: air and intel ids are not cached and must wait, never dead-letter
        load = {}
        worker = threading.Thread(target=lambda: load.update(paced({"naval", "air", "intel"}, 30.0, 100.0, 42, pub)))
        worker.start()
        status, body = until("not ready, registry unavailable", lambda: (lambda r: r if r[0] == 503 and json.loads(
            r[1]).get("registry_available") is False else None)(http(port, "/readyz")), 60)
        metrics = http(port, "/metrics")[1]
        assert "liaison_forwarder_registry_available 0.0" in metrics
        assert http(port, "/healthz")[0] == 200
        logs.wait_for("registry unavailable, partitions paused", timeout=60)
        # the forwarder dies (kill -9) while the registry is away; a new one starts from its schema cache
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        first_log = logs.finish()
        p.stdout.close()
        second = start_forwarder(group, instance, "--supervise", "--metrics-port", str(port))
        logs = ForwarderLog(second)
        logs.wait_for("forwarder started", timeout=120)
        worker.join(120)
        outage = time.monotonic() - t_kill
        servers.up(infra_settings(), "single", "mem", log=lambda *_: None)  # starts the gateway only
        back = time.monotonic() - t_kill
        sent.update(load)
        msgs = wait_decided(start, len(sent), timeout=300)
        assert until("ready again", lambda: http(port, "/readyz")[0] == 200, 90)
    finally:
        out = stop(second or p, logs, name="b")
        if second is not None and p.poll() is None:
            p.kill()
    msgs = read_between(start, end_offsets(ALL))
    assert [m for m in msgs if m.topic() == DEADLETTER_TOPIC] == []
    decided = check_recipient_records(sent, msgs)  # every record as its policy says, none missing, none twice
    got = figures(f"b: registry gateway (pid {killed}) killed for {back:.0f}s ({outage:.0f}s of load), "
                  f"forwarder killed and restarted meanwhile", sent, msgs)
    for code in ("RUS", "USA"):
        assert got[code]["dead-lettered"] == 0 and got[code]["missing"] == 0 and got[code]["duplicates"] == 0
        assert sum(decided[code].values()) >= len(sent)
    events = Counter(json.loads(x).get("event") for x in (first_log + out).splitlines() if x.startswith("{"))
    print("[b: forwarder events] " + json.dumps({e: events[e] for e in (
        "registry unavailable, partitions paused", "registry unavailable, registered schema ids taken from the cache",
        "forwarder started", "batch committed", "kafka client error", "forwarder restarting")}))
    assert got["records in"] == len(sent) and back >= 28
    assert "registry unavailable, registered schema ids taken from the cache" in out
    assert "cannot reach" not in first_log + out


# ---------------------------------------------------------------------------------------------- (c)


def test_c_an_incompatible_derived_schema_stops_the_start_and_a_reload(fbus, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(POLICIES, bad)
    text = (bad / "USA.yaml").read_text()
    old = "nullable: [affiliation, last_known_area, travel_indicators]"
    assert old in text
    (bad / "USA.yaml").write_text(text.replace(old, "nullable: [last_known_area, travel_indicators]"))
    p = start_forwarder("liaison-forwarder-test-incompatible", "incompatible", "--max-idle", "1", policies=bad)
    out, err = p.communicate(timeout=120)
    line = err.strip().splitlines()[-1]
    print(f"\n[c: start refused, exit {p.returncode}] {line}")
    assert p.returncode == 2
    assert "derived schema for liaison.partner.usa.intel.foreign-fighter-value is incompatible with registered " \
           "version" in line and "field 'affiliation'" in line
    # a reload to it is refused likewise; the forwarder keeps going on the plans in force
    pol = tmp_path / "good"
    shutil.copytree(POLICIES, pol)
    group, instance = fresh_group()
    p = start_forwarder(group, instance, policies=pol)
    logs = ForwarderLog(p)
    try:
        logs.wait_for("forwarder started")
        (pol / "USA.yaml").write_text((bad / "USA.yaml").read_text())
        p.send_signal(signal.SIGHUP)
        logs.wait_for("policy reload refused", timeout=60)
        assert p.poll() is None
    finally:
        err = stop(p, logs)
    refused = [json.loads(x) for x in err.splitlines() if '"policy reload refused"' in x]
    print(f"[c: reload refused] {refused[0]['error']}")
    assert "field 'affiliation'" in refused[0]["error"] and p.returncode == 0


# ---------------------------------------------------------------------------------------------- (d)


GBR = """# A partner added while the forwarder runs (fault test): air deconfliction only.
partner: GBR
classification_ceiling: SECRET
require_releasable_to: false
label: {classification: keep, created_at: keep, message_id: keep}
rules:
  AirTrack:
    - id: gbr-air-track
      acknowledge: {linkable: "air deconfliction safety data, released exactly to every partner by agreement"}
      fields: {track_id: keep, callsign: keep, time: keep, position: keep, altitude_ft: keep}
"""


def test_d_sighup_with_a_new_partner_serves_it_without_a_restart(fbus, tmp_path):
    gbr_topic = partner_topic("GBR", topic_for("AirTrack"))
    admin = kafka.admin()
    fs = admin.create_topics([NewTopic(gbr_topic, 12, 1, config={"max.message.bytes": "1100000"})])
    for f in fs.values():
        try:
            f.result()
        except Exception as e:  # noqa: BLE001 - a rerun on the same servers
            assert "TOPIC_ALREADY_EXISTS" in str(e)
    topics.wait_for_leaders(admin, [gbr_topic])
    acl = AclBinding(ResourceType.TOPIC, "liaison.partner.gbr.", ResourcePatternType.PREFIXED, "User:partner-gbr",
                     "*", AclOperation.READ, AclPermissionType.ALLOW)
    for f in admin.create_acls([acl]).values():
        f.result()
    key = SecretStore().path("GBR")
    key.unlink(missing_ok=True)
    pol = tmp_path / "policies"
    shutil.copytree(POLICIES, pol)
    group, instance = fresh_group()
    p = start_forwarder(group, instance, policies=pol)
    logs = ForwarderLog(p)
    try:
        logs.wait_for("forwarder started")
        start = end_offsets(ALL + [gbr_topic])
        first = publish([m for _, m in Simulator({"air"}, seed=51, start=now()).events(100.0, 1.0)])
        wait_decided(start, len(first))
        (pol / "GBR.yaml").write_text(GBR)
        p.send_signal(signal.SIGHUP)
        logs.wait_for("policies reloaded", timeout=60)
        assert key.exists()
        mid = end_offsets(ALL + [gbr_topic])
        second = publish([m for _, m in Simulator({"air"}, seed=52, start=now()).events(100.0, 1.0)])
        wait_decided(mid, len(second), partners=recipients(pol), extra=[gbr_topic])
    finally:
        err = stop(p, logs)
        # leave the shared servers as deploy/acls.yaml declares them (the ACL test reports any drift)
        for f in admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "liaison.partner.gbr.",
                                                     ResourcePatternType.PREFIXED, "User:partner-gbr", "*",
                                                     AclOperation.READ, AclPermissionType.ALLOW)]).values():
            f.result()
    assert p.returncode == 0 and "pseudonymisation keys created" in err
    msgs = read_between(mid, end_offsets(ALL + [gbr_topic]))
    decided = check_recipient_records(second, msgs, policies_dir=pol)  # GBR's topic holds exactly its releases
    got = figures("d: GBR added by SIGHUP", second, msgs)
    gbr = [m for m in msgs if m.topic() == gbr_topic]
    assert len(gbr) == decided["GBR"]["RELEASE"] > 0 and sum(decided["GBR"].values()) == len(second)
    assert got["GBR"]["missing"] == 0 and got["GBR"]["duplicates"] == 0
    assert not [m for m in read_between(start, mid) if m.topic() == gbr_topic]  # nothing before the reload


# ---------------------------------------------------------------------------------------------- (e)


def test_e_a_broker_restart_under_load_the_supervised_forwarder_recovers_by_itself(fbus):
    group, instance = fresh_group()
    start = end_offsets(ALL)
    pub = Publisher()
    for name in schemas.MESSAGE_TYPES:
        pub.encoder(name)
    p = start_forwarder(group, instance, "--supervise")
    logs = ForwarderLog(p)
    try:
        sent = paced({"naval", "air", "intel"}, 3.0, 100.0, 61, pub)
        wait_decided(start, len(sent))
        # a record published during the restart waits for the broker: at most the restart's own bounds (the stop's
        # SIGKILL bound, the start timeout), then librdkafka's reconnect backoff (reconnect.backoff.max.ms, 10 s)
        flush_s = servers.STOP_BOUNDS["kafka"] + infra_settings().start_timeout + 10.0
        load, load_failed = {}, []

        def run_load():
            try:
                paced({"naval", "air", "intel"}, 20.0, 100.0, 62, pub, into=load, flush_s=flush_s)
            except BaseException as e:  # noqa: BLE001 - reported by the test below
                load_failed.append(e)

        worker = threading.Thread(target=run_load)
        worker.start()
        t0 = time.monotonic()
        servers.restart(infra_settings(), "kafka-1", log=lambda *_: None)  # stop (bounded), start, wait healthy
        down = time.monotonic() - t0
        worker.join(20.0 + 3 * flush_s)
        assert not worker.is_alive() and not load_failed, f"the load during the restart: {load_failed}"
        sent.update(load)
        sent.update(paced({"naval", "air", "intel"}, 2.0, 100.0, 63, pub))
        msgs = wait_decided(start, len(sent), timeout=300)
        assert p.poll() is None, "the supervised forwarder exited"
    finally:
        out = stop(p, logs, name="e")
    assert p.returncode == 0, out[-3000:]
    msgs = read_between(start, end_offsets(ALL))
    check_recipient_records(sent, msgs)
    got = figures(f"e: broker kafka-1 restarted ({down:.0f}s) under load, --supervise", sent, msgs)
    events = Counter(json.loads(x).get("event") for x in out.splitlines() if x.startswith("{"))
    kinds = Counter((json.loads(x)["client"], json.loads(x)["kind"], json.loads(x)["code"])
                    for x in out.splitlines() if '"kafka client error"' in x)
    print("[e: forwarder events] " + json.dumps({e: events[e] for e in (
        "forwarder restarting", "forwarder started", "transaction aborted, batch will be reprocessed",
        "transaction call retried", "kafka client error", "batch committed")}) + " client errors: " +
        json.dumps({"/".join(k): n for k, n in kinds.items()}))
    for code in ("RUS", "USA"):
        assert got[code]["missing"] == 0 and got[code]["duplicates"] == 0 and got[code]["dead-lettered"] == 0
    assert got["records in"] == len(sent)

"""Partner isolation on the real, secured broker: the ACL matrix (every principal of deploy/acls.yaml against one
topic of each kind: partner feeds, internal, inbound, partner-origin, quarantine, component feeds, audits, seen ids,
ledger), refused logins, the officer feed, `acl apply`.

The expected matrix below is written out by hand from the brief (not derived from deploy/acls.yaml), so a
wrong ACL file fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_END, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from core import REPO_ROOT, kafka
from deploy.acl import Acl, broker_acls, load_acls, to_binding
from core.readback import committed_offsets, end_offsets, seed_group
from consumers.officers.feed import partner_topics
from core.settings import get_settings
from core.topics import (AUDIT_TOPIC, DEADLETTER_TOPIC, DECONFLICTION_STATE_TOPIC, INGRESS_AUDIT_TOPIC, LEDGER_TOPIC,
                         SEEN_TOPIC, inbound_topic, origin_topic, partner_topic, quarantine_topic, recipient_topic,
                         topic_for)

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")

#: One topic of each kind (names from core.topics). Every principal produces one probe record (not Avro, header
#: origin=acl-matrix) to each and fetches from each; the services skip such records (bad framing, foreign keys).
TOPICS = {
    "rus": partner_topic("RUS", topic_for("AirTrack")),
    "usa": partner_topic("USA", topic_for("AirTrack")),
    "naval": topic_for("MaritimeTrack"),
    "air": topic_for("AirTrack"),
    "intel": topic_for("LogisticsObservation"),
    "audit": AUDIT_TOPIC,
    "deadletter": DEADLETTER_TOPIC,
    # give and take: what partners send us, what the guard accepted or refused, our components' feeds
    "in-rus": inbound_topic("RUS", "AirTrack"),
    "in-usa": inbound_topic("USA", "StrikeReport"),
    "origin-rus": origin_topic("RUS", "AirTrack"),
    "origin-usa": origin_topic("USA", "StrikeReport"),
    "quarantine-rus": quarantine_topic("RUS"),
    "quarantine-usa": quarantine_topic("USA"),
    "comp-naval": recipient_topic("naval", "AirTrack"),
    "comp-naval-origin": recipient_topic("naval", "RUS/AirTrack"),
    "comp-air": recipient_topic("air", "MaritimeTrack"),
    "comp-intel": recipient_topic("intel", "ForeignFighterReport"),
    "ingress-audit": INGRESS_AUDIT_TOPIC,
    "seen": SEEN_TOPIC,
    "ledger": LEDGER_TOPIC,
    # deconfliction: its alerts (a domain of its own), their feeds, its changelog
    "alert": topic_for("DeconflictionAlert"),
    "rus-alert": recipient_topic("RUS", "DeconflictionAlert"),
    "comp-air-alert": recipient_topic("air", "DeconflictionAlert"),
    "state": DECONFLICTION_STATE_TOPIC,
}
ALL = set(TOPICS)
INTERNAL = {"naval", "air", "intel"}
PARTNER_FEEDS = {"rus", "usa"}
INBOUND = {"in-rus", "in-usa"}
ORIGIN = {"origin-rus", "origin-usa"}
QUARANTINE = {"quarantine-rus", "quarantine-usa"}
COMPONENT_FEEDS = {"comp-naval", "comp-naval-origin", "comp-air", "comp-intel"}

#: principal -> (topics it may read, topics it may write); everything else must be refused.
EXPECTED = {
    "admin": (ALL, ALL),
    # a partner reads its own feed and writes its own inbound topics: nothing else (no other partner's inbound,
    # no internal, origin, quarantine, component, audit or ledger topic)
    "partner-rus": ({"rus", "rus-alert"}, {"in-rus"}),
    "partner-usa": ({"usa"}, {"in-usa"}),
    # a component reads its own feed (ours and partner-origin records decided for it), nothing else
    "component-naval": ({"comp-naval", "comp-naval-origin"}, set()),
    "component-air": ({"comp-air", "comp-air-alert"}, set()),
    "component-intel": ({"comp-intel"}, set()),
    "forwarder": (INTERNAL | {"alert"} | ORIGIN | {"ledger"},
                  PARTNER_FEEDS | COMPONENT_FEEDS | {"rus-alert", "comp-air-alert", "audit", "deadletter"}),
    # deconfliction: our air tracks and a partner's (origin-rus is RUS's air tracks; origin-usa, USA's strike
    # reports, is refused: literal names, no prefix), its changelog; writes its alerts and changelog only
    "deconflict": ({"air", "origin-rus", "state"}, {"alert", "state"}),
    # the guard: inbound in; partner-origin, quarantine, its audit and the seen ids out (seen ids read back)
    "ingress": (INBOUND | {"seen"}, ORIGIN | QUARANTINE | {"ingress-audit", "seen"}),
    # the ledger reads the two audits and its changelog, writes its changelog: no data topic
    "ledger": ({"audit", "ingress-audit", "ledger"}, {"ledger"}),
    "producer-naval": (set(), {"naval"}),
    "producer-air": (set(), {"air"}),
    "producer-intel": (set(), {"intel"}),
    "lag-monitor": (set(), set()),  # offsets and metadata only: refused READ on every data topic
    # the console's operations view: the two audits and the ledger (counts), never a data topic
    "operations": ({"audit", "ingress-audit", "ledger"}, set()),
    "registry": (set(), set()),
}


@pytest.fixture(scope="module")
def secured(bus):
    sec = get_settings().security()
    if sec is None:
        pytest.fail("the servers in use (LIAISON_BOOTSTRAP_SERVERS or testcontainers) are PLAINTEXT: a green run on "
                    "them would prove no partner isolation. Run the suite on the project's own (secured) servers, or "
                    "point LIAISON_SECURITY_PROTOCOL/LIAISON_CREDENTIALS_DIR at a secured cluster.", pytrace=False)
    return sec


def _write_results(principal: str) -> dict[str, int | None]:
    """Produce one record to every topic (acks=all, not idempotent so each refusal is per topic)."""
    p = kafka.producer({"enable.idempotence": False, "acks": "all", "linger.ms": 0, "message.timeout.ms": 15000,
                        "retries": 0}, principal=principal)
    out: dict[str, int | None] = {}
    for name, topic in TOPICS.items():
        p.produce(topic, b"acl-matrix probe (not Avro)", key=b"acl-matrix", headers=[("origin", b"acl-matrix")],
                  on_delivery=lambda err, msg, _n=name: out.__setitem__(_n, err.code() if err else None))
    assert p.flush(30) == 0
    return out


def _read_results(principal: str) -> dict[str, int | None]:
    """Describe each topic, then fetch at its end: None (readable) or the refusal's error code."""
    c = kafka.consumer(f"liaison-readback-acl-{uuid.uuid4().hex[:6]}",
                       {"enable.partition.eof": True, "log_level": 0}, principal=principal)
    out: dict[str, int | None] = {}
    assign = []
    try:
        for name, topic in TOPICS.items():
            err = c.list_topics(topic, timeout=15).topics[topic].error
            if err is not None:
                out[name] = err.code()  # not even DESCRIBE
            else:
                assign.append(TopicPartition(topic, 0, OFFSET_END))
        by_topic = {v: k for k, v in TOPICS.items()}
        c.assign(assign)
        deadline = time.monotonic() + 30
        while len(out) < len(TOPICS) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.topic() is None:
                continue  # e.g. GROUP_AUTHORIZATION_FAILED for the probe's (unused) group: not a topic verdict
            name = by_topic.get(m.topic())
            if name is None or name in out:
                continue
            if m.error() is None or m.error().code() == KafkaError._PARTITION_EOF:
                out[name] = None
            elif m.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                out[name] = m.error().code()
    finally:
        c.close()
    return out


def test_the_matrix_covers_every_principal_and_every_topic_kind():
    from deploy.acl import principals

    assert set(EXPECTED) == set(principals(load_acls())) | {"admin"}
    prefixes = {t.split(".")[1] for t in TOPICS.values()}
    assert prefixes == {"partner", "internal", "audit", "deadletter", "inbound", "origin", "quarantine", "component",
                        "ingress", "ledger", "deconfliction"}


@pytest.mark.parametrize("principal", list(EXPECTED))
def test_acl_matrix(secured, principal):
    may_read, may_write = EXPECTED[principal]
    writes = _write_results(principal)
    reads = _read_results(principal)
    want_w = {n: (None if n in may_write else KafkaError.TOPIC_AUTHORIZATION_FAILED) for n in TOPICS}
    want_r = {n: (None if n in may_read else KafkaError.TOPIC_AUTHORIZATION_FAILED) for n in TOPICS}
    assert writes == want_w, f"{principal} write"
    assert reads == want_r, f"{principal} read"


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _login(conf: dict) -> tuple[str, str]:
    """Try one metadata request; returns (outcome, everything librdkafka reported: errors and log lines).

    The outcome alone cannot tell a refusal from a closed port (both are _TRANSPORT), so the callers assert the
    text the broker's refusal produces, and a positive control on the same listener shows it was listening."""
    handler = _Lines()
    logger = logging.getLogger(f"test-login-{uuid.uuid4().hex[:8]}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    errors: list[str] = []
    a = AdminClient({"socket.timeout.ms": 3000, "logger": logger, "error_cb": lambda e: errors.append(f"{e.name()}: {e.str()}"),
                     **conf})
    try:
        a.list_topics(timeout=4)
        outcome = "ok"
    except KafkaException as e:
        outcome = e.args[0].name()
    a.poll(0.5)
    return outcome, "\n".join(errors + handler.lines)


def _refused(result: tuple[str, str], evidence: str) -> str:
    outcome, text = result
    assert outcome != "ok", text
    assert "Connection refused" not in text, text  # the listener was there: the broker itself refused
    assert evidence in text, text
    return text


def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(secured):
    s = get_settings()
    bs = s.kafka_bootstrap()
    tls = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "ssl.ca.location": secured.ca_location}
    user, password = secured.credentials("partner-rus")
    # positive control on the same listener, before and after the refusals
    assert _login({"bootstrap.servers": bs, **tls, "sasl.username": user, "sasl.password": password})[0] == "ok"
    # no credentials at all: PLAINTEXT is closed by the broker during the first request (it speaks TLS) ...
    _refused(_login({"bootstrap.servers": bs}), "connection closed by peer")
    # ... and TLS without SASL gets through the handshake, then the broker closes it: no login, no request
    _refused(_login({"bootstrap.servers": bs, "security.protocol": "SSL", "ssl.ca.location": secured.ca_location}),
             "SSL connection closed by peer")
    # a wrong password, an unknown user: the broker's own SCRAM refusal
    scram_refusal = "_AUTHENTICATION: sasl_ssl://"
    text = _refused(_login({"bootstrap.servers": bs, **tls, "sasl.username": user, "sasl.password": password + "x"}),
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                    "SCRAM-SHA-512")
    assert scram_refusal in text
    _refused(_login({"bootstrap.servers": bs, **tls, "sasl.username": "nobody", "sasl.password": "x"}),
             "invalid credentials with SASL mechanism SCRAM-SHA-512")
    # a broker certificate not signed by a CA the client trusts: refused before any password is sent
    _refused(_login({"bootstrap.servers": bs, **{**tls, "ssl.ca.location": "probe"}, "sasl.username": user,
                     "sasl.password": password}), "certificate verify failed")
    assert _login({"bootstrap.servers": bs, **tls, "sasl.username": user, "sasl.password": password})[0] == "ok"


def test_the_controller_listener_is_no_back_door(secured, backend):
    if backend.kind != "local":
        pytest.skip(f"inspects the listener layout and files of the project's own servers; the {backend.kind} backend's servers are not the project's")
    data = json.loads((Path(secured.credentials_dir).parent.parent / "infra.json").read_text())
    controller = [p["ports"]["controller"] for p in data["processes"] if p["kind"] == "kafka"][0]
    bs = f"127.0.0.1:{controller}"
    admin_user, admin_pw = secured.credentials("admin")
    tls = {"security.protocol": "SASL_SSL", "ssl.ca.location": secured.ca_location}
    # positive control: the static controller user logs in (then a client request is not served there)
    ctl_user, ctl_pw = secured.credentials("controller")
    outcome, text = _login({"bootstrap.servers": bs, **tls, "sasl.mechanisms": "PLAIN", "sasl.username": ctl_user,
                            "sasl.password": ctl_pw})
    assert outcome == "_UNSUPPORTED_FEATURE" and "_AUTHENTICATION" not in text, text
    _refused(_login({"bootstrap.servers": bs}), "connection closed by peer")  # no PLAINTEXT
    # the super user's own password does not open it: SCRAM is not offered, PLAIN knows only the controller
    _refused(_login({"bootstrap.servers": bs, **tls, "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": admin_user,
                     "sasl.password": admin_pw}), "Unsupported SASL mechanism: broker's supported mechanisms: PLAIN")
    _refused(_login({"bootstrap.servers": bs, **tls, "sasl.mechanisms": "PLAIN", "sasl.username": admin_user,
                     "sasl.password": admin_pw}), "Authentication failed: Invalid username or password")


def test_secrets_are_private_and_never_on_a_command_line(secured, backend):
    if backend.kind != "local":
        pytest.skip(f"inspects the listener layout and files of the project's own servers; the {backend.kind} backend's servers are not the project's")
    creds = Path(secured.credentials_dir)
    shape_dir = creds.parent
    files = list(creds.glob("*.json")) + [shape_dir / "tls" / n for n in ("broker.p12", "broker.p12.password")]
    files += list(shape_dir.glob("kafka-*/server.properties"))
    assert len(files) > 10
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    passwords = [json.loads(f.read_text())["password"] for f in creds.glob("*.json")]
    data = json.loads((shape_dir.parent / "infra.json").read_text())
    for p in data["processes"]:
        cmdline = Path(f"/proc/{p['pid']}/cmdline").read_bytes().decode(errors="replace")
        assert not any(pw in cmdline for pw in passwords), p["name"]
    res = subprocess.run(["git", "check-ignore", "-q", str(creds / "admin.json")], cwd=REPO_ROOT)
    assert res.returncode == 0, "credentials must be git-ignored"


# ----------------------------------------------------------------------------------------- the officer feed


def _subscribe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([LIAISON, "subscribe", *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ)


def test_the_rus_officer_cannot_read_usa_feed_one_clear_line(secured):
    res = _subscribe("--partner", "USA", "--as", "RUS", "--idle-exit", "5")
    assert res.returncode == 3
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "not authorized" in lines[0] and "partner-rus" in lines[0] and "liaison.partner.usa." in lines[0]
    assert res.stdout == ""
    # one named topic, and USA's feed with RUS's credentials file: the same refusal
    res = _subscribe("--partner", "RUS", "--topics", TOPICS["usa"], "--idle-exit", "5")
    assert res.returncode == 3 and f"may not read topic {TOPICS['usa']}" in res.stderr
    res = _subscribe("--partner", "USA", "--credentials", str(secured.credentials_file("partner-rus")),
                     "--idle-exit", "5")
    assert res.returncode == 3 and "partner-rus" in res.stderr and "liaison.partner.usa." in res.stderr
    # and internal topics are out of reach of any officer
    res = _subscribe("--partner", "RUS", "--topics", TOPICS["naval"], "--idle-exit", "5")
    assert res.returncode == 3 and TOPICS["naval"] in res.stderr


def test_a_wrong_password_is_a_failed_login(secured, tmp_path):
    data = json.loads(secured.credentials_file("partner-rus").read_text())
    data["password"] += "-wrong"
    bad = tmp_path / "rus.json"
    bad.write_text(json.dumps(data))
    res = _subscribe("--partner", "RUS", "--credentials", str(bad), "--idle-exit", "3", timeout=60)
    assert res.returncode == 4
    assert "authentication failed for partner-rus" in res.stderr


def test_the_rus_officer_reads_the_rus_feed_as_forwarded(secured, bus):
    from producers.publisher import Publisher
    from producers.simulate import Simulator

    import schemas

    from core.topics import topic_for

    group = f"liaison-forwarder-test-{uuid.uuid4().hex[:8]}"  # inside the forwarder principal's group prefix
    seed_group(group, end_offsets([topic_for(t) for t in schemas.MESSAGE_TYPES]))
    sim = Simulator({"air", "naval"}, seed=77, start=dt.datetime.now(dt.timezone.utc))
    with Publisher() as pub:
        for _, m in sim.events(100.0, 2.0):
            pub.publish(m)
    fwd = subprocess.run([LIAISON, "forward", "--group", group, "--instance", group, "--max-idle", "4"],
                         capture_output=True, text=True, timeout=300, env=os.environ)
    assert fwd.returncode == 0, fwd.stderr[-2000:]

    officer_group = f"liaison.partner.rus.officer.test-{uuid.uuid4().hex[:6]}"
    res = _subscribe("--partner", "RUS", "--since", "5m", "--json", "--idle-exit", "6", "--group", officer_group)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(ln) for ln in res.stdout.splitlines()]
    decoded = [r for r in rows if "value" in r]
    assert decoded and all(r["topic"].startswith("liaison.partner.rus.") for r in rows)
    tracks = [r for r in decoded if r["type"] == "AirTrack"]
    assert tracks and all(r["value"]["callsign"] for r in tracks)
    assert f"offsets committed for group {officer_group}" in res.stderr
    # the officer's group committed its position (read as admin)
    committed = committed_offsets(officer_group, sorted({r["topic"] for r in rows}))
    assert sum(committed.values()) > 0
    # the human-readable feed: one line per record, time, type and the type's key fields
    res = _subscribe("--partner", "RUS", "--since", "5m", "--max-records", "10", "--idle-exit", "6",
                     "--topics", "liaison.partner.rus.air.track", "--group", officer_group + "-h")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if "undecodable" not in ln]  # the matrix's probe records
    assert lines and all(" AirTrack " in ln and "callsign=" in ln and "alt=" in ln and "pos=" in ln
                         for ln in lines), res.stdout
    # Ctrl-C: a clean stop that commits what was read
    live_group = officer_group + "-live"
    p = subprocess.Popen([LIAISON, "subscribe", "--partner", "RUS", "--since", "5m", "--group", live_group],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    first = p.stdout.readline()
    assert first.strip(), p.stderr.read() if p.poll() is not None else "no output"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "Traceback" not in err and f"offsets committed for group {live_group}" in err
    assert sum(committed_offsets(live_group, partner_topics("RUS")).values()) > 0


# ----------------------------------------------------------------------------------------- acl apply


def _acl_apply(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LIAISON, "acl", "apply", *args], capture_output=True, text=True, timeout=120,
                          env=os.environ)


def test_acl_apply_is_idempotent_reports_drift_and_prunes_only_when_asked(secured):
    admin = kafka.admin()
    declared = load_acls()
    # a declared ACL lost on the broker is created again; a second run has nothing to do
    lost = Acl("producer-intel", "topic", "liaison.internal.intel.", "prefixed", "WRITE")
    assert lost in declared
    from confluent_kafka.admin import AclBindingFilter

    b = to_binding(lost)
    for fut in admin.delete_acls([AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                                                   b.operation, b.permission_type)]).values():
        fut.result()
    res = _acl_apply()
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"created {lost}" in res.stdout
    res = _acl_apply()
    assert res.returncode == 0 and res.stdout.startswith("nothing to do"), res.stdout

    # an ACL the file does not declare: printed as drift, kept; --prune removes it
    extra = Acl(f"drift-{uuid.uuid4().hex[:6]}", "topic", "liaison.internal.", "prefixed", "READ")
    for fut in admin.create_acls([to_binding(extra)]).values():
        fut.result()
    res = _acl_apply()
    assert res.returncode == 3
    assert f"drift: {extra}" in res.stdout
    assert extra in broker_acls(admin)
    res = _acl_apply("--prune")
    assert res.returncode == 0 and f"pruned {extra}" in res.stdout
    assert extra not in broker_acls(admin)
    res = _acl_apply()
    assert res.returncode == 0 and "nothing to do" in res.stdout
    assert broker_acls(admin) == declared


def test_acl_apply_with_an_invalid_file_is_one_line(secured, tmp_path):
    f = tmp_path / "acls.yaml"
    f.write_text("principals:\n  x:\n    - {topic: t, operations: [FLY]}\n")
    res = _acl_apply("--file", str(f))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "FLY" in lines[0] and str(f) in lines[0]

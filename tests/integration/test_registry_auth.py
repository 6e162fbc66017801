"""The registry shows a partner only what it is given: on the real servers, through the registry gateway.

A partner's credentials (the SCRAM user's password, as HTTP basic auth through confluent-kafka's
SchemaRegistryClient) read that partner's derived subjects and their schemas, and nothing else: not the
internal subjects (whose schemas name the withheld fields), not another partner's, not the internal schema by
id; the subject list shows its own subjects only. Wrong or missing credentials: 401. Service principals read
everything. Apicurio itself, behind the gateway, refuses whoever does not hold the gateway's token, and speaks
HTTPS only.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from core import REPO_ROOT, serde
from core.topics import INBOUND_PREFIX, PARTNER_PREFIX, partner_topic, topic_for
from release import SecretStore, load_policies

TYPE = "AirTrack"
INTERNAL = serde.value_subject(topic_for(TYPE))
RUS = serde.value_subject(partner_topic("RUS", topic_for(TYPE)))
USA = serde.value_subject(partner_topic("USA", topic_for(TYPE)))
#: a partner's own subjects: its derived feed and the inbound schemas it publishes to us with
RUS_OWN = (f"{PARTNER_PREFIX}rus.", f"{INBOUND_PREFIX}rus.")
KEYS = {"RUS": bytes(range(32)), "USA": bytes(range(100, 132))}


@pytest.fixture(scope="module")
def reg(backend, bus):
    """Both partners' derived AirTrack subjects registered the way the forwarder does; the infra state."""
    if backend.kind != "local":
        pytest.skip(f"the registry gateway belongs to the project's own servers; this run uses the {backend.kind} "
                    f"backend, whose registry has no gateway")
    from tests.conftest import TEST_STATE

    data = json.loads((Path(TEST_STATE).resolve() / "infra.json").read_text())
    assert data["registry"]["auth"] == "basic"
    admin = serde.registry_client()  # LIAISON_PRINCIPAL's default: admin
    policies = load_policies(REPO_ROOT / "deploy" / "policies", SecretStore.in_memory(KEYS))
    ids = {s: serde.register_encoder(admin, s, policies[code].derived_schema(TYPE)).schema_id
           for s, code in ((RUS, "RUS"), (USA, "USA"))}
    ids[INTERNAL] = admin.get_latest_version(INTERNAL).schema_id
    assert len(set(ids.values())) == 3  # three different schemas, three ids
    return {"data": data, "ids": ids, "ca": data["registry"]["ssl_ca_location"],
            "creds": Path(data["security"]["credentials_dir"])}


def _password(reg, user: str) -> str:
    return json.loads((reg["creds"] / f"{user}.json").read_text())["password"]


def _client(reg, user: str | None, password: str | None = None) -> SchemaRegistryClient:
    """A Confluent client as any partner would configure it (no project code involved)."""
    conf = {"url": reg["data"]["schema_registry_url"], "ssl.ca.location": reg["ca"]}
    if user:
        conf["basic.auth.user.info"] = f"{user}:{password if password is not None else _password(reg, user)}"
    return SchemaRegistryClient(conf)


def _refused(call, status: int) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as e:
        call()
    assert e.value.http_status_code == status, e.value
    return e.value


def _get(url: str, ca: str | None, headers: dict | None = None) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10,
                                    context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_partner_reads_its_own_derived_subject_and_its_schema_by_id(reg):
    rus = _client(reg, "partner-rus")
    latest = rus.get_latest_version(RUS)
    assert latest.subject == RUS and latest.schema_id == reg["ids"][RUS]
    schema = rus.get_schema(reg["ids"][RUS])
    assert json.loads(schema.schema_str)["namespace"].startswith("liaison.bus.partner.rus")
    assert rus.get_version(RUS, latest.version).schema_id == reg["ids"][RUS]
    assert rus.get_versions(RUS) == [latest.version]
    # what the subject list and the id's subjects show a partner: its own subjects only
    subjects = rus.get_subjects()
    assert RUS in subjects and all(s.startswith(RUS_OWN) for s in subjects), subjects
    assert rus.get_subjects_by_schema_id(reg["ids"][RUS]) == [RUS]


def test_partner_deserializes_its_feed_with_avro_deserializer(reg):
    """confluent-kafka's AvroDeserializer with the partner's credentials decodes a record of its feed (a real
    released view, framed with the derived schema's id as the forwarder writes it)."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.schema_registry import topic_subject_name_strategy

    from release import decide
    from schemas.examples import example
    from schemas.models import to_avro

    policy = load_policies(REPO_ROOT / "deploy" / "policies", SecretStore.in_memory(KEYS))["RUS"]
    decision = decide(TYPE, to_avro(example(TYPE)), policy)
    assert decision.decision == "RELEASE"
    framed = serde.Encoder(reg["ids"][RUS], policy.derived_schema(TYPE)).encode(decision.released)
    ctx = SerializationContext(partner_topic("RUS", topic_for(TYPE)), MessageField.VALUE)
    deser = AvroDeserializer(_client(reg, "partner-rus"), conf={"subject.name.strategy": topic_subject_name_strategy})
    out = deser(framed, ctx)
    assert out["track_id"] == decision.released["track_id"] and set(out) == set(decision.released)
    # and the project's own helper, as the partner's principal
    assert serde.avro_deserializer(principal="partner-rus")(framed, ctx) == out


def test_partner_is_refused_internal_and_other_partners_subjects_and_ids(reg):
    rus = _client(reg, "partner-rus")
    e = _refused(lambda: rus.get_latest_version(INTERNAL), 403)
    assert e.error_code == 40301
    _refused(lambda: rus.get_latest_version(USA), 403)
    _refused(lambda: rus.get_versions(INTERNAL), 403)
    _refused(lambda: rus.get_schema(reg["ids"][INTERNAL]), 403)
    _refused(lambda: rus.get_schema(reg["ids"][USA]), 403)
    _refused(lambda: rus.get_subjects_by_schema_id(reg["ids"][INTERNAL]), 403)
    _refused(lambda: rus.get_schema(987654), 403)  # an id that does not exist: the same answer
    # read-only: no registration, not even under its own subject; no compatibility change, no delete
    from confluent_kafka.schema_registry import Schema

    _refused(lambda: rus.register_schema(RUS, Schema('{"type": "string"}', "AVRO")), 403)
    _refused(lambda: rus.set_compatibility(RUS, "NONE"), 403)
    _refused(lambda: rus.delete_subject(RUS), 403)
    # USA likewise does not see RUS's
    usa = _client(reg, "partner-usa")
    assert usa.get_latest_version(USA).schema_id == reg["ids"][USA]
    _refused(lambda: usa.get_schema(reg["ids"][RUS]), 403)
    assert RUS not in usa.get_subjects() and USA in usa.get_subjects()


def test_the_raw_subject_list_holds_only_the_partners_subjects(reg):
    url = reg["data"]["schema_registry_url"]
    import base64

    auth = base64.b64encode(f"partner-rus:{_password(reg, 'partner-rus')}".encode()).decode()
    status, body = _get(f"{url}/subjects", reg["ca"], {"Authorization": f"Basic {auth}"})
    assert status == 200
    subjects = json.loads(body)
    assert RUS in subjects and all(s.startswith(RUS_OWN) for s in subjects), subjects
    for path in ("/schemas/ids/%d/versions" % reg["ids"][RUS], "/schemas/ids/%d/subjects" % reg["ids"][RUS]):
        status, body = _get(url + path, reg["ca"], {"Authorization": f"Basic {auth}"})
        assert status == 200 and "liaison.internal" not in body.decode() and "usa" not in body.decode()
    # a path trick is refused, not resolved
    for path in ("/subjects/liaison.partner.rus.x%2F..%2F..%2Fschemas/versions", "/subjects/../subjects",
                 f"/subjects/{RUS};x/versions", "/apis/registry/v3/groups"):
        status, body = _get(url + path, reg["ca"], {"Authorization": f"Basic {auth}"})
        assert status in (403, 404), (path, status, body)
        if status == 404:  # only for a path outside the API the HTTP stack itself rejects
            assert b"liaison.internal" not in body


def test_wrong_or_missing_credentials_are_401_with_a_basic_challenge(reg):
    e = _refused(lambda: _client(reg, "partner-rus", "not-the-password").get_subjects(), 401)
    assert e.error_code == 40101
    _refused(lambda: _client(reg, "partner-nobody", "x").get_subjects(), 401)
    _refused(lambda: _client(reg, None).get_subjects(), 401)
    status, _ = _get(reg["data"]["schema_registry_url"] + "/subjects", reg["ca"])
    assert status == 401
    req = urllib.request.Request(reg["data"]["schema_registry_url"] + "/subjects")
    try:
        urllib.request.urlopen(req, timeout=10, context=ssl.create_default_context(cafile=reg["ca"]))
    except urllib.error.HTTPError as e:
        assert e.code == 401 and e.headers["WWW-Authenticate"].startswith("Basic")
    else:
        pytest.fail("no credentials must be refused")


def test_services_read_everything(reg):
    for user in ("admin", "forwarder"):
        c = _client(reg, user)
        assert {INTERNAL, RUS, USA} <= set(c.get_subjects())
        assert c.get_schema(reg["ids"][INTERNAL]).schema_str
        assert c.get_latest_version(USA).schema_id == reg["ids"][USA]
    # the project's client sends the process principal's credentials by itself
    assert INTERNAL in serde.registry_client().get_subjects()
    assert INTERNAL in serde.registry_client(principal="forwarder").get_subjects()
    with pytest.raises(SchemaRegistryError) as e:
        serde.registry_client(principal="partner-rus").get_latest_version(INTERNAL)
    assert e.value.http_status_code == 403


def test_refusals_are_logged_with_principal_method_and_path(reg):
    log = Path(next(p["log"] for p in reg["data"]["processes"] if p["name"] == "registry-gateway"))
    _refused(lambda: _client(reg, "partner-rus").get_latest_version(USA), 403)
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
    refusals = [ln for ln in lines if ln.get("event") == "registry.refused"]
    assert any(r["principal"] == "partner-rus" and r["method"] == "GET" and USA in r["path"] and r["status"] == 403
               for r in refusals), refusals[-3:]
    assert all(_password(reg, "partner-rus") not in ln for ln in log.read_text().splitlines())


def test_apicurio_itself_refuses_whoever_lacks_the_gateways_token(reg):
    """Apicurio's port, reached directly: HTTPS only, and its API answers 401 without the gateway's token, to a
    token signed with another key and to the partner's basic credentials; the gateway's token is the positive
    control."""
    from deploy.infra.gateway import token

    upstream = reg["data"]["registry"]["upstream"]
    ca = reg["ca"]
    status, _ = _get(f"{upstream}/subjects", ca)
    assert status == 401
    other_key = token.generate_key()
    forged, _ = token.mint(other_key)
    assert _get(f"{upstream}/subjects", ca, {"Authorization": f"Bearer {forged}"})[0] == 401
    import base64

    auth = base64.b64encode(f"admin:{_password(reg, 'admin')}".encode()).decode()
    assert _get(f"{upstream}/subjects", ca, {"Authorization": f"Basic {auth}"})[0] == 401
    assert _get(f"{upstream}/schemas/ids/{reg['ids'][INTERNAL]}", ca)[0] == 401
    # plain HTTP on the same port: no HTTP listener, the TLS server drops it
    port = int(upstream.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /apis/ccompat/v7/subjects HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.settimeout(5)
        try:
            answer = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert b"liaison." not in answer and not answer.startswith(b"HTTP/1.1 200")
    # positive control: the gateway's own token opens it
    key = Path(reg["data"]["registry"]["token_key"]).read_bytes()
    good, _ = token.mint(key, lifetime=60)
    status, body = _get(f"{upstream}/subjects", ca, {"Authorization": f"Bearer {good}"})
    assert status == 200 and INTERNAL in json.loads(body)

"""The registry gateway's authorisation (a pure function of principal, method, path, query), its password hashes,
its tokens, and the service on a fake Apicurio (no servers)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from deploy.infra.gateway import policy, token, users
from deploy.infra.gateway.policy import API_PREFIX, authorize

pytestmark = pytest.mark.unit

RUS = "liaison.partner.rus.air.track-value"
USA = "liaison.partner.usa.air.track-value"
INTERNAL = "liaison.internal.air.track-value"
RUS_IN = "liaison.inbound.rus.air.track-value"
USA_IN = "liaison.inbound.usa.air.track-value"
NAVAL = "liaison.component.naval.air.track-value"
NAVAL_ORIGIN = "liaison.component.naval.origin.rus.air.track-value"
AIR = "liaison.component.air.naval.track-value"
ORIGIN = "liaison.origin.rus.air.track-value"


def allowed(principal, method, path, query=()):
    return authorize(principal, method, API_PREFIX + path, query).allow


@pytest.mark.parametrize("principal", ["admin", "forwarder", "producer-air", "lag-monitor"])
@pytest.mark.parametrize("method,path", [
    ("GET", "/subjects"), ("GET", f"/subjects/{INTERNAL}/versions/latest"), ("GET", "/schemas/ids/3"),
    ("POST", f"/subjects/{INTERNAL}/versions"), ("PUT", f"/config/{INTERNAL}"), ("DELETE", f"/subjects/{RUS}"),
    ("POST", f"/compatibility/subjects/{INTERNAL}/versions/1"), ("GET", "/mode"), ("POST", f"/subjects/{USA}"),
])
def test_service_principals_get_the_whole_confluent_api(principal, method, path):
    d = authorize(principal, method, API_PREFIX + path)
    assert d.allow and d.schema_id is None and d.filter is None


@pytest.mark.parametrize("path,schema_id,filt", [
    ("/subjects", None, policy.NAMES),
    (f"/subjects/{RUS}/versions", None, None),
    (f"/subjects/{RUS}/versions/latest", None, None),
    (f"/subjects/{RUS}/versions/1", None, None),
    (f"/subjects/{RUS}/versions/-1", None, None),
    (f"/subjects/{RUS}/versions/12/schema", None, None),
    ("/schemas/ids/7", 7, None),
    ("/schemas/ids/7/schema", 7, None),
    ("/schemas/ids/7/subjects", 7, policy.NAMES),
    ("/schemas/ids/7/versions", 7, policy.VERSIONS),
    ("/schemas/types", None, None),
    ("/config", None, None),
    (f"/config/{RUS}", None, None),
])
def test_a_partner_reads_its_own_subjects_and_ids_under_them(path, schema_id, filt):
    d = authorize("partner-rus", "GET", API_PREFIX + path)
    assert d.allow, d.reason
    assert d.schema_id == schema_id and d.filter == filt


@pytest.mark.parametrize("method,path", [
    # internal subjects name the withheld fields; another partner's subjects are that partner's business
    ("GET", f"/subjects/{INTERNAL}/versions/latest"),
    ("GET", f"/subjects/{INTERNAL}/versions"),
    ("GET", f"/subjects/{USA}/versions/latest"),
    ("GET", f"/subjects/{USA}/versions/1/schema"),
    ("GET", f"/config/{INTERNAL}"),
    ("GET", f"/config/{USA}"),
    # a prefix that only looks like its own
    ("GET", "/subjects/liaison.partner.russia.air.track-value/versions/latest"),
    ("GET", "/subjects/liaison.partner.rus./versions/latest"),
    ("GET", "/subjects/liaison.partner.rusair.track-value/versions"),
    # read-only, even on its own subjects
    ("POST", f"/subjects/{RUS}/versions"),
    ("POST", f"/subjects/{RUS}"),
    ("PUT", f"/config/{RUS}"),
    ("DELETE", f"/subjects/{RUS}"),
    ("DELETE", f"/subjects/{RUS}/versions/1"),
    ("POST", f"/compatibility/subjects/{RUS}/versions/latest"),
    ("HEAD", "/subjects"),
    ("OPTIONS", "/subjects"),
    # everything else of the API
    ("GET", "/mode"), ("GET", f"/mode/{RUS}"), ("GET", "/contexts"), ("GET", "/exporters"), ("GET", ""),
    ("GET", "/"), ("GET", f"/subjects/{RUS}"), ("GET", f"/subjects/{RUS}/versions/1/referencedby"),
    ("GET", f"/subjects/{RUS}/versions/1/schema/x"), ("GET", f"/subjects/{RUS}/versions/first"),
    ("GET", "/schemas/ids/x"), ("GET", "/schemas/ids/7/other"), ("GET", "/schemas/guids/abc"),
    ("GET", "/schemas"), ("GET", "/schemas/ids/12345678901"),
    # encodings, matrix parameters, dot-segments, empty segments: never judged one way and read another
    ("GET", f"/subjects/{RUS}%2F..%2F..%2Fschemas%2Fids%2F1/versions"),
    ("GET", "/subjects/liaison.partner.rus.x%2F..%2F..%2F/versions"),
    ("GET", "/%73ubjects"),
    ("GET", f"/subjects/{RUS};v=1/versions"),
    ("GET", f"/subjects/{RUS}/versions/..%2F..%2F..%2Fschemas"),
    ("GET", "/subjects/../schemas/ids/1"),
    ("GET", f"/subjects/{RUS}/versions/"),
    ("GET", "//subjects"),
    ("GET", f"/subjects/{RUS}/./versions"),
])
def test_a_partner_is_refused_everything_else(method, path):
    d = authorize("partner-rus", method, API_PREFIX + path)
    assert not d.allow, (method, path, d)
    assert d.reason


@pytest.mark.parametrize("principal", ["admin", "partner-rus"])
@pytest.mark.parametrize("path", ["/apis/registry/v3/groups", "/apis/ccompat/v6/subjects", "/ui", "/",
                                  "/apis/ccompat/v7x/subjects", "/apis/ccompat/v7/../../registry/v3/groups",
                                  "/apis/ccompat/v7/%2e%2e/%2e%2e/registry/v3/groups"])
def test_nothing_outside_the_confluent_api(principal, path):
    assert not authorize(principal, "GET", path).allow


def test_partner_query_parameters_are_an_allow_list():
    assert allowed("partner-rus", "GET", "/subjects", ["deleted", "deleted_only", "offset", "limit"])
    assert allowed("partner-rus", "GET", "/schemas/ids/7", ["subject", "format"])
    d = authorize("partner-rus", "GET", API_PREFIX + "/subjects", ["permanent"])
    assert not d.allow and "permanent" in d.reason
    assert allowed("admin", "DELETE", f"/subjects/{RUS}", ["permanent"])


def test_a_principal_named_partner_without_a_code_is_a_partner_with_nothing():
    for p in ("partner-", "partner-RUS", "partner-r.us"):
        assert not allowed(p, "GET", f"/subjects/{RUS}/versions")
        assert not allowed(p, "POST", f"/subjects/{RUS}/versions")


def test_own_subject_and_filters():
    assert policy.own_subject("partner-rus", RUS)
    assert not policy.own_subject("partner-rus", USA)
    assert not policy.own_subject("partner-rus", "liaison.partner.rus.")
    assert not policy.own_subject("admin", RUS)
    listing = [RUS, USA, INTERNAL, "liaison.partner.rus.naval.track-value", 7, None]
    assert policy.filter_response("partner-rus", policy.NAMES, listing) == [RUS, "liaison.partner.rus.naval.track-value"]
    assert policy.filter_response("admin", policy.NAMES, listing) == listing
    versions = [{"subject": INTERNAL, "version": 1}, {"subject": RUS, "version": 2}, {"version": 3}, "x"]
    assert policy.filter_response("partner-rus", policy.VERSIONS, versions) == [{"subject": RUS, "version": 2}]
    assert policy.filter_response("partner-rus", policy.NAMES, {"not": "a list"}) == []
    assert policy.owns_schema("partner-rus", versions)
    assert not policy.owns_schema("partner-usa", versions)


# ------------------------------------------------------------------------ inbound subjects, component principals

#: Every path a recipient may read, for one of its subjects S: (path, schema id check, filter).
def _reads(subject):
    return [
        (f"/subjects/{subject}/versions", None, None),
        (f"/subjects/{subject}/versions/latest", None, None),
        (f"/subjects/{subject}/versions/1", None, None),
        (f"/subjects/{subject}/versions/-1/schema", None, None),
        (f"/config/{subject}", None, None),
    ]


@pytest.mark.parametrize("path,schema_id,filt", _reads(RUS_IN) + _reads("liaison.inbound.rus.intel.foreign-fighter-value"))
def test_a_partner_reads_its_own_inbound_subjects(path, schema_id, filt):
    """The exchange format of what it sends us: a partner's publisher looks up the inbound schema's id."""
    d = authorize("partner-rus", "GET", API_PREFIX + path)
    assert d.allow, d.reason
    assert d.schema_id == schema_id and d.filter == filt


@pytest.mark.parametrize("method,path", [
    # another partner's inbound subjects, the partner-origin subjects (what the guard accepted), component feeds
    ("GET", f"/subjects/{USA_IN}/versions/latest"),
    ("GET", f"/config/{USA_IN}"),
    ("GET", f"/subjects/{ORIGIN}/versions/latest"),
    ("GET", f"/subjects/{NAVAL}/versions/latest"),
    ("GET", f"/subjects/{NAVAL_ORIGIN}/versions/latest"),
    # prefixes that only look like its own
    ("GET", "/subjects/liaison.inbound.russia.air.track-value/versions/latest"),
    ("GET", "/subjects/liaison.inbound.rus./versions/latest"),
    ("GET", "/subjects/liaison.inbound.rusair.track-value/versions"),
    ("GET", "/subjects/liaison.inbound.rus/versions"),
    # read-only: a partner never registers, changes or deletes the format it must send in
    ("POST", f"/subjects/{RUS_IN}/versions"),
    ("POST", f"/subjects/{RUS_IN}"),
    ("PUT", f"/config/{RUS_IN}"),
    ("DELETE", f"/subjects/{RUS_IN}"),
    ("POST", f"/compatibility/subjects/{RUS_IN}/versions/latest"),
    ("GET", f"/subjects/{RUS_IN}"),
    ("GET", f"/subjects/{RUS_IN}%2F..%2F..%2Fschemas%2Fids%2F1/versions"),
])
def test_a_partner_is_refused_other_inbound_and_origin_subjects(method, path):
    d = authorize("partner-rus", method, API_PREFIX + path)
    assert not d.allow, (method, path, d)
    assert d.reason


@pytest.mark.parametrize("path,schema_id,filt", [
    ("/subjects", None, policy.NAMES),
    *_reads(NAVAL), *_reads(NAVAL_ORIGIN),
    ("/schemas/ids/7", 7, None),
    ("/schemas/ids/7/schema", 7, None),
    ("/schemas/ids/7/subjects", 7, policy.NAMES),
    ("/schemas/ids/7/versions", 7, policy.VERSIONS),
    ("/schemas/types", None, None),
    ("/config", None, None),
])
def test_a_component_reads_its_own_feed_subjects(path, schema_id, filt):
    """`liaison subscribe` for a component (principal component-<name>) decodes its feed like an officer."""
    d = authorize("component-naval", "GET", API_PREFIX + path)
    assert d.allow, d.reason
    assert d.schema_id == schema_id and d.filter == filt


@pytest.mark.parametrize("method,path", [
    # need-to-know inside our side: another component's feed, internal, partner, inbound and origin subjects
    ("GET", f"/subjects/{AIR}/versions/latest"),
    ("GET", f"/subjects/{INTERNAL}/versions/latest"),
    ("GET", f"/config/{INTERNAL}"),
    ("GET", f"/subjects/{RUS}/versions/latest"),
    ("GET", f"/subjects/{RUS_IN}/versions/latest"),
    ("GET", f"/subjects/{ORIGIN}/versions/latest"),
    ("GET", "/subjects/liaison.component.navalx.air.track-value/versions/latest"),
    ("GET", "/subjects/liaison.component.naval./versions/latest"),
    # read-only, even on its own subjects; nothing else of the API
    ("POST", f"/subjects/{NAVAL}/versions"),
    ("PUT", f"/config/{NAVAL}"),
    ("DELETE", f"/subjects/{NAVAL}"),
    ("POST", f"/compatibility/subjects/{NAVAL}/versions/latest"),
    ("GET", "/mode"), ("GET", "/contexts"), ("GET", f"/subjects/{NAVAL}"),
    ("GET", f"/subjects/{NAVAL}/./versions"), ("GET", f"/subjects/{NAVAL};v=1/versions"),
])
def test_a_component_is_refused_everything_else(method, path):
    d = authorize("component-naval", method, API_PREFIX + path)
    assert not d.allow, (method, path, d)
    assert d.reason


def test_a_principal_named_component_without_a_name_is_a_component_with_nothing():
    for p in ("component-", "component-NAVAL", "component-na.val"):
        assert policy.is_restricted(p) and policy.own_prefixes(p) == ()
        assert not allowed(p, "GET", f"/subjects/{NAVAL}/versions")
        assert not allowed(p, "GET", "/subjects")
        assert not allowed(p, "POST", f"/subjects/{NAVAL}/versions")


def test_own_prefixes_and_filters_of_inbound_and_component_subjects():
    assert policy.own_prefixes("partner-rus") == ("liaison.partner.rus.", "liaison.inbound.rus.")
    assert policy.own_prefixes("component-naval") == ("liaison.component.naval.",)
    assert policy.own_prefixes("admin") == () and not policy.is_restricted("admin")
    assert policy.own_subject("partner-rus", RUS_IN) and not policy.own_subject("partner-usa", RUS_IN)
    assert not policy.own_subject("partner-rus", ORIGIN)
    assert policy.own_subject("component-naval", NAVAL_ORIGIN) and not policy.own_subject("component-air", NAVAL)
    listing = [RUS, USA, RUS_IN, USA_IN, ORIGIN, INTERNAL, NAVAL, NAVAL_ORIGIN, AIR]
    assert policy.filter_response("partner-rus", policy.NAMES, listing) == [RUS, RUS_IN]
    assert policy.filter_response("component-naval", policy.NAMES, listing) == [NAVAL, NAVAL_ORIGIN]
    versions = [{"subject": s, "version": 1} for s in listing]
    assert policy.filter_response("component-air", policy.VERSIONS, versions) == [{"subject": AIR, "version": 1}]
    assert policy.owns_schema("partner-rus", [{"subject": RUS_IN, "version": 3}])
    assert not policy.owns_schema("component-naval", [{"subject": INTERNAL, "version": 3}])


# ------------------------------------------------------------------------------------ password hashes


def test_users_file_holds_only_salted_scrypt_hashes(tmp_path):
    from deploy.infra.security import write_private

    f = tmp_path / "users.json"
    users.write_users(f, {"partner-rus": "s3cret-rus", "admin": "s3cret-admin"}, write_private)
    text = f.read_text()
    assert "s3cret" not in text
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    data = users.load_users(f)
    assert data["scrypt"] == users.SCRYPT and sorted(data["users"]) == ["admin", "partner-rus"]
    a, b = data["users"]["admin"], data["users"]["partner-rus"]
    assert a["salt"] != b["salt"]
    v = users.Verifier(data)
    assert v.verify("partner-rus", "s3cret-rus")
    assert v.remembered("partner-rus", "s3cret-rus")  # second request: no scrypt
    assert not v.verify("partner-rus", "s3cret-admin")
    assert not v.verify("partner-usa", "s3cret-rus")
    assert not v.remembered("partner-rus", "wrong")


def test_token_is_an_rs256_jwt_for_apicurio(tmp_path):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    pem = token.generate_key()
    jwt, exp = token.mint(pem, lifetime=60, now=1000.0)
    header, payload, sig = jwt.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    claims = json.loads(base64.urlsafe_b64decode(pad(payload)))
    assert json.loads(base64.urlsafe_b64decode(pad(header)))["alg"] == "RS256"
    assert claims["iss"] == token.ISSUER and claims["aud"] == token.AUDIENCE and claims["exp"] == 1060 == exp
    pub = serialization.load_der_public_key(base64.b64decode(token.public_key_b64(pem)))
    pub.verify(base64.urlsafe_b64decode(pad(sig)), f"{header}.{payload}".encode(), padding.PKCS1v15(),
               hashes.SHA256())


# ------------------------------------------------------------------------------------ the service


class FakeApicurio:
    """Answers as Apicurio would, and records what reached it (with which authorization)."""

    def __init__(self):
        self.seen: list[tuple[str, str, str]] = []
        self.subjects = {INTERNAL: 1, RUS: 2, USA: 3, RUS_IN: 4, NAVAL: 5, AIR: 6}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.raw_path.decode(), request.headers.get("authorization", "")))
        path = request.url.path.removeprefix(API_PREFIX)
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return httpx.Response(401, json={"error_code": 0, "message": "User is not authenticated."})
        if path == "/subjects":
            return httpx.Response(200, json=list(self.subjects))
        if path.startswith("/schemas/ids/") and path.endswith("/versions"):
            sid = int(path.split("/")[3])
            found = [{"subject": s, "version": 1} for s, i in self.subjects.items() if i == sid]
            return httpx.Response(200 if found else 404, json=found or {"error_code": 40403})
        if path.startswith("/schemas/ids/"):
            return httpx.Response(200, json={"schema": f'"schema {path.split("/")[3]}"'})
        if path == "/schemas/types":
            return httpx.Response(200, json=["AVRO"])
        return httpx.Response(200, json={"path": path, "method": request.method})


@pytest.fixture()
def gateway(tmp_path):
    from starlette.testclient import TestClient

    from deploy.infra.gateway.app import GatewayConfig, make_app
    from deploy.infra.security import write_private

    users.write_users(tmp_path / "users.json", {"partner-rus": "pw-rus", "admin": "pw-admin",
                                                "component-naval": "pw-naval"}, write_private)
    write_private(tmp_path / "key.pem", token.generate_key())
    cfg = GatewayConfig("127.0.0.1", 0, "https://apicurio.test", "", str(tmp_path / "users.json"),
                        str(tmp_path / "key.pem"))
    fake = FakeApicurio()
    app = make_app(cfg, transport=httpx.MockTransport(fake))
    with TestClient(app, base_url="https://gateway.test") as client:
        yield client, fake


def test_service_answers_401_403_and_proxies_with_its_token(gateway):
    client, fake = gateway
    r = client.get(f"{API_PREFIX}/subjects")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert r.json()["error_code"] == 40101
    assert client.get(f"{API_PREFIX}/subjects", auth=("partner-rus", "wrong")).status_code == 401
    assert fake.seen == []  # nothing reached the registry
    r = client.get(f"{API_PREFIX}/subjects", auth=("partner-rus", "pw-rus"))
    assert r.status_code == 200 and r.json() == [RUS, RUS_IN]
    r = client.get(f"{API_PREFIX}/subjects", auth=("admin", "pw-admin"))
    assert r.json() == [INTERNAL, RUS, USA, RUS_IN, NAVAL, AIR]
    assert all(auth.startswith("Bearer ") and "pw-" not in auth for _, _, auth in fake.seen)
    r = client.get(f"{API_PREFIX}/subjects/{INTERNAL}/versions/latest", auth=("partner-rus", "pw-rus"))
    assert r.status_code == 403 and r.json()["error_code"] == 40301
    assert client.get(f"{API_PREFIX}/schemas/ids/2", auth=("partner-rus", "pw-rus")).status_code == 200
    assert client.get(f"{API_PREFIX}/schemas/ids/4", auth=("partner-rus", "pw-rus")).status_code == 200  # inbound
    for sid in (1, 3, 5, 99):  # internal, another partner's, a component's, none
        assert client.get(f"{API_PREFIX}/schemas/ids/{sid}", auth=("partner-rus", "pw-rus")).status_code == 403
    assert not any(p == f"{API_PREFIX}/schemas/ids/1" for _, p, _ in fake.seen)  # refused before forwarding
    r = client.post(f"{API_PREFIX}/subjects/{RUS}/versions", auth=("admin", "pw-admin"), json={"schema": "x"})
    assert r.status_code == 200 and r.json()["method"] == "POST"
    assert client.post(f"{API_PREFIX}/subjects/{RUS}/versions", auth=("partner-rus", "pw-rus"),
                       json={"schema": "x"}).status_code == 403
    assert client.get("/health").json() == {"status": "UP"}


def test_service_holds_a_component_to_its_own_feed_subjects(gateway):
    client, fake = gateway
    naval = ("component-naval", "pw-naval")
    assert client.get(f"{API_PREFIX}/subjects", auth=naval).json() == [NAVAL]
    r = client.get(f"{API_PREFIX}/schemas/ids/5/versions", auth=naval)
    assert r.status_code == 200 and r.json() == [{"subject": NAVAL, "version": 1}]
    assert client.get(f"{API_PREFIX}/schemas/ids/5", auth=naval).status_code == 200
    for sid in (1, 2, 4, 6, 99):  # internal, a partner's feed, a partner's inbound, another component's, none
        assert client.get(f"{API_PREFIX}/schemas/ids/{sid}", auth=naval).status_code == 403
    assert not any(p == f"{API_PREFIX}/schemas/ids/6" for _, p, _ in fake.seen)
    assert client.get(f"{API_PREFIX}/subjects/{INTERNAL}/versions/latest", auth=naval).status_code == 403
    assert client.post(f"{API_PREFIX}/subjects/{NAVAL}/versions", auth=naval, json={"schema": "x"}).status_code == 403


# ------------------------------------------------------------------------------------ the clients' side


def _settings(**kw):
    from core.settings import Settings

    base = dict(bootstrap_servers="", schema_registry_url="", security_protocol="", ssl_ca_location="",
                credentials_dir="", sasl_username="", sasl_password="", principal="admin", registry_auth="auto",
                registry_ca_location="")
    return Settings(**{**base, **kw})


def _state(tmp_path, registry: bool = True):
    creds = tmp_path / "credentials"
    creds.mkdir()
    for u in ("admin", "partner-rus"):
        (creds / f"{u}.json").write_text(json.dumps({"username": u, "password": f"pw-{u}"}))
    data = {"bootstrap_servers": "127.0.0.1:1", "schema_registry_url": "https://127.0.0.1:2/apis/ccompat/v7",
            "security": {"protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-512", "ssl_ca_location": "/x/ca.pem",
                         "credentials_dir": str(creds)}}
    if registry:
        data["registry"] = {"auth": "basic", "ssl_ca_location": "/x/ca.pem"}
    (tmp_path / "infra.json").write_text(json.dumps(data))
    return data


def test_registry_client_sends_the_principals_credentials_to_the_local_gateway(tmp_path):
    data = _state(tmp_path)
    conf = _settings(state_dir=tmp_path).registry_client_config()
    assert conf == {"url": data["schema_registry_url"], "basic.auth.user.info": "admin:pw-admin",
                    "ssl.ca.location": "/x/ca.pem"}
    conf = _settings(state_dir=tmp_path).registry_client_config("partner-rus")
    assert conf["basic.auth.user.info"] == "partner-rus:pw-partner-rus"
    # the same URL given explicitly (tests, benchmarks): the same servers, the same credentials
    s = _settings(state_dir=tmp_path, schema_registry_url=data["schema_registry_url"])
    assert s.registry_client_config()["basic.auth.user.info"] == "admin:pw-admin"
    import certifi

    from core import serde

    s = _settings(state_dir=tmp_path, registry_ca_location=certifi.where())  # a CA file that exists
    client = serde.registry_client(s, principal="partner-rus")
    assert client is serde.registry_client(s, principal="partner-rus")
    assert client is not serde.registry_client(s)


def test_an_external_registry_gets_no_credentials_unless_asked(tmp_path):
    from core.settings import CredentialsError

    _state(tmp_path)
    s = _settings(state_dir=tmp_path, schema_registry_url="http://registry.example:8081")
    assert s.registry_client_config() == {"url": "http://registry.example:8081"}
    s = _settings(state_dir=tmp_path, schema_registry_url="http://registry.example:8081", registry_auth="basic",
                  sasl_username="svc", sasl_password="secret")
    assert s.registry_client_config()["basic.auth.user.info"] == "svc:secret"
    s = _settings(state_dir=tmp_path / "elsewhere", schema_registry_url="http://registry.example:8081",
                  registry_auth="basic")
    with pytest.raises(CredentialsError, match="LIAISON_CREDENTIALS_DIR"):
        s.registry_client_config()
    s = _settings(state_dir=tmp_path, registry_auth="none")
    assert "basic.auth.user.info" not in s.registry_client_config()


def test_servers_of_an_older_layout_without_a_gateway_get_no_credentials(tmp_path):
    data = _state(tmp_path, registry=False)
    assert _settings(state_dir=tmp_path).registry_client_config() == {"url": data["schema_registry_url"]}

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
        self.subjects = {INTERNAL: 1, RUS: 2, USA: 3}

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

    users.write_users(tmp_path / "users.json", {"partner-rus": "pw-rus", "admin": "pw-admin"}, write_private)
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
    assert r.status_code == 200 and r.json() == [RUS]
    r = client.get(f"{API_PREFIX}/subjects", auth=("admin", "pw-admin"))
    assert r.json() == [INTERNAL, RUS, USA]
    assert all(auth.startswith("Bearer ") and "pw-" not in auth for _, _, auth in fake.seen)
    r = client.get(f"{API_PREFIX}/subjects/{INTERNAL}/versions/latest", auth=("partner-rus", "pw-rus"))
    assert r.status_code == 403 and r.json()["error_code"] == 40301
    assert client.get(f"{API_PREFIX}/schemas/ids/2", auth=("partner-rus", "pw-rus")).status_code == 200
    for sid in (1, 3, 99):  # internal, another partner's, none
        assert client.get(f"{API_PREFIX}/schemas/ids/{sid}", auth=("partner-rus", "pw-rus")).status_code == 403
    assert not any(p == f"{API_PREFIX}/schemas/ids/1" for _, p, _ in fake.seen)  # refused before forwarding
    r = client.post(f"{API_PREFIX}/subjects/{RUS}/versions", auth=("admin", "pw-admin"), json={"schema": "x"})
    assert r.status_code == 200 and r.json()["method"] == "POST"
    assert client.post(f"{API_PREFIX}/subjects/{RUS}/versions", auth=("partner-rus", "pw-rus"),
                       json={"schema": "x"}).status_code == 403
    assert client.get("/health").json() == {"status": "UP"}


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

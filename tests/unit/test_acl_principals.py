"""Which principal a client authenticates as, and where its security settings come from (no broker needed);
the security material `liaison infra up` generates (private files, stable passwords, a verifiable certificate)."""

from __future__ import annotations

import json
import stat

import pytest

from core import kafka
from deploy.infra import security
from core.settings import CredentialsError, Settings
from producers.publisher import component_of


def _plain(**kw) -> Settings:
    base = dict(bootstrap_servers="", schema_registry_url="", security_protocol="", ssl_ca_location="",
                credentials_dir="", sasl_username="", sasl_password="", principal="admin")
    return Settings(**{**base, **kw})


def _creds(tmp_path, *users):
    d = tmp_path / "credentials"
    d.mkdir(exist_ok=True)
    for u in users:
        (d / f"{u}.json").write_text(json.dumps({"username": u, "password": f"pw-{u}"}))
    return d


def test_plaintext_when_nothing_says_otherwise(tmp_path):
    s = _plain(state_dir=tmp_path, bootstrap_servers="external:9092")
    assert s.security() is None
    conf = kafka.client_config(settings=s, principal="forwarder")
    assert conf["bootstrap.servers"] == "external:9092"
    assert not any(k.startswith(("security.", "sasl.", "ssl.")) for k in conf)
    assert kafka.effective_principal("forwarder", s) is None


def test_explicit_environment_security_and_principal_choice(tmp_path):
    d = _creds(tmp_path, "admin", "forwarder")
    s = _plain(state_dir=tmp_path, bootstrap_servers="b:1", security_protocol="SASL_SSL",
               ssl_ca_location="/ca.pem", credentials_dir=str(d))
    conf = kafka.client_config(settings=s)
    assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("admin", "pw-admin")  # default principal: admin
    assert conf["ssl.ca.location"] == "/ca.pem"
    conf = kafka.client_config({"client.id": "x"}, settings=s, principal="forwarder")
    assert (conf["sasl.username"], conf["sasl.password"], conf["client.id"]) == ("forwarder", "pw-forwarder", "x")
    # LIAISON_PRINCIPAL changes the default
    s2 = s.model_copy(update={"principal": "forwarder"})
    assert kafka.client_config(settings=s2)["sasl.username"] == "forwarder"
    assert kafka.effective_principal(None, s2) == "forwarder"


def test_a_fixed_identity_wins_over_the_credentials_folder(tmp_path):
    s = _plain(state_dir=tmp_path, bootstrap_servers="b:1", security_protocol="SASL_SSL", sasl_username="svc",
               sasl_password="secret", credentials_dir=str(_creds(tmp_path, "forwarder")))
    conf = kafka.client_config(settings=s, principal="forwarder")
    assert (conf["sasl.username"], conf["sasl.password"]) == ("svc", "secret")


def test_missing_credentials_are_one_actionable_line(tmp_path):
    s = _plain(state_dir=tmp_path, bootstrap_servers="b:1", security_protocol="SASL_SSL",
               credentials_dir=str(_creds(tmp_path)))
    with pytest.raises(CredentialsError, match="partner-xyz") as e:
        kafka.client_config(settings=s, principal="partner-xyz")
    assert "\n" not in str(e.value) and "acls.yaml" in str(e.value)
    s = _plain(state_dir=tmp_path, bootstrap_servers="b:1", security_protocol="SASL_SSL")
    with pytest.raises(CredentialsError, match="LIAISON_CREDENTIALS_DIR"):
        kafka.client_config(settings=s)


def test_security_follows_the_infra_state_of_the_servers_serving_the_bootstrap(tmp_path):
    d = _creds(tmp_path, "admin", "producer-air")
    (tmp_path / "infra.json").write_text(json.dumps({
        "bootstrap_servers": "127.0.0.1:1", "schema_registry_url": "http://r",
        "security": {"protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-512", "ssl_ca_location": "/x/ca.pem",
                     "credentials_dir": str(d)}}))
    s = _plain(state_dir=tmp_path)  # no LIAISON_BOOTSTRAP_SERVERS: the state's servers, secured
    conf = kafka.client_config(settings=s, principal=kafka.producer_principal("air"))
    assert conf["bootstrap.servers"] == "127.0.0.1:1" and conf["sasl.username"] == "producer-air"
    assert conf["ssl.ca.location"] == "/x/ca.pem"
    # the same address given explicitly: still those servers
    assert _plain(state_dir=tmp_path, bootstrap_servers="127.0.0.1:1").security() is not None
    # another address (an external PLAINTEXT cluster): no security
    assert _plain(state_dir=tmp_path, bootstrap_servers="elsewhere:9092").security() is None
    # and LIAISON_SECURITY_PROTOCOL=PLAINTEXT overrides the state
    assert _plain(state_dir=tmp_path, security_protocol="PLAINTEXT").security() is None


def test_principal_names():
    assert kafka.partner_principal("RUS") == "partner-rus"
    assert [kafka.producer_principal(c) for c in kafka.COMPONENTS] == ["producer-naval", "producer-air",
                                                                       "producer-intel"]
    assert component_of("liaison.internal.naval.track") == "naval"
    assert component_of("liaison.internal.intel.group-location") == "intel"
    assert component_of("liaison.no-such-topic", "AirTrack") == "air"
    assert component_of("something.else") is None


def test_credentials_are_private_generated_once_and_follow_the_ports(tmp_path):
    ca = tmp_path / "ca.pem"
    first = security.ensure_credentials(tmp_path, ["admin", "partner-rus", "controller"], "127.0.0.1:1", ca)
    d = security.credentials_dir(tmp_path)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for user in first:
        f = d / f"{user}.json"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        data = json.loads(f.read_text())
        assert data["username"] == user and len(data["password"]) >= 40
    assert json.loads((d / "controller.json").read_text())["mechanism"] == "PLAIN"
    assert len(set(first.values())) == 3
    again = security.ensure_credentials(tmp_path, ["admin", "partner-rus", "controller"], "127.0.0.1:2", ca)
    assert again == first
    assert json.loads((d / "admin.json").read_text())["bootstrap_servers"] == "127.0.0.1:2"


def test_scram_users_and_format_arguments():
    users = security.scram_users(["partner-rus", "forwarder", "admin"])
    assert users == ["admin", "broker", "forwarder", "partner-rus"]
    args = security.scram_format_args({u: f"p{u}" for u in users}, users)
    assert args[:2] == ["--add-scram", "SCRAM-SHA-512=[name=admin,password=padmin]"]
    assert len(args) == 2 * len(users)


def test_tls_material_is_private_and_the_certificate_verifies_for_127_0_0_1(tmp_path):
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    tls = security.ensure_tls(tmp_path)
    d = tmp_path / "tls"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in ("broker.p12", "broker.p12.password"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    assert not (d / "ca.key").exists()  # the CA key signed the broker certificate and was discarded
    key, cert, chain = pkcs12.load_key_and_certificates(tls.keystore.read_bytes(), tls.keystore_password.encode())
    ca = x509.load_pem_x509_certificate(tls.ca_pem.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    # kept: a second call returns the same CA (clients keep trusting it)
    assert security.ensure_tls(tmp_path).ca_pem.read_bytes() == tls.ca_pem.read_bytes()

"""Security material of the local servers, generated at setup under ``<state>/<shape>/`` (git-ignored, 0600):

    tls/ca.pem                      a CA made for this set of servers (clients trust it; its key signs the
                                    server certificates below in one step and is discarded: nothing else can
                                    ever be signed)
    tls/broker.p12 (+ .password)    the brokers' key and certificate (SAN 127.0.0.1, localhost), signed by the CA
    tls/registry.pem, .key          Apicurio's HTTPS certificate (chain) and key (PEM, for Quarkus)
    tls/registry-gateway.pem, .key  the registry gateway's HTTPS certificate (chain) and key (PEM, for uvicorn)
    credentials/<user>.json         one SASL user each: username, password, mechanism, bootstrap, CA path

Users: ``admin`` (super user: topics, ACLs, schema tooling), ``broker`` (inter-broker, super user), every
principal of deploy/acls.yaml (partners, forwarder, producers, lag monitor, registry) - all SCRAM-SHA-512,
created in the metadata log when the storage is formatted - and ``controller``, the static PLAIN user of the
KRaft controller listener (SCRAM cannot serve that listener: its credentials live in the metadata log the
controllers themselves replicate).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

SCRAM = "SCRAM-SHA-512"
PROTOCOL = "SASL_SSL"
ADMIN, BROKER, CONTROLLER = "admin", "broker", "controller"
SUPER_USERS = (ADMIN, BROKER, CONTROLLER)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file only its owner can read (created 0600, never world-readable even for an instant)."""
    _private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class Tls:
    ca_pem: Path
    keystore: Path
    keystore_password: str
    #: Apicurio's HTTPS certificate and key (PEM), SAN 127.0.0.1 and localhost
    registry_cert: Path | None = None
    registry_key: Path | None = None
    #: the registry gateway's HTTPS certificate and key (PEM), SAN 127.0.0.1 and localhost
    gateway_cert: Path | None = None
    gateway_key: Path | None = None


#: Server certificates the CA signs at setup, one per TLS server: (file stem, common name).
SERVER_CERTS = (("broker", "liaison-kafka"), ("registry", "liaison-registry"),
                ("registry-gateway", "liaison-registry-gateway"))


def tls_complete(shape_dir: Path) -> bool:
    """Every TLS file :func:`ensure_tls` keeps is there (it would make none anew)."""
    d = shape_dir / "tls"
    files = [d / "ca.pem", d / "broker.p12", d / "broker.p12.password"]
    files += [d / f"{stem}{ext}" for stem, _ in SERVER_CERTS if stem != "broker" for ext in (".pem", ".key")]
    return all(f.exists() for f in files)


def missing_credentials(shape_dir: Path, users: list[str]) -> list[str]:
    """Users of ``users`` without a readable credentials file (:func:`ensure_credentials` would make a new
    password for them)."""
    out = []
    for user in users:
        try:
            json.loads((credentials_dir(shape_dir) / f"{user}.json").read_text())["password"]
        except (OSError, ValueError, KeyError, TypeError):
            out.append(user)
    return out


def ensure_tls(shape_dir: Path) -> Tls:
    """The CA and every server's key and certificate, generated together on first use and kept (clients keep
    trusting the CA). The CA key signs them all in this one step and is discarded: nothing else can ever be
    signed. A set missing any file (an older layout without the registry's certificates) is made anew, CA
    included; the servers read their files at start, and `up` only gets here when none of them runs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = _private_dir(shape_dir / "tls")
    ca_pem, ks, ks_pw = d / "ca.pem", d / "broker.p12", d / "broker.p12.password"
    pems = {stem: (d / f"{stem}.pem", d / f"{stem}.key") for stem, _ in SERVER_CERTS if stem != "broker"}
    tls = Tls(ca_pem, ks, "", *pems["registry"], *pems["registry-gateway"])
    (d / "ca.key").unlink(missing_ok=True)  # kept by an earlier version; never needed
    if ca_pem.exists() and ks.exists() and ks_pw.exists() and all(c.exists() and k.exists() for c, k in pems.values()):
        return replace(tls, keystore_password=ks_pw.read_text().strip())
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "liaison-bus"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"liaison-bus local CA ({shape_dir})"[:64])])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def issue(common_name: str, usages: list):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "liaison-bus"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=825))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        return key, cert

    issued = {stem: issue(cn, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if stem == "broker"
                          else [ExtendedKeyUsageOID.SERVER_AUTH]) for stem, cn in SERVER_CERTS}
    del ca_key  # the CA key is never written anywhere
    key, cert = issued["broker"]
    password = secrets.token_urlsafe(24)
    p12 = pkcs12.serialize_key_and_certificates(
        b"broker", key, cert, [ca],
        serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
        .build(password.encode()))
    write_private(ks, p12)
    write_private(ks_pw, password + "\n")
    for stem, (cert_file, key_file) in pems.items():
        key, cert = issued[stem]
        write_private(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
        write_private(cert_file, chain)
    write_private(ca_pem, ca.public_bytes(serialization.Encoding.PEM))
    os.chmod(ca_pem, 0o644)  # the CA certificate is public; its key is not
    return replace(tls, keystore_password=password)


def credentials_dir(shape_dir: Path) -> Path:
    return shape_dir / "credentials"


def ensure_credentials(shape_dir: Path, users: list[str], bootstrap: str, ca_pem: Path) -> dict[str, str]:
    """A password per user (secrets.token_urlsafe), generated once and kept in credentials/<user>.json (0600);
    the bootstrap address is refreshed when the ports moved. Returns user -> password."""
    d = _private_dir(credentials_dir(shape_dir))
    out = {}
    for user in users:
        f = d / f"{user}.json"
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            data = {"username": user, "password": secrets.token_urlsafe(32)}
        mechanism = "PLAIN" if user == CONTROLLER else SCRAM
        want = {"username": user, "password": data["password"], "mechanism": mechanism,
                "security_protocol": PROTOCOL, "bootstrap_servers": bootstrap, "ssl_ca_location": str(ca_pem)}
        if user == CONTROLLER:
            want["note"] = "static PLAIN user of the KRaft controller listener only"
        if data != want:
            write_private(f, json.dumps(want, indent=2) + "\n")
        out[user] = data["password"]
    return out


def scram_users(acl_principals: list[str]) -> list[str]:
    """Every SCRAM user of the broker: admin, broker and each principal the ACL file names."""
    return [ADMIN, BROKER] + sorted(p for p in set(acl_principals) if p not in SUPER_USERS)


def scram_format_args(passwords: dict[str, str], users: list[str]) -> list[str]:
    """`--add-scram` arguments of `kafka-storage format` (KIP-900): the users exist before the broker starts."""
    out = []
    for u in users:
        out += ["--add-scram", f"{SCRAM}=[name={u},password={passwords[u]}]"]
    return out


def jaas(module: str, username: str, password: str, **users: str) -> str:
    extra = "".join(f' user_{k}="{v}"' for k, v in users.items())
    return f'{module} required username="{username}" password="{password}"{extra};'


SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"

"""Broker ACLs as configuration: deploy/acls.yaml, validated, applied idempotently, drift reported.

    declared = load_acls()                      # pure: the file (+ partners of deploy/topics.yaml) -> set[Acl]
    result = apply_acls(declared, prune=False)  # create what the broker lacks; drift = present - declared

The file format is described at the top of deploy/acls.yaml. Every ACL is an ALLOW from any host; everything
not allowed is denied (allow.everyone.if.no.acl.found=false on the broker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.settings import get_settings

RESOURCES = ("topic", "group", "transactional_id", "cluster")
PATTERNS = ("literal", "prefixed")
OPERATIONS = ("ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS",
              "ALTER_CONFIGS", "IDEMPOTENT_WRITE")
CLUSTER_NAME = "kafka-cluster"
#: Principals that are super users on the project's brokers (server.properties), never given ACLs.
SUPER_USERS = ("admin", "broker", "controller")
_NAME = r"^[a-zA-Z0-9._{}-]{1,249}$"
_PRINCIPAL = r"^[a-z0-9][a-z0-9._{}-]{0,63}$"


class AclError(ValueError):
    """An invalid ACL file: names the file and the entry."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: principal (without ``User:``), resource type, name, pattern type, operation."""

    principal: str
    resource: str
    name: str
    pattern: str
    operation: str
    permission: str = "ALLOW"
    host: str = "*"

    def __str__(self) -> str:
        host = "" if self.host == "*" else f" from {self.host}"
        return (f"User:{self.principal} {self.permission} {self.operation} on {self.resource} "
                f"{self.pattern} {self.name!r}{host}")


# ----------------------------------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Entry(_Strict):
    topic: str | None = Field(None, pattern=_NAME)
    group: str | None = Field(None, pattern=_NAME)
    transactional_id: str | None = Field(None, pattern=_NAME)
    cluster: str | None = None
    pattern: str = Field("literal", pattern=r"^(literal|prefixed)$")
    operations: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_resource(self):
        given = [r for r in RESOURCES if getattr(self, r) is not None]
        if len(given) != 1:
            raise ValueError(f"each entry names exactly one resource ({', '.join(RESOURCES)}), got "
                             f"{', '.join(given) or 'none'}")
        if self.cluster is not None and (self.cluster != CLUSTER_NAME or self.pattern != "literal"):
            raise ValueError(f"the cluster resource is literal {CLUSTER_NAME!r}")
        bad = [op for op in self.operations if op not in OPERATIONS]
        if bad:
            raise ValueError(f"unknown operation(s) {', '.join(bad)}; one of {', '.join(OPERATIONS)}")
        return self

    @property
    def resource(self) -> tuple[str, str]:
        r = next(r for r in RESOURCES if getattr(self, r) is not None)
        return r, getattr(self, r)


class PerPartner(_Strict):
    principal: str = Field(pattern=_PRINCIPAL)
    allow: list[Entry] = []


class AclFile(_Strict):
    per_partner: PerPartner | None = None
    #: the same for each of our components ({component}: naval, air, intel of deploy/topics.yaml)
    per_component: PerPartner | None = None
    principals: dict[str, list[Entry]] = {}


def _partners_from_topics(topics_file: Path) -> list[str]:
    doc = yaml.safe_load(topics_file.read_text()) or {}
    return [str(p) for p in doc.get("partners") or []]


def _components_from_topics(topics_file: Path) -> list[str]:
    doc = yaml.safe_load(topics_file.read_text()) or {}
    return [str(c) for c in doc.get("components") or []]


def load_acls(path: Path | None = None, partners: list[str] | None = None,
              components: list[str] | None = None) -> set[Acl]:
    """Every ACL the file declares, the per-partner block expanded for each partner and the per-component block
    for each component (default: the partners and components of deploy/topics.yaml next to the file)."""
    path = Path(path or get_settings().deploy_dir / "acls.yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        doc = AclFile.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise AclError(f"{path}: {loc}: {first['msg']}") from None
    except yaml.YAMLError as e:
        raise AclError(f"{path}: not valid YAML: {e}") from None
    names_partner = any("{partner}" in (getattr(e, r) or "") for es in doc.principals.values() for e in es
                        for r in RESOURCES)
    if partners is None:
        partners = _partners_from_topics(path.parent / "topics.yaml") if doc.per_partner or names_partner else []
    if components is None:
        components = _components_from_topics(path.parent / "topics.yaml") if doc.per_component else []
    out: set[Acl] = set()

    def add(principal: str, entries: list[Entry], where: str) -> None:
        if principal in SUPER_USERS:
            raise AclError(f"{path}: {where}: {principal!r} is a super user; it needs no ACLs")
        for e in entries:
            resource, name = e.resource
            for op in e.operations:
                out.add(Acl(principal, resource, name, e.pattern, op))

    def per_partner(entries: list[Entry]) -> list[Entry]:
        """An entry of a fixed principal whose name holds {partner}: one entry per partner (the others as is)."""
        out_entries: list[Entry] = []
        for e in entries:
            if "{partner}" not in e.resource[1]:
                out_entries.append(e)
                continue
            for code in partners:
                out_entries.append(e.model_copy(update={r: getattr(e, r).replace("{partner}", code.lower())
                                                        for r in RESOURCES if getattr(e, r)}))
        return out_entries

    for principal, entries in doc.principals.items():
        if "{" in principal:
            raise AclError(f"{path}: principals.{principal}: placeholders belong in per_partner or per_component")
        add(principal, per_partner(entries), f"principals.{principal}")
    if doc.per_partner:
        for code in partners:
            p = code.lower()
            sub = lambda s: s.replace("{partner}", p)  # noqa: E731
            entries = [e.model_copy(update={r: sub(getattr(e, r)) for r in RESOURCES if getattr(e, r)})
                       for e in doc.per_partner.allow]
            add(sub(doc.per_partner.principal), entries, "per_partner")
    if doc.per_component:
        for name in components:
            sub = lambda s: s.replace("{component}", name.lower())  # noqa: E731
            entries = [e.model_copy(update={r: sub(getattr(e, r)) for r in RESOURCES if getattr(e, r)})
                       for e in doc.per_component.allow]
            add(sub(doc.per_component.principal), entries, "per_component")
    for acl in out:
        if "{" in acl.name or "{" in acl.principal:
            raise AclError(f"{path}: unknown placeholder in {acl}; only {{partner}} (in per_partner and in the "
                           f"resource names of principals), {{component}} in per_component")
    return out


def principals(acls: set[Acl]) -> list[str]:
    """The principals the ACLs name (each gets a SCRAM user at setup)."""
    return sorted({a.principal for a in acls})


# ----------------------------------------------------------------------------------------- plan (pure)


@dataclass
class AclPlan:
    create: list[Acl] = field(default_factory=list)
    drift: list[Acl] = field(default_factory=list)
    present: int = 0


def plan(declared: set[Acl], on_broker: set[Acl]) -> AclPlan:
    """What to create (declared, not on the broker) and the drift (on the broker, not declared)."""
    return AclPlan(sorted(declared - on_broker), sorted(on_broker - declared), len(declared & on_broker))


# ----------------------------------------------------------------------------------------- the broker


def _kafka_enums():
    from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return AclOperation, AclPermissionType, ResourcePatternType, ResourceType


_RESOURCE_TO_KAFKA = {"topic": "TOPIC", "group": "GROUP", "transactional_id": "TRANSACTIONAL_ID", "cluster": "BROKER"}
_RESOURCE_FROM_KAFKA = {v: k for k, v in _RESOURCE_TO_KAFKA.items()}


def to_binding(acl: Acl):
    from confluent_kafka.admin import AclBinding

    op, perm, pat, res = _kafka_enums()
    return AclBinding(res[_RESOURCE_TO_KAFKA[acl.resource]], acl.name, pat[acl.pattern.upper()],
                      f"User:{acl.principal}", acl.host, op[acl.operation], perm[acl.permission])


def from_binding(b) -> Acl:
    principal = b.principal.split(":", 1)[1] if b.principal.startswith("User:") else b.principal
    return Acl(principal, _RESOURCE_FROM_KAFKA.get(b.restype.name, b.restype.name.lower()), b.name,
               b.resource_pattern_type.name.lower(), b.operation.name, b.permission_type.name, b.host)


def broker_acls(admin, timeout: float = 30.0) -> set[Acl]:
    from confluent_kafka.admin import AclBindingFilter

    op, perm, pat, res = _kafka_enums()
    flt = AclBindingFilter(res.ANY, None, pat.ANY, None, None, op.ANY, perm.ANY)
    return {from_binding(b) for b in admin.describe_acls(flt, request_timeout=timeout).result()}


def apply_acls(declared: set[Acl], admin=None, prune: bool = False, dry_run: bool = False,
               timeout: float = 30.0) -> tuple[AclPlan, list[Acl]]:
    """Create the declared ACLs the broker lacks; with ``prune`` delete the drift. Returns (plan, pruned)."""
    if admin is None:
        from core import kafka

        admin = kafka.admin()
    p = plan(declared, broker_acls(admin, timeout))
    if dry_run:
        return p, []
    if p.create:
        for fut in admin.create_acls([to_binding(a) for a in p.create], request_timeout=timeout).values():
            fut.result()
    pruned: list[Acl] = []
    if prune and p.drift:
        from confluent_kafka.admin import AclBindingFilter

        filters = []
        for a in p.drift:
            b = to_binding(a)
            filters.append(AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                                            b.operation, b.permission_type))
        for fut in admin.delete_acls(filters, request_timeout=timeout).values():
            fut.result()
        pruned = list(p.drift)
    return p, pruned


# ----------------------------------------------------------------------------------------- CLI

app = typer.Typer(no_args_is_help=True, help="Broker ACLs declared in deploy/acls.yaml.")


@app.command("apply")
def apply_cmd(file: Path = typer.Option(None, "--file", "-f", help="ACL file (default deploy/acls.yaml)"),
              prune: bool = typer.Option(False, "--prune", help="delete ACLs on the broker the file does not declare"),
              dry_run: bool = typer.Option(False, "--dry-run", help="print what would change, change nothing")) -> None:
    """Create the declared ACLs the broker lacks; print drift (exit 3 while there is drift not pruned)."""
    try:
        declared = load_acls(file)
    except (OSError, AclError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    p, pruned = apply_acls(declared, prune=prune, dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    for a in p.create:
        typer.echo(f"{verb} {a}")
    for a in p.drift:
        if a in pruned:
            typer.echo(f"pruned {a}")
        elif dry_run and prune:
            typer.echo(f"would prune {a}")
        else:
            typer.echo(f"drift: {a} (on the broker, not in the file; --prune removes it)")
    if not p.create and not p.drift:
        typer.echo(f"nothing to do: {p.present} ACL(s) on the broker, as declared")
    else:
        typer.echo(f"{len(p.create)} {verb}, {p.present} already present, {len(p.drift)} drift"
                   + (f" ({len(pruned)} pruned)" if pruned else ""))
    if p.drift and not pruned:
        raise typer.Exit(3)


@app.command("list")
def list_cmd() -> None:
    """Every ACL on the broker, marked when the file does not declare it."""
    from core import kafka

    declared = load_acls()
    for a in sorted(broker_acls(kafka.admin())):
        typer.echo(f"{a}" + ("" if a in declared else "   [not declared]"))

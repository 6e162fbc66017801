"""Schema governance: register every subject the project writes, release versions into the repo, gate changes.

Every subject (:func:`subjects`): the internal ones (`schemas/<Type>.avsc` under `<internal topic>-value`),
the audit (`schemas/audit/DecisionAudit.avsc` under `liaison.audit.decisions-value`) and every partner's
derived schema (from `deploy/policies/`, under `<partner topic>-value`).

- `register`: every subject, with its compatibility set explicitly to BACKWARD_TRANSITIVE (the registry's
  global default may be NONE).
- `release`: copy a changed schema to `schemas/released/<subject>/v<N>.avsc` (kept in git).
- `check`: every working-tree schema must be compatible with every released version of its subject, as
  judged by the real registry's compatibility endpoint; an incompatibility is explained by naming the
  subject, the field and the rule broken.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import typer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from schemas.compat import explain

from core import serde
from core.topics import AUDIT_TOPIC, INGRESS_AUDIT_TOPIC, inbound_topic, origin_topic, recipient_topic, topic_for
from release import load_policies
from release.exchange import exchanged_types, inbound_schema, origin_schema

LEVEL = "BACKWARD_TRANSITIVE"
RULE = "BACKWARD_TRANSITIVE: the new schema must read records written with every released version"


def released_dir(root: Path | None = None) -> Path:
    return (root or schemas.SCHEMA_DIR) / "released"


def subject_for(type_name: str) -> str:
    return serde.value_subject(topic_for(type_name))


@dataclass(frozen=True)
class SubjectSpec:
    """One subject the project registers, and the working-tree schema text it must hold."""

    subject: str
    kind: str  # internal | audit | partner | component | inbound | origin
    text: str


def audit_schema_path(root: Path | None = None) -> Path:
    return (root or schemas.SCHEMA_DIR) / "audit" / "DecisionAudit.avsc"


def ingress_audit_schema_path(root: Path | None = None) -> Path:
    return (root or schemas.SCHEMA_DIR) / "audit" / "IngressAudit.avsc"


def subjects(root: Path | None = None, policies_dir: Path | None = None) -> list[SubjectSpec]:
    """Every subject the project registers: internal, the two audits, each recipient's derived schemas (partner
    and component feeds, by source), and per partner its inbound (what it sends us) and partner-origin (what the
    ingress guard accepted) schemas (:mod:`release.exchange`)."""
    root = root or schemas.SCHEMA_DIR
    out = [SubjectSpec(subject_for(n), "internal", (root / f"{n}.avsc").read_text()) for n in schemas.MESSAGE_TYPES]
    out.append(SubjectSpec(serde.value_subject(AUDIT_TOPIC), "audit", audit_schema_path(root).read_text()))
    out.append(SubjectSpec(serde.value_subject(INGRESS_AUDIT_TOPIC), "audit",
                           ingress_audit_schema_path(root).read_text()))
    policies_dir = policies_dir or _default_policies_dir()

    def text(schema: dict) -> str:
        return json.dumps(schema, indent=2) + "\n"

    for code, policy in sorted(load_policies(policies_dir).items()):
        kind = "partner" if policy.is_partner else "component"
        for source in policy.sources:
            out.append(SubjectSpec(serde.value_subject(recipient_topic(code, source)), kind,
                                   text(policy.derived_schema(source))))
        for type_name in exchanged_types(policy):
            out.append(SubjectSpec(serde.value_subject(inbound_topic(code, type_name)), "inbound",
                                   text(inbound_schema(policy, type_name))))
            out.append(SubjectSpec(serde.value_subject(origin_topic(code, type_name)), "origin",
                                   text(origin_schema(policy, type_name))))
    return out


def _default_policies_dir() -> Path:
    from core.settings import get_settings

    return get_settings().deploy_dir / "policies"


def released_versions(subject: str, root: Path | None = None) -> list[tuple[int, Path]]:
    d = released_dir(root) / subject
    out = []
    for p in d.glob("v*.avsc"):
        try:
            out.append((int(p.stem[1:]), p))
        except ValueError:
            continue
    return sorted(out)


def canonical(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------------- registry calls


def _set_level(client: SchemaRegistryClient, subject: str, level: str) -> None:
    client.set_compatibility(subject, level)
    got = client.get_compatibility(subject)
    if got != level:
        raise RuntimeError(f"{subject}: registry reports compatibility {got} after setting {level}")


def register_all(client: SchemaRegistryClient | None = None, root: Path | None = None,
                 policies_dir: Path | None = None) -> dict[str, int]:
    """Register every subject's working-tree schema (idempotent); returns subject -> schema id."""
    client = client or serde.registry_client()
    ids = {}
    for spec in subjects(root, policies_dir):
        _set_level(client, spec.subject, LEVEL)
        ids[spec.subject] = client.register_schema(spec.subject, Schema(spec.text, "AVRO"), normalize_schemas=True)
    return ids


@dataclass
class CheckResult:
    subject: str
    kind: str
    versions: list[int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_all(client: SchemaRegistryClient | None = None, root: Path | None = None,
              policies_dir: Path | None = None) -> list[CheckResult]:
    """Test each subject's working-tree schema against every released version, on the registry, in a scratch
    subject."""
    client = client or serde.registry_client()
    results = []
    for spec in subjects(root, policies_dir):
        subject, text = spec.subject, spec.text
        versions = released_versions(subject, root)
        res = CheckResult(subject, spec.kind, [v for v, _ in versions])
        results.append(res)
        if not versions:
            res.problems.append(f"{subject}: no released version in {released_dir(root) / subject} "
                                f"(run `liaison schemas release`)")
            continue
        scratch = f"liaison-check-{uuid.uuid4().hex[:8]}.{subject}"
        try:
            _set_level(client, scratch, "NONE")
            scratch_versions = []
            for _, path in versions:
                client.register_schema(scratch, Schema(path.read_text(), "AVRO"))
                scratch_versions.append(client.get_latest_version(scratch).version)
            _set_level(client, scratch, LEVEL)  # NONE above let released versions in; now judge
            candidate = Schema(text, "AVRO")
            for (v, path), sv in zip(versions, scratch_versions):
                if client.test_compatibility(scratch, candidate, version=sv):
                    continue
                reasons = explain(json.loads(text), json.loads(path.read_text())) or [
                    "the registry judged it incompatible (no field-level explanation found)"]
                for r in reasons:
                    res.problems.append(f"{subject}: incompatible with released v{v}: {r} ({RULE})")
        finally:
            try:
                client.delete_subject(scratch)
                client.delete_subject(scratch, permanent=True)
            except SchemaRegistryError:
                pass
    return results


def release_all(root: Path | None = None, policies_dir: Path | None = None) -> list[str]:
    """Write a new released version for every subject whose schema differs from its latest release."""
    written = []
    for spec in subjects(root, policies_dir):
        subject, text = spec.subject, spec.text
        versions = released_versions(subject, root)
        if versions and canonical(versions[-1][1].read_text()) == canonical(text):
            continue
        n = versions[-1][0] + 1 if versions else 1
        target = released_dir(root) / subject / f"v{n}.avsc"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(str(target))
    return written


# ------------------------------------------------------------------------------------- CLI

app = typer.Typer(no_args_is_help=True, help="Schema governance against the registry.")

_ROOT = typer.Option(None, "--schemas-dir", help="folder with <Type>.avsc and released/ (default: schemas/)")
_POLICIES = typer.Option(None, "--policies", help="policy folder whose derived schemas are checked (default "
                                                  "deploy/policies)")


@app.command("register")
def register_cmd(root: Path = _ROOT, policies: Path = _POLICIES) -> None:
    """Register every subject (internal, audit, partner-derived) with BACKWARD_TRANSITIVE compatibility
    (idempotent)."""
    try:
        ids = register_all(root=root, policies_dir=policies)
    except SchemaRegistryError as e:
        typer.echo(f"error: registry refused a schema: {e}", err=True)
        raise typer.Exit(2)
    for subject, sid in ids.items():
        typer.echo(f"{subject}: schema id {sid} ({LEVEL})")


@app.command("check")
def check_cmd(root: Path = _ROOT, policies: Path = _POLICIES) -> None:
    """CI gate: every subject's working-tree schema (internal, audit, partner-derived) vs every released version
    (exit 1 on any incompatibility)."""
    results = check_all(root=root, policies_dir=policies)
    bad = False
    for r in results:
        if r.ok:
            typer.echo(f"ok  {r.subject} ({r.kind}): compatible with released v{', v'.join(map(str, r.versions))}")
        else:
            bad = True
            for p in r.problems:
                typer.echo(f"FAIL {p}", err=True)
    if bad:
        raise typer.Exit(1)


@app.command("release")
def release_cmd(root: Path = _ROOT, policies: Path = _POLICIES) -> None:
    """Record each changed schema as the next released version (after a passing check)."""
    problems = [p for r in check_all(root=root, policies_dir=policies) if r.versions for p in r.problems]
    if problems:
        for p in problems:
            typer.echo(f"FAIL {p}", err=True)
        raise typer.Exit(1)
    written = release_all(root, policies)
    for w in written:
        typer.echo(f"released {w}")
    if not written:
        typer.echo("nothing changed since the last release")

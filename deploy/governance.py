"""Schema governance: register the working-tree schemas, release versions into the repo, and gate changes.

- `register`: every `schemas/<Type>.avsc` under the subject `<internal topic>-value`, with the subject's
  compatibility set explicitly to BACKWARD_TRANSITIVE (the registry's global default may be NONE).
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
from schemas.named import NamedTypes

from core.topics import topic_for
from core import serde

LEVEL = "BACKWARD_TRANSITIVE"
RULE = "BACKWARD_TRANSITIVE: the new schema must read records written with every released version"


def released_dir(root: Path | None = None) -> Path:
    return (root or schemas.SCHEMA_DIR) / "released"


def subject_for(type_name: str) -> str:
    return serde.value_subject(topic_for(type_name))


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


# ------------------------------------------------------------------------------------- explanation


_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def _resolve_named(t, names: NamedTypes):
    """The definition a reference means (by full or short name: references may use either), else `t`."""
    if isinstance(t, str):
        return names.lookup(t) or t
    return t


def _kind(t) -> str:
    if isinstance(t, list):
        return "union"
    if isinstance(t, dict):
        return t["type"] if t["type"] in ("record", "enum", "fixed", "array", "map") else _kind(t["type"])
    return t


def _label(t) -> str:
    k = _kind(t)
    if k in ("record", "enum", "fixed") and isinstance(t, dict):
        return f"{k} {t['name']}"
    if k == "union":
        return "union [" + ", ".join(_label(b) for b in t) + "]"
    if k == "array":
        return f"array<{_label(t['items'])}>"
    return k


def _can_read(reader, writer, rn: NamedTypes, wn: NamedTypes) -> bool:
    return not _diffs(reader, writer, "", rn, wn)


def _diffs(reader, writer, path: str, rn: NamedTypes, wn: NamedTypes) -> list[str]:
    reader, writer = _resolve_named(reader, rn), _resolve_named(writer, wn)
    rk, wk = _kind(reader), _kind(writer)
    where = path or "<root>"
    if wk == "union":
        out = []
        for branch in writer:
            if rk == "union":
                if not any(_can_read(rb, branch, rn, wn) for rb in reader):
                    out.append(f"field '{where}': the released {_label(branch)} branch is no longer accepted")
            else:
                out += _diffs(reader, branch, path, rn, wn)
        return out
    if rk == "union":
        if any(_can_read(rb, writer, rn, wn) for rb in reader):
            return []
        return [f"field '{where}': released type {_label(writer)} fits no branch of {_label(reader)}"]
    if rk != wk:
        if wk in _PROMOTIONS and rk in _PROMOTIONS[wk]:
            return []
        return [f"field '{where}' changed type from {_label(writer)} to {_label(reader)}"]
    if rk == "record":
        out = []
        wfields = {f["name"]: f for f in writer["fields"]}
        for f in writer["fields"]:
            for alias in f.get("aliases", []):
                wfields.setdefault(alias, f)
        for f in reader["fields"]:
            sub = f"{path}.{f['name']}" if path else f["name"]
            match = wfields.get(f["name"]) or next((wfields[a] for a in f.get("aliases", []) if a in wfields), None)
            if match is None:
                if "default" not in f:
                    out.append(f"field '{sub}' was added without a default, so records written with the "
                               f"released version cannot be read")
            else:
                out += _diffs(f["type"], match["type"], sub, rn, wn)
        return out
    if rk == "enum":
        lost = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if lost and "default" not in reader:
            return [f"field '{where}': enum {reader['name']} lost symbol(s) {', '.join(lost)} and has no default"]
        return []
    if rk == "array":
        return _diffs(reader["items"], writer["items"], f"{path}[]", rn, wn)
    if rk == "map":
        return _diffs(reader["values"], writer["values"], f"{path}{{}}", rn, wn)
    if rk == "fixed" and reader.get("size") != writer.get("size"):
        return [f"field '{where}': fixed size changed from {writer.get('size')} to {reader.get('size')}"]
    return []


def explain(new: dict, old: dict) -> list[str]:
    """Why `new` cannot read data written with `old` (Avro schema resolution), one line per field."""
    rn, wn = NamedTypes(new), NamedTypes(old)
    return _diffs(new, old, "", rn, wn)


# ------------------------------------------------------------------------------------- registry calls


def _set_level(client: SchemaRegistryClient, subject: str, level: str) -> None:
    client.set_compatibility(subject, level)
    got = client.get_compatibility(subject)
    if got != level:
        raise RuntimeError(f"{subject}: registry reports compatibility {got} after setting {level}")


def register_all(client: SchemaRegistryClient | None = None, root: Path | None = None) -> dict[str, int]:
    """Register every working-tree schema (idempotent); returns subject -> schema id."""
    client = client or serde.registry_client()
    ids = {}
    for name in schemas.MESSAGE_TYPES:
        subject = subject_for(name)
        _set_level(client, subject, LEVEL)
        text = ((root or schemas.SCHEMA_DIR) / f"{name}.avsc").read_text()
        ids[subject] = client.register_schema(subject, Schema(text, "AVRO"), normalize_schemas=True)
    return ids


@dataclass
class CheckResult:
    subject: str
    versions: list[int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_all(client: SchemaRegistryClient | None = None, root: Path | None = None) -> list[CheckResult]:
    """Test each working-tree schema against every released version, on the registry, in a scratch subject."""
    client = client or serde.registry_client()
    results = []
    for name in schemas.MESSAGE_TYPES:
        subject = subject_for(name)
        text = ((root or schemas.SCHEMA_DIR) / f"{name}.avsc").read_text()
        versions = released_versions(subject, root)
        res = CheckResult(subject, [v for v, _ in versions])
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


def release_all(root: Path | None = None) -> list[str]:
    """Write a new released version for every schema that differs from its latest release."""
    written = []
    for name in schemas.MESSAGE_TYPES:
        subject = subject_for(name)
        text = ((root or schemas.SCHEMA_DIR) / f"{name}.avsc").read_text()
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


@app.command("register")
def register_cmd(root: Path = _ROOT) -> None:
    """Register every schema under <topic>-value with BACKWARD_TRANSITIVE compatibility (idempotent)."""
    try:
        ids = register_all(root=root)
    except SchemaRegistryError as e:
        typer.echo(f"error: registry refused a schema: {e}", err=True)
        raise typer.Exit(2)
    for subject, sid in ids.items():
        typer.echo(f"{subject}: schema id {sid} ({LEVEL})")


@app.command("check")
def check_cmd(root: Path = _ROOT) -> None:
    """CI gate: working-tree schemas vs every released version (exit 1 on any incompatibility)."""
    results = check_all(root=root)
    bad = False
    for r in results:
        if r.ok:
            typer.echo(f"ok  {r.subject}: compatible with released v{', v'.join(map(str, r.versions))}")
        else:
            bad = True
            for p in r.problems:
                typer.echo(f"FAIL {p}", err=True)
    if bad:
        raise typer.Exit(1)


@app.command("release")
def release_cmd(root: Path = _ROOT) -> None:
    """Record each changed schema as the next released version (after a passing check)."""
    problems = [p for r in check_all(root=root) if r.versions for p in r.problems]
    if problems:
        for p in problems:
            typer.echo(f"FAIL {p}", err=True)
        raise typer.Exit(1)
    written = release_all(root)
    for w in written:
        typer.echo(f"released {w}")
    if not written:
        typer.echo("nothing changed since the last release")

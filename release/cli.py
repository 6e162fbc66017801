"""`liaison policy`: validate partner policies, show what they release, explain decisions.

    liaison policy check [DIR]                       validate and describe every policy
    liaison policy explain --partner RUS [--input F] one JSON decision per input line
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO, Optional

import typer
from pydantic import ValidationError

import schemas
from release.compiler import load_policies, load_policy
from release.decision import decide
from release.describe import render_policy
from release.errors import MissingSecret, PolicyError, display_path
from release.explain_input import MAX_DEPTH, MAX_LINE_BYTES, LineProblem, decode_line, read_lines
from release.jsonview import to_json
from release.model import CompiledPolicy
from release.secretstore import SecretStore

__all__ = ["app", "explain_lines", "render_policy"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Partner release policies: validate them, show what they release, explain decisions.")


def _policies_dir(directory: Optional[Path]) -> Path:
    if directory is not None:
        return directory
    from release import default_policies_dir

    return default_policies_dir()


def _fail(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- check


@app.command("check")
def check(
    directory: Optional[Path] = typer.Argument(None, help="Policy directory (default: <deploy_dir>/policies).",
                                               show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the description as JSON."),
    linkable: bool = typer.Option(False, "--linkable",
                                  help="Instead of the description: per partner pair and type, the fields both "
                                       "receive with a value that may be unique to the record, and whether both "
                                       "policies acknowledge them (with --json: as JSON)."),
) -> None:
    """Validate every policy against the Avro schemas and show what each partner receives, and how.

    Refuses (exit 2, file:line: field path: problem) every escape route: a field that gives a transformed
    one back, rules of a type the partner can tell apart, a rule without a released time, a value two
    partners could join their copies of a record on; unless the rule acknowledges it with a reason.
    """
    directory = _policies_dir(directory)
    try:
        policies = load_policies(directory)
    except PolicyError as exc:
        _fail(str(exc))
    if linkable:
        from release.linkable import linkable_fields, linkable_json, render_linkable

        table = linkable_fields(policies)
        typer.echo(linkable_json(table) if as_json else render_linkable(table))
        return
    if as_json:
        out = [{"partner": p.partner, "version": p.version, "path": display_path(p.path), "ceiling": p.ceiling,
                "require_releasable_to": p.require_releasable_to,
                "sets": {k: sorted(v) for k, v in p.sets.items()}, "rules": p.describe(),
                "withheld_types": [t for t in schemas.MESSAGE_TYPES if t not in p.types]}
               for p in policies.values()]
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{display_path(directory)}: {len(policies)} valid "
               f"polic{'y' if len(policies) == 1 else 'ies'} ({', '.join(policies)})")
    for policy in policies.values():
        typer.echo("")
        typer.echo(render_policy(policy))


# --------------------------------------------------------------------------- explain


@app.command("explain")
def explain(
    partner: str = typer.Option(..., "--partner", "-p", help="Partner code, e.g. RUS."),
    input_file: str = typer.Option("-", "--input", "-i",
                                   help='JSON lines {"type": "<RecordName>", "value": {...}}, UTF-8, at most '
                                        f'{MAX_LINE_BYTES // (1 << 20)} MiB per line and {MAX_DEPTH} levels of '
                                        'nesting; "-" for stdin.'),
    policies_dir: Optional[Path] = typer.Option(None, "--policies", help="Policy directory (default: <deploy_dir>/policies).",
                                                show_default=False),
    secrets_dir: Optional[Path] = typer.Option(None, "--secrets", help="Secret key directory (default: <state_dir>/secrets).",
                                               show_default=False),
) -> None:
    """Decide each input record for PARTNER; print one JSON line per input line, in order.

    Output: {"decision": "RELEASE"|"WITHHOLD", "rule", "reason", "released"}, or for a line that is not
    a valid record {"decision": "ERROR", "reason": "line N: ..."}.

    Every line is answered, whatever its bytes: a line that is not UTF-8, longer than 1 MiB, nested
    deeper than 64 levels, not JSON, or holds NaN/Infinity (numbers must be finite) is an ERROR for
    that line only; the reason names the problem, never the line's values. Output is standard JSON.
    """
    partner = partner.strip().upper()
    directory = _policies_dir(policies_dir)
    try:
        policies = load_policies(directory)
    except PolicyError as exc:
        _fail(str(exc))
    policy = policies.get(partner)
    if policy is None:
        _fail(f"unknown partner {partner!r}: no policy {partner}.yaml in {display_path(directory)} "
              f"(partners: {', '.join(policies)})")
    if policy.pseudonymises:
        store = SecretStore(secrets_dir)
        try:
            store.ensure(partner)
            policy = load_policy(policy.path, store)
        except (PolicyError, MissingSecret, ValueError, OSError) as exc:
            _fail(f"cannot load the pseudonymisation key of {partner}: {exc}")

    if input_file == "-":
        _run(typer.get_binary_stream("stdin"), policy)
    else:
        try:
            with open(input_file, "rb") as stream:
                _run(stream, policy)
        except OSError as exc:
            _fail(f"cannot read {input_file}: {exc.strerror or exc}")


def _run(stream: BinaryIO, policy: CompiledPolicy) -> None:
    for number, result in enumerate(explain_lines(read_lines(stream), policy), start=1):
        typer.echo(_dump(number, result))
    sys.stdout.flush()


def _dump(number: int, result: dict[str, Any]) -> str:
    """``result`` as one line of standard JSON (no NaN/Infinity, encodable as UTF-8), else an ERROR line."""
    try:
        text = json.dumps(result, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
        return text
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        return json.dumps(_error(number, f"the answer cannot be written as standard JSON ({type(exc).__name__})"))


def explain_lines(lines, policy: CompiledPolicy):
    """One result dict per input line (see :func:`explain`), in order; a line is ``bytes``, ``str`` or
    :data:`release.explain_input.TOO_LONG`. No line stops the run: any failure is that line's ERROR."""
    for number, line in enumerate(lines, start=1):
        try:
            yield _explain_line(number, line, policy)
        except Exception as exc:  # noqa: BLE001 - one line's failure must not lose the other answers
            yield _error(number, f"cannot be decided ({type(exc).__name__})")


def _error(number: int, message: str) -> dict[str, Any]:
    return {"decision": "ERROR", "reason": f"line {number}: {message}"}


def _explain_line(number: int, line: bytes | str, policy: CompiledPolicy) -> dict[str, Any]:
    from schemas.models import MODELS, to_avro

    try:
        item = decode_line(number, line)
    except LineProblem as exc:
        return _error(number, str(exc))
    if not isinstance(item, dict):
        return _error(number, "expected a JSON object {\"type\": ..., \"value\": {...}}")
    unknown = sorted(set(item) - {"type", "value"})
    if unknown:
        return _error(number, f"unknown key(s) {', '.join(map(repr, unknown))} (expected type and value)")
    type_name = item.get("type")
    if not isinstance(type_name, str) or type_name not in MODELS:
        return _error(number, f"type: unknown message type {type_name!r}; known: {', '.join(schemas.MESSAGE_TYPES)}")
    value = item.get("value")
    if not isinstance(value, dict):
        return _error(number, "value: expected a JSON object (the record, label included)")
    try:
        model = MODELS[type_name].model_validate(value)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in ("value", *err["loc"]))
            problems.append(f"{where}: {err['msg']}")
        return _error(number, "; ".join(problems))
    decision = decide(type_name, to_avro(model), policy)
    return {"decision": decision.decision, "rule": decision.rule, "reason": decision.reason,
            "released": to_json(decision.released)}

"""Unlinkability across partners: for any two partners, their views of one record share no value that may
be unique to that record, unless both policies release that field deliberately. Pure.

Two partners holding the same record-unique value (an exact time, an id, an exact position or measure,
free text) can join their copies of the record, and with them everything else: the pseudonyms each got
for one subject, or one partner's exact view with the other's coarsened one. Pseudonyms differ per
partner by construction (a key per partner), so a pseudonymised field never links; nor does a field
with a few values (an enum, a boolean) or a field a condition of the rule pins to a named set or a
constant (``in_set``, ``equals``). What two copies share of a time is its coarser bucket, of a position its
coarser grid: shared at a day (:data:`UNIQUE_BELOW_SECONDS`) or a 0.5 degree grid
(:data:`UNIQUE_BELOW_GRID_DEG`) or coarser, it no longer singles out a record.

A rule marks fields it releases deliberately, although another partner may get the same value, with
``acknowledge: {linkable: {<path>: <reason>}}`` (a path covers the fields below it), or
``acknowledge: {linkable: <reason>}`` for every field it releases. Deliberate = every rule of both
partners that releases the field says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import schemas
from release.facts import Released, RuleFacts, describe_precision
from release.model import CompiledPolicy
from release.yamlsrc import Loc

__all__ = ["UNIQUE_BELOW_SECONDS", "UNIQUE_BELOW_GRID_DEG", "LinkableField", "linkable_fields",
           "linkability_problems", "render_linkable", "linkable_json"]

#: A time two partners share at a precision finer than this (seconds) may be unique to a record.
UNIQUE_BELOW_SECONDS = 86_400
#: A position two partners share on a grid finer than this (degrees) may be unique to a record.
UNIQUE_BELOW_GRID_DEG = 0.5


@dataclass(frozen=True)
class LinkableField:
    """A field two partners both receive with a value that may be unique to the record."""

    type_name: str
    path: str
    #: What the two copies share: ``exact``, ``bucketed to 3600 s``, ``coarsened to a 0.1 deg grid``.
    shared: str
    #: Every rule of both partners that releases it acknowledges it (``acknowledge: {linkable: ...}``).
    deliberate: bool
    #: Partner -> the rules releasing it.
    rules: Mapping[str, tuple[str, ...]]
    #: Partner -> the reasons its rules state.
    reasons: Mapping[str, tuple[str, ...]]
    #: (partner, rule) of the rules releasing it without acknowledging it.
    unacknowledged: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "field": self.path, "shared": self.shared, "deliberate": self.deliberate,
                "rules": {k: list(v) for k, v in self.rules.items()},
                "reasons": {k: list(v) for k, v in self.reasons.items()},
                "unacknowledged": [list(x) for x in self.unacknowledged]}


def _shared(ra: Released, rb: Released) -> tuple[float, str] | None:
    """(precision, text) of what two copies share of one unit, when that may single out the record."""
    if ra.unit == "pseudonym" or rb.unit == "pseudonym" or ra.unit != rb.unit:
        return None
    if ra.unit in ("time", "position"):
        if ra.unit == "position" and not set(ra.parts) & set(rb.parts):
            return None
        precision = max(ra.precision or 0, rb.precision or 0)
        limit = UNIQUE_BELOW_SECONDS if ra.unit == "time" else UNIQUE_BELOW_GRID_DEG
        return (precision, describe_precision(ra.unit, precision)) if precision < limit else None
    if ra.few_values or rb.few_values:
        return None
    return (0, "exact")


def linkable_fields(policies: Mapping[str, CompiledPolicy]) -> dict[tuple[str, str], dict[str, dict[str, LinkableField]]]:
    """Per partner pair ``(a, b)`` (a < b) and per type both release: the fields both partners receive with a
    value that may be unique to the record, by path, each saying whether both policies mark it deliberate."""
    # partners only: our components are our side (nothing they receive leaves it)
    codes = sorted(code for code, p in policies.items() if p.facts is not None and p.is_partner)
    out: dict[tuple[str, str], dict[str, dict[str, LinkableField]]] = {}
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            fa, fb = policies[a].facts, policies[b].facts
            out[(a, b)] = {t: _linkable_of_type(t, a, fa.types[t], b, fb.types[t])
                           for t in schemas.MESSAGE_TYPES if t in fa.types and t in fb.types}
    return out


def _linkable_of_type(type_name: str, a: str, rules_a, b: str, rules_b) -> dict[str, LinkableField]:
    found: dict[str, dict[str, Any]] = {}
    for ra in rules_a:
        for rb in rules_b:
            for path, ua in ra.released.items():
                ub = rb.released.get(path)
                if ub is None or path in ra.constrained or path in rb.constrained:
                    continue
                shared = _shared(ua, ub)
                if shared is None:
                    continue
                entry = found.setdefault(path, {"shared": shared, "rules": {a: [], b: []}, "reasons": {a: [], b: []},
                                                "missing": []})
                entry["shared"] = min(entry["shared"], shared)
                for code, rf in ((a, ra), (b, rb)):
                    if rf.rule_id in entry["rules"][code]:
                        continue
                    entry["rules"][code].append(rf.rule_id)
                    reason = rf.linkable_reason(path)
                    if reason is None:
                        entry["missing"].append((code, rf.rule_id))
                    elif reason not in entry["reasons"][code]:
                        entry["reasons"][code].append(reason)
    return {path: LinkableField(type_name, path, e["shared"][1], not e["missing"],
                                {k: tuple(v) for k, v in e["rules"].items()},
                                {k: tuple(v) for k, v in e["reasons"].items()}, tuple(e["missing"]))
            for path, e in found.items()}


def linkability_problems(policies: Mapping[str, CompiledPolicy]) -> list[tuple[str, Loc, str]]:
    """``(partner, loc, message)`` for every rule releasing a linkable field it does not acknowledge."""
    out = []
    for (a, b), types in linkable_fields(policies).items():
        for type_name, fields in types.items():
            for lf in fields.values():
                for code, rule_id in lf.unacknowledged:
                    other = b if code == a else a
                    out.append((code, _rule(policies[code], type_name, rule_id).released[lf.path].loc,
                                _message(policies, lf, code, rule_id, other)))
    return out


def _rule(policy: CompiledPolicy, type_name: str, rule_id: str) -> RuleFacts:
    return next(rf for rf in policy.facts.types[type_name] if rf.rule_id == rule_id)


def _message(policies: Mapping[str, CompiledPolicy], lf: LinkableField, code: str, rule_id: str, other: str) -> str:
    facts = policies[other].facts
    where = ", ".join(f"rule {r} at {facts.shown}:{facts.line(_rule(policies[other], lf.type_name, r).loc)}"
                      for r in lf.rules[other])
    released = _rule(policies[code], lf.type_name, rule_id).released[lf.path]
    fix = {"time": f"bucket it to {UNIQUE_BELOW_SECONDS} s or coarser or drop it",
           "position": f"coarsen it to a {UNIQUE_BELOW_GRID_DEG:g} deg grid or coarser or drop it"}.get(
        released.unit, "pseudonymise or drop it" if released.node.is_plain_string else "drop it")
    return (f"rule {rule_id!r}: {lf.type_name}.{lf.path} reaches both {code} and {other} {lf.shared} ({other}: {where}): "
            f"a value that may be unique to the record, so the two partners could join their copies of it; "
            f"{fix} in one of the two policies, or acknowledge it in both "
            f"(acknowledge: {{linkable: {{{lf.path}: <reason>}}}})")


# =========================================================================== output


def render_linkable(table: dict[tuple[str, str], dict[str, dict[str, LinkableField]]]) -> str:
    """Human text of :func:`linkable_fields` (``liaison policy check --linkable``)."""
    lines = []
    for (a, b), types in table.items():
        lines.append(f"{a} + {b}: fields both receive with a value that may be unique to the record")
        for type_name, fields in types.items():
            if not fields:
                lines.append(f"  {type_name}: none")
                continue
            lines.append(f"  {type_name}:")
            width = max(len(p) for p in fields)
            shared = max(len(lf.shared) for lf in fields.values())
            reasons: dict[str, list[str]] = {a: [], b: []}
            for lf in fields.values():
                if lf.deliberate:
                    status = "deliberate"
                else:
                    status = "NOT DELIBERATE: not acknowledged by " + \
                             ", ".join(f"{c} rule {r}" for c, r in lf.unacknowledged)
                lines.append(f"    {lf.path:{width}}  {lf.shared:{shared}}  {status}")
                for code, texts in lf.reasons.items():
                    reasons[code] += [t for t in texts if t not in reasons[code]]
            for code, texts in reasons.items():
                for text in texts:
                    lines.append(f"    {code}: {text}")
    return "\n".join(lines) if lines else "fewer than two partners: nothing two partners could join"


def linkable_json(table: dict[tuple[str, str], dict[str, dict[str, LinkableField]]]) -> str:
    """JSON of :func:`linkable_fields`: a list of ``{"partners": [a, b], "type", "field", "shared", ...}``."""
    rows = [{"partners": [a, b], **lf.as_dict()}
            for (a, b), types in table.items() for fields in types.values() for lf in fields.values()]
    return json.dumps(rows, indent=2)

"""Escape routes: ways a withheld or transformed fact reaches a partner anyway (BRIEF.md, "Everything a
partner receives is data"). Found over the compiled facts of each rule (:mod:`release.facts`); pure.

Per policy (:func:`escape_routes`):

* **no time**: a rule that releases no time leaves the record timestamp nothing but the forwarding
  time, which gives the time of the record back.
* **precision**: a released field carrying the same fact more precisely than a transformed one of the
  same record: a time (``label.created_at`` included) kept or bucketed finer next to a bucketed time; a
  Position kept or on a finer grid next to a coarsened one; an identifier kept exact next to a
  pseudonymised field of the same name (in any type of the policy). Accepted with
  ``acknowledge: {precision: {<path>: <reason>}}`` on the rule releasing the more precise field.
* **distinguishable**: rules of one type whose views differ (a field released by one and null from
  another, another transform, another record timestamp): the partner can tell which rule matched, and
  so which conditions held. Accepted with ``acknowledge: {distinguishable: <reason>}`` on one rule of
  each differing pair.
* an acknowledgement with nothing to acknowledge (it would silently cover a later change).

Across policies, :mod:`release.linkable` (values two partners could join their copies of a record on).
:func:`check_escape_routes` runs both and raises one error naming every file, rule and field.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from release.errors import PolicyError, PolicyErrors
from release.facts import DEFAULT_TIMESTAMP, PolicyFacts, Released, RuleFacts, describe_precision
from release.loader import dotted
from release.model import CompiledPolicy
from release.yamlsrc import Loc

__all__ = ["escape_routes", "check_escape_routes"]

Problem = tuple[Loc, str]


def check_escape_routes(policies: Mapping[str, CompiledPolicy]) -> None:
    """Raise :class:`PolicyError` (one per file, :class:`PolicyErrors` for several) on every escape route
    of ``policies`` (a partner set, by partner): per policy (:func:`escape_routes`) and across policies
    (:func:`release.linkable.linkability_problems`)."""
    from release.linkable import linkability_problems

    found: dict[str, list[Problem]] = {code: escape_routes(p) for code, p in policies.items()}
    for code, loc, message in linkability_problems(policies):
        found[code].append((loc, message))
    errors = [_error(policies[code].facts, problems) for code, problems in sorted(found.items())
              if problems and policies[code].facts is not None]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise PolicyErrors(errors)


def escape_routes(policy: CompiledPolicy) -> list[Problem]:
    """The escape routes of one policy, as ``(loc, message)``: see the module doc."""
    facts: PolicyFacts | None = policy.facts
    if facts is None:
        return []
    problems: list[Problem] = []
    used: set[tuple[str, str, str]] = set()          # (type, rule, path) of precision acknowledgements used
    for type_name, rules in facts.types.items():
        for rf in rules:
            problems += _no_timestamp(rf)
            problems += _finer("time", rf, used)
            problems += _finer("position", rf, used)
        problems += _distinguishable(type_name, rules, facts)
    problems += _exact_next_to_pseudonym(facts, used)
    for rules in facts.types.values():
        for rf in rules:
            acknowledged = rf.acknowledge.precision if rf.acknowledge is not None else None
            for path in acknowledged or ():
                if (rf.type_name, rf.rule_id, path) not in used:
                    problems.append((rf.loc + ("acknowledge", "precision", path),
                                     f"nothing to acknowledge: rule {rf.rule_id!r} releases {path} no more precisely "
                                     f"than its transformed fields (remove the acknowledgement)"))
    return problems


def _error(facts: PolicyFacts, problems: list[Problem]) -> PolicyError:
    rendered = sorted(((facts.line(loc), dotted(loc), message) for loc, message in problems), key=lambda p: p[0])
    return PolicyError(facts.shown, rendered)


# =========================================================================== per rule


def _no_timestamp(rf: RuleFacts) -> list[Problem]:
    if rf.timestamp is not None:
        return []
    default = DEFAULT_TIMESTAMP.get(rf.type_name.rpartition("/")[2], "time")
    return [(rf.loc + ("fields",),
             f"rule {rf.rule_id!r} releases no time of {rf.type_name}: the record timestamp would be the forwarding "
             f"time, which gives the time of the record back; release a time (by default {default} is the record "
             f"timestamp, `timestamp: <path>` names another)")]


def _finer(unit: str, rf: RuleFacts, used: set[tuple[str, str, str]]) -> list[Problem]:
    """Times (or positions) of ``rf`` released more precisely than its most transformed one."""
    units = [r for r in rf.released.values() if r.unit == unit]
    transformed = [r for r in units if r.precision]
    if not transformed:
        return []
    strict = max(transformed, key=lambda r: r.precision)
    out = []
    for r in units:
        if r.precision >= strict.precision:
            continue
        key = rf.precision_key(r.path)
        if key is not None:
            used.add((rf.type_name, rf.rule_id, key))
            continue
        if unit == "time":
            what = "the bucketed time"
            fix = f"bucket it to {strict.precision:g} s as well ({{bucket: {{seconds: {strict.precision:g}}}}})"
        else:
            what = "the coarsened position"
            fix = f"coarsen it to a {strict.precision:g} deg grid as well ({{coarsen: {{grid_deg: {strict.precision:g}}}}})"
        out.append((r.loc, f"rule {rf.rule_id!r}: {r.path} is {r.describe()} next to {strict.path} {strict.describe()}: "
                           f"it gives {what} back; {fix}, drop it, or acknowledge: {{precision: {{{r.path}: <reason>}}}}"))
    return out


def _exact_next_to_pseudonym(facts: PolicyFacts, used: set[tuple[str, str, str]]) -> list[Problem]:
    """Strings released exact under the name of a field pseudonymised elsewhere in the policy."""
    pseudonymised: dict[str, list[tuple[RuleFacts, Released]]] = {}
    exact: dict[str, list[tuple[RuleFacts, Released]]] = {}
    for rules in facts.types.values():
        for rf in rules:
            for r in rf.released.values():
                name = r.path.rsplit(".", 1)[-1]
                if r.unit == "pseudonym":
                    pseudonymised.setdefault(name, []).append((rf, r))
                elif r.unit == "value" and r.kind == "keep" and r.node.prim == "string":
                    exact.setdefault(name, []).append((rf, r))
    out = []
    for name in sorted(set(pseudonymised) & set(exact)):
        others = ", ".join(f"{prf.type_name}.{pr.path} (rule {prf.rule_id})" for prf, pr in pseudonymised[name])
        for rf, r in exact[name]:
            key = rf.precision_key(r.path)
            if key is not None:
                used.add((rf.type_name, rf.rule_id, key))
                continue
            out.append((r.loc, f"rule {rf.rule_id!r}: {rf.type_name}.{r.path} is released exact while {others} is "
                               f"pseudonymised: where both carry the same identifier, the exact value gives the "
                               f"pseudonym back; pseudonymise or drop it, or acknowledge: {{precision: {{{r.path}: "
                               f"<reason>}}}} saying why the values never coincide"))
    return out


# =========================================================================== per type


def _signature(rf: RuleFacts) -> dict[str, tuple]:
    sig: dict[str, tuple] = {path: (r.unit, r.kind, r.precision, r.parts) for path, r in rf.released.items()}
    sig[" timestamp"] = (rf.timestamp,)
    return sig


def _differences(a: RuleFacts, b: RuleFacts) -> list[str]:
    sa, sb = _signature(a), _signature(b)
    out = []
    only_a = [p for p in sa if p not in sb]
    only_b = [p for p in sb if p not in sa]
    if only_a:
        out.append(f"{', '.join(only_a)} released by {a.rule_id} only (null from {b.rule_id})")
    if only_b:
        out.append(f"{', '.join(only_b)} released by {b.rule_id} only (null from {a.rule_id})")
    for path in sa:
        if path in sb and sa[path] != sb[path]:
            if path == " timestamp":
                out.append(f"record timestamp from {a.timestamp} by {a.rule_id}, from {b.timestamp} by {b.rule_id}")
                continue
            ra, rb = a.released[path], b.released[path]
            out.append(f"{path} {_how(ra)} by {a.rule_id}, {_how(rb)} by {b.rule_id}")
    return out


def _how(r: Released) -> str:
    text = describe_precision(r.unit, r.precision)
    if r.unit == "position" and r.parts != ("lat", "lon"):
        text += f" ({' and '.join(r.parts)} only)"
    return text


def _distinguishable(type_name: str, rules: Iterable[RuleFacts], facts: PolicyFacts) -> list[Problem]:
    rules = list(rules)
    out: list[Problem] = []
    differing: set[str] = set()
    for j, b in enumerate(rules):
        for a in rules[:j]:
            diffs = _differences(a, b)
            if not diffs:
                continue
            differing.update((a.rule_id, b.rule_id))
            if a.distinguishable_reason() or b.distinguishable_reason():
                continue
            out.append((b.loc + ("fields",),
                        f"rules {a.rule_id!r} (line {facts.line(a.loc)}) and {b.rule_id!r} of {type_name} release "
                        f"different views: {'; '.join(diffs)}: the partner can tell which rule matched, and so which "
                        f"conditions held; release the same fields the same way in both, or acknowledge: "
                        f"{{distinguishable: <reason>}} in one of them"))
    for rf in rules:
        if rf.distinguishable_reason() and rf.rule_id not in differing:
            out.append((rf.loc + ("acknowledge", "distinguishable"),
                        f"nothing to acknowledge: rule {rf.rule_id!r} releases the same view as every other rule of "
                        f"{type_name} (remove the acknowledgement)"))
    return out

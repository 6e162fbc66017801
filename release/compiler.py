"""Policy files -> compiled policies: validated against the writer schemas, conditions and
projections turned into closures once, derived partner schemas computed once.

Semantics (see also the header of ``deploy/policies/RUS.yaml``):

* ``label:`` (top level) projects the security label of every released record; a rule may
  override single label fields (``label.message_id: drop``) in its ``fields``.
* ``fields:`` is an allow-list: a field no action names is dropped. ``keep`` on a record keeps
  every field the *current* schema gives it (a field unknown to the schema never passes);
  children named under a kept record override it (``route: keep`` + ``route.eta: drop``).
* Conditions on a path that crosses an array hold when *any* value satisfies them.
* When several rules of a type project differently, the derived schema holds the union of
  their fields; a field that not every rule releases becomes optional (``["null", T]``, default
  null) and is null in the records of the rules that drop it.

The jobs: :mod:`release.loader` (file -> spec, with lines), :mod:`release.checks` (spec against
the schemas), :mod:`release.conditions` (check closures), :mod:`release.projection` (projection
functions), :mod:`release.derived` (partner schemas), :mod:`release.describe` (descriptions);
this module runs them in order and builds the :class:`~release.model.CompiledPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import schemas
from release.checks import PolicyChecks
from release.conditions import CondNode, check_of, condition_node
from release.derived import derive_schema
from release.describe import describe_rule
from release.envelope import envelope_plan
from release.errors import MissingSecret, PolicyError, display_path
from release.facts import PolicyFacts, RuleFacts, rule_facts
from release.loader import LoadedPolicy, read_policy
from core.topics import origin_source
from release.model import (
    COMPONENT_NAMESPACE_PREFIX,
    PARTNER_NAMESPACE_PREFIX,
    Check,
    CompiledPolicy,
    CompiledRule,
    TypePlan,
    release_reason,
)
from release.projection import RecordPlan, plan_projection, projector, union_of
from release.schema_tree import SchemaNode, build_tree
from release.spec import PolicySpec, Rule
from release.transforms import make_pseudonymise
from release.yamlsrc import Loc

__all__ = ["CompiledPolicy", "load_policy", "load_policies", "PARTNER_NAMESPACE_PREFIX"]


def load_policies(directory: Path | str, secrets: Any = None, *, escape_routes: bool = True) -> dict[str, CompiledPolicy]:
    """Every ``*.yaml`` policy of ``directory``, by recipient (partner code or component name). Raises
    :class:`PolicyError` on the first invalid file, and when the directory holds no policy at all; then (unless
    ``escape_routes`` is False) on every escape route of the set (:func:`release.escapes.check_escape_routes`: a
    withheld or coarsened fact that comes back through another field, which rule matched, or a value two partners
    could join their copies of a record on), as one error naming every file, rule and field.

    ``from_partners`` rules are compiled against the partner-origin schemas (:mod:`release.exchange`) of the
    partners' policies of the same set; in a partner's policy they are the third-party rule, refused unless the
    origin partner's policy lets those records go on to it (``onward``)."""
    directory = Path(directory)
    shown = display_path(directory)
    if not directory.is_dir():
        raise PolicyError(shown, [(None, "", "not a directory of policy files")])
    strays = sorted(p.name for p in directory.glob("*.yml"))
    if strays:
        raise PolicyError(shown, [(None, "", f"policy files must end in .yaml, not .yml: {', '.join(strays)}")])
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise PolicyError(shown, [(None, "", "no policy (*.yaml) in this directory; every partner would be denied")])
    compilers = [_Compiler(read_policy(path)) for path in files]
    for compiler in compilers:
        compiler.checks.partner(compiler.loaded.path.stem)
        compiler.own(_key(compiler, secrets))
    by_code = {c.spec.recipient: c for c in compilers}
    policies = {c.spec.recipient: c.finish(by_code) for c in compilers}
    if escape_routes:
        from release.escapes import check_escape_routes

        check_escape_routes(policies)
    return policies


def load_policy(path: Path | str, secrets: Any = None) -> CompiledPolicy:
    """Load, validate and compile one policy file.

    ``secrets`` (a :class:`~release.SecretStore`) supplies the partner's pseudonymisation
    key when a rule pseudonymises; a missing key then raises :class:`MissingSecret`. Without a store
    the policy still compiles (for ``policy check``), and a record a pseudonymising rule would
    release is withheld (rule ``pseudonymisation-key-missing``). ``from_partners`` rules need the origin
    partners' policies: they are read from the same directory.

    One file is checked for validity only; escape routes are found over a set of policies
    (:func:`load_policies`, :func:`release.escapes.check_escape_routes`).
    """
    compiler = _Compiler(read_policy(path))
    compiler.checks.partner(compiler.loaded.path.stem)
    compiler.own(_key(compiler, secrets))
    others: dict[str, _Compiler] = {compiler.spec.recipient: compiler}
    for code in compiler.spec.from_partners:
        origin = Path(path).parent / f"{code}.yaml"
        if origin.is_file() and code not in others:
            other = _Compiler(read_policy(origin))
            other.own(None)
            others[code] = other
    return compiler.finish(others)


def _key(compiler: _Compiler, secrets: Any) -> bytes | None:
    if not (compiler.pseudonymises and secrets is not None):
        return None
    try:
        return secrets.key(compiler.spec.recipient)
    except MissingSecret as exc:
        raise MissingSecret(f"{compiler.loaded.shown}: {exc}") from None


def _pseudonymises(spec: PolicySpec) -> bool:
    every = [r for rules in spec.rules.values() for r in rules]
    every += [r for types in spec.from_partners.values() for rules in types.values() for r in rules]
    return any(a.kind == "pseudonymise" for a in spec.label.values()) or any(
        a.kind == "pseudonymise" for r in every for a in r.fields.values())


@dataclass
class _RuleDraft:
    """A rule that passed the checks, before its projection (which needs every rule of the type)."""

    id: str
    plan: RecordPlan
    checks: tuple[Check, ...]
    conditions: tuple[CondNode, ...]
    texts: tuple[str, ...]
    needs_key: bool
    description: dict[str, Any]
    facts: RuleFacts


class _Compiler:
    """Compiles one policy in two steps: :meth:`own` (the rules for our own records: needs nothing else, gives
    the derived schemas other policies' ``from_partners`` rules are compiled against) and :meth:`finish` (the
    ``from_partners`` rules, against the other policies of the set, then the compiled policy)."""

    def __init__(self, loaded: LoadedPolicy):
        self.loaded = loaded
        self.spec = loaded.spec
        self.checks = PolicyChecks(loaded.spec, loaded.lines, loaded.shown)
        self.pseudonymises = _pseudonymises(loaded.spec)
        spec = self.spec
        prefix = PARTNER_NAMESPACE_PREFIX if spec.is_partner else COMPONENT_NAMESPACE_PREFIX
        self.namespace = f"{prefix}.{spec.recipient.lower()}"
        self.seen_ids: dict[str, Loc] = {}
        self.plans: dict[str, TypePlan] = {}
        self.derived: dict[str, dict] = {}
        self.descriptions: list[dict] = []
        self.facts: dict[str, tuple[RuleFacts, ...]] = {}
        self.envelopes: dict[tuple[str, str], Any] = {}
        self.pseudo: Callable | None = None
        self._own: CompiledPolicy | None = None

    def own(self, key: bytes | None) -> None:
        """Compile the rules for our own records (``rules:``); problems are recorded, raised by :meth:`finish`."""
        self.pseudo = make_pseudonymise(key) if key is not None else None
        for type_name, rules in self.spec.rules.items():
            if not self.checks.message_type(type_name):
                continue
            tree = build_tree(schemas.load_schema(type_name))
            self._source(type_name, tree, rules, ("rules", type_name), self.namespace)
        self.checks.reciprocity()

    def own_policy(self) -> CompiledPolicy | None:
        """The policy of our own records only (what ``from_partners`` rules of other policies need: the derived
        schemas), or None when it has problems."""
        if self.checks.problems:
            return None
        if self._own is None:
            self._own = self._build(dict(self.plans), dict(self.derived))
        return self._own

    def finish(self, others: dict[str, _Compiler]) -> CompiledPolicy:
        """Compile ``from_partners`` against the origin partners of ``others`` (recipient -> compiler, whose
        :meth:`own` ran), check the third-party rule, and build the policy; raises :class:`PolicyError` with every
        problem found."""
        from release.exchange import origin_schema

        checks, spec = self.checks, self.spec
        for code, types in spec.from_partners.items():
            floc: Loc = ("from_partners", code)
            origin = others.get(code)
            if code == spec.recipient:
                checks.problem(floc, f"{code} cannot receive its own records back")
                continue
            if origin is None or not origin.spec.is_partner:
                checks.problem(floc, f"no policy for partner {code} in this directory: it sends us nothing")
                continue
            origin_policy = origin.own_policy()
            for type_name, rules in types.items():
                tloc: Loc = floc + (type_name,)
                if type_name not in schemas.MESSAGE_TYPES:
                    checks.problem(tloc, f"unknown message type {type_name!r}; known: {', '.join(schemas.MESSAGE_TYPES)}")
                    continue
                if origin_policy is None:
                    checks.problem(tloc, f"the policy of {code} ({origin.loaded.shown}) has problems: fix it first")
                    continue
                if type_name not in origin_policy.types:
                    checks.problem(tloc, f"{code} sends no {type_name}: its policy releases none (no inbound topic)")
                    continue
                if spec.is_partner and spec.recipient not in origin.spec.onward.get(type_name, []):
                    checks.problem(tloc, f"third-party rule: {code}'s {type_name} records never go on to another "
                                         f"partner unless {origin.loaded.shown} allows it (onward: {{{type_name}: "
                                         f"[{spec.recipient}]}})")
                    continue
                source = origin_source(code, type_name)
                tree = build_tree(origin_schema(origin_policy, type_name))
                self._source(source, tree, rules, tloc, f"{self.namespace}.origin.{code.lower()}")
        checks.onward()
        checks.sets_used()
        checks.raise_problems()
        return self._build(self.plans, self.derived)

    def _build(self, plans: dict[str, TypePlan], derived: dict[str, dict]) -> CompiledPolicy:
        spec = self.spec
        return CompiledPolicy(
            partner=spec.recipient, version=self.loaded.version, path=self.loaded.path,
            ceiling=spec.classification_ceiling, require_releasable_to=spec.require_releasable_to,
            sets={k: frozenset(v) for k, v in spec.sets.items()},
            plans=plans, derived=derived, descriptions=self.descriptions,
            pseudonymises=self.pseudonymises, has_key=(self.pseudo is not None or not self.pseudonymises),
            facts=PolicyFacts(spec.recipient, self.loaded.shown, self.loaded.lines, self.facts),
            envelopes=self.envelopes, kind="partner" if spec.is_partner else "component", spec=spec,
        )

    def _source(self, source: str, tree: SchemaNode, rules: list[Rule], loc: Loc, namespace: str) -> None:
        """Compile the rules of one source (a type of ours, or "<PARTNER>/<Type>") against ``tree``."""
        checks = self.checks
        checks.label_section(source, tree)
        drafts = []
        for index, rule in enumerate(rules):
            rloc: Loc = loc + (index,)
            checks.rule_id(rule.id, rloc + ("id",), self.seen_ids)
            drafts.append(self._draft(source, tree, rule, rloc))
        if any(d is None for d in drafts):
            return
        union = union_of(tree, [d.plan for d in drafts])
        for index, rule in enumerate(rules):
            for n, name in enumerate(rule.nullable):
                if name in union.children:
                    union.children[name].nullable = True
                else:
                    checks.problem(loc + (index, "nullable", n), f"{name!r} is not a field this type's rules release")
        compiled = []
        for d in drafts:
            project: Callable | None = (None if (d.needs_key and self.pseudo is None)
                                        else projector(d.plan, union, self.pseudo))
            compiled.append(CompiledRule(d.id, d.checks, d.texts, project, release_reason(source, d.id, d.texts),
                                         d.conditions, d.plan, union))
            self.descriptions.append(d.description)
        self.plans[source] = TypePlan(source, tuple(compiled))
        self.facts[source] = tuple(d.facts for d in drafts)
        self.envelopes.update({(source, d.id): envelope_plan(d.facts) for d in drafts})
        self.derived[source] = derive_schema(tree, union, namespace)

    def _draft(self, type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc) -> _RuleDraft | None:
        """Check one rule; None when it has a problem (recorded in :attr:`checks`)."""
        checks = self.checks
        before = len(checks.problems)
        named = checks.field_actions(type_name, tree, rule, rloc)
        fitting = [condition for index, condition in enumerate(rule.when)
                   if checks.condition(tree, condition, rloc + ("when", index))]
        if len(checks.problems) > before:
            return None
        compiled = [condition_node(tree, condition, self.spec.sets) for condition in fitting]
        texts = tuple(text for _, text in compiled)
        plan, effective = plan_projection(tree, named)
        if not any(name != "label" for name in plan.children):
            checks.problem(rloc + ("fields",), f"rule {rule.id!r} releases no field of {type_name} besides the label")
            return None
        facts = rule_facts(type_name, tree, rule, rloc, named, effective, checks.problem)
        if len(checks.problems) > before:
            return None
        description = describe_rule(type_name, rule.id, tree, list(texts), named, effective)
        description["timestamp"] = facts.timestamp
        description["acknowledge"] = rule.acknowledge.model_dump(exclude_none=True) if rule.acknowledge else {}
        return _RuleDraft(
            id=rule.id,
            plan=plan,
            checks=tuple(check_of(node) for node, _ in compiled),
            conditions=tuple(node for node, _ in compiled),
            texts=texts,
            needs_key=any(a.kind == "pseudonymise" for a, _ in named.values()),
            description=description,
            facts=facts,
        )

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
from release.conditions import compile_condition
from release.derived import derive_schema
from release.describe import describe_rule
from release.envelope import envelope_plan
from release.errors import MissingSecret, PolicyError, display_path
from release.facts import PolicyFacts, RuleFacts, rule_facts
from release.loader import LoadedPolicy, read_policy
from release.model import (
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
    """Every ``*.yaml`` policy of ``directory``, by partner. Raises :class:`PolicyError` on the first
    invalid file, and when the directory holds no policy at all; then (unless ``escape_routes`` is
    False) on every escape route of the set (:func:`release.escapes.check_escape_routes`: a withheld or
    coarsened fact that comes back through another field, which rule matched, or a value two partners
    could join their copies of a record on), as one error naming every file, rule and field."""
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
    policies = {policy.partner: policy for policy in (load_policy(path, secrets) for path in files)}
    if escape_routes:
        from release.escapes import check_escape_routes

        check_escape_routes(policies)
    return policies


def load_policy(path: Path | str, secrets: Any = None) -> CompiledPolicy:
    """Load, validate and compile one policy file.

    ``secrets`` (a :class:`~release.SecretStore`) supplies the partner's pseudonymisation
    key when a rule pseudonymises; a missing key then raises :class:`MissingSecret`. Without a store
    the policy still compiles (for ``policy check``), and a record a pseudonymising rule would
    release is withheld (rule ``pseudonymisation-key-missing``).

    One file is checked for validity only; escape routes are found over a set of policies
    (:func:`load_policies`, :func:`release.escapes.check_escape_routes`).
    """
    loaded = read_policy(path)
    compiler = _Compiler(loaded)
    compiler.checks.partner(loaded.path.stem)
    key: bytes | None = None
    if compiler.pseudonymises and secrets is not None:
        try:
            key = secrets.key(loaded.spec.partner)
        except MissingSecret as exc:
            raise MissingSecret(f"{loaded.shown}: {exc}") from None
    return compiler.compile(key)


def _pseudonymises(spec: PolicySpec) -> bool:
    return any(a.kind == "pseudonymise" for a in spec.label.values()) or any(
        a.kind == "pseudonymise" for rules in spec.rules.values() for r in rules for a in r.fields.values())


@dataclass
class _RuleDraft:
    """A rule that passed the checks, before its projection (which needs every rule of the type)."""

    id: str
    plan: RecordPlan
    checks: tuple[Check, ...]
    texts: tuple[str, ...]
    needs_key: bool
    description: dict[str, Any]
    facts: RuleFacts


class _Compiler:
    def __init__(self, loaded: LoadedPolicy):
        self.loaded = loaded
        self.spec = loaded.spec
        self.checks = PolicyChecks(loaded.spec, loaded.lines, loaded.shown)
        self.pseudonymises = _pseudonymises(loaded.spec)

    def compile(self, key: bytes | None) -> CompiledPolicy:
        """The compiled policy; raises :class:`PolicyError` with every problem found."""
        spec, checks = self.spec, self.checks
        pseudo = make_pseudonymise(key) if key is not None else None
        namespace = f"{PARTNER_NAMESPACE_PREFIX}.{spec.partner.lower()}"
        seen_ids: dict[str, Loc] = {}
        plans: dict[str, TypePlan] = {}
        derived: dict[str, dict] = {}
        descriptions: list[dict] = []
        facts: dict[str, tuple[RuleFacts, ...]] = {}
        envelopes: dict[tuple[str, str], Any] = {}

        for type_name, rules in spec.rules.items():
            if not checks.message_type(type_name):
                continue
            tree = build_tree(schemas.load_schema(type_name))
            checks.label_section(type_name, tree)
            drafts = []
            for index, rule in enumerate(rules):
                rloc: Loc = ("rules", type_name, index)
                checks.rule_id(rule.id, rloc + ("id",), seen_ids)
                drafts.append(self._draft(type_name, tree, rule, rloc))
            if any(d is None for d in drafts):
                continue
            union = union_of(tree, [d.plan for d in drafts])
            for index, rule in enumerate(rules):
                for n, name in enumerate(rule.nullable):
                    if name in union.children:
                        union.children[name].nullable = True
                    else:
                        checks.problem(("rules", type_name, index, "nullable", n),
                                       f"{name!r} is not a field this type's rules release")
            compiled = []
            for d in drafts:
                project: Callable | None = None if (d.needs_key and pseudo is None) else projector(d.plan, union, pseudo)
                compiled.append(CompiledRule(d.id, d.checks, d.texts, project, release_reason(type_name, d.id, d.texts)))
                descriptions.append(d.description)
            plans[type_name] = TypePlan(type_name, tuple(compiled))
            facts[type_name] = tuple(d.facts for d in drafts)
            envelopes.update({(type_name, d.id): envelope_plan(d.facts) for d in drafts})
            derived[type_name] = derive_schema(tree, union, namespace)

        checks.sets_used()
        checks.raise_problems()
        return CompiledPolicy(
            partner=spec.partner, version=self.loaded.version, path=self.loaded.path,
            ceiling=spec.classification_ceiling, require_releasable_to=spec.require_releasable_to,
            sets={k: frozenset(v) for k, v in spec.sets.items()},
            plans=plans, derived=derived, descriptions=descriptions,
            pseudonymises=self.pseudonymises, has_key=(pseudo is not None or not self.pseudonymises),
            facts=PolicyFacts(spec.partner, self.loaded.shown, self.loaded.lines, facts), envelopes=envelopes,
        )

    def _draft(self, type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc) -> _RuleDraft | None:
        """Check one rule; None when it has a problem (recorded in :attr:`checks`)."""
        checks = self.checks
        before = len(checks.problems)
        named = checks.field_actions(type_name, tree, rule, rloc)
        fitting = [condition for index, condition in enumerate(rule.when)
                   if checks.condition(tree, condition, rloc + ("when", index))]
        if len(checks.problems) > before:
            return None
        compiled = [compile_condition(tree, condition, self.spec.sets) for condition in fitting]
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
            checks=tuple(check for check, _ in compiled),
            texts=texts,
            needs_key=any(a.kind == "pseudonymise" for a, _ in named.values()),
            description=description,
            facts=facts,
        )

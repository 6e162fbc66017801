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
"""

from __future__ import annotations

import copy
import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from pydantic import ValidationError

import schemas
from release.errors import MissingSecret, PolicyError, display_path
from release.schema_tree import PRIMITIVES, SchemaNode, build_tree
from release.spec import (
    CLASSIFICATIONS,
    RESERVED_RULE_IDS,
    Action,
    Condition,
    PolicySpec,
    Rule,
)
from release.transforms import make_bucket, make_coarsen, make_pseudonymise
from release.yamlsrc import LineMap, Loc, YamlSourceError, load_with_lines

__all__ = ["CompiledPolicy", "load_policy", "load_policies", "PARTNER_NAMESPACE_PREFIX"]

PARTNER_NAMESPACE_PREFIX = "liaison.bus.partner"

#: Condition check: returns None when the condition holds, else a short text saying why not
#: (field names, set names and policy constants only, never a value of the record).
Check = Callable[[dict], Optional[str]]
Projector = Callable[[dict], dict]

_NULLFILL = object()  # marker: emit None for a field of the derived schema this rule does not release


# =========================================================================== compiled policy


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    id: str
    checks: tuple[Check, ...]
    condition_texts: tuple[str, ...]
    project: Projector | None          # None: needs a pseudonymisation key that is not loaded
    release_reason: str


@dataclass(frozen=True, slots=True)
class _TypePlan:
    type_name: str
    rules: tuple[_CompiledRule, ...]


class CompiledPolicy:
    """A validated partner policy, ready for :func:`release.decide`."""

    def __init__(self, *, partner: str, version: str, path: Path, ceiling: str, require_releasable_to: bool,
                 sets: dict[str, frozenset[str]], plans: dict[str, _TypePlan], derived: dict[str, dict],
                 descriptions: list[dict], pseudonymises: bool, has_key: bool):
        self.partner = partner
        #: First 16 hex digits of the SHA-256 of the policy file's bytes.
        self.version = version
        self.path = path
        #: Classification ceiling (symbol, e.g. ``CONFIDENTIAL``).
        self.ceiling = ceiling
        self.ceiling_level = CLASSIFICATIONS.index(ceiling)
        self.require_releasable_to = require_releasable_to
        self.sets = dict(sets)
        #: Message types this policy has rules for, in the order of :data:`schemas.MESSAGE_TYPES`.
        self.types: tuple[str, ...] = tuple(t for t in schemas.MESSAGE_TYPES if t in plans)
        #: True when some rule pseudonymises a field (so the partner's key is needed).
        self.pseudonymises = pseudonymises
        #: True when the pseudonymisation key was loaded (or none is needed).
        self.has_key = has_key
        self.namespace = f"{PARTNER_NAMESPACE_PREFIX}.{partner.lower()}"
        self._plans = plans
        self._derived = derived
        self._descriptions = descriptions
        self._build_fixed_decisions()

    def __repr__(self) -> str:
        return f"CompiledPolicy({self.partner}, version={self.version}, types={list(self.types)})"

    def derived_schema(self, type_name: str) -> dict[str, Any]:
        """The partner's Avro schema of ``type_name`` (a fresh dict): the internal schema minus every
        dropped field, without ``doc`` attributes, in namespace ``liaison.bus.partner.<partner>``."""
        try:
            return copy.deepcopy(self._derived[type_name])
        except KeyError:
            raise KeyError(f"{self.partner} releases no {type_name}; released types: {', '.join(self.types)}") from None

    def describe(self) -> list[dict[str, Any]]:
        """Per type and rule: conditions and the kept, dropped, coarsened, bucketed and pseudonymised paths.

        ``dropped`` lists explicit drops, ``unnamed`` the fields dropped because no action names them.
        """
        return copy.deepcopy(self._descriptions)

    # -------------------------------------------------------------- decision support

    def _build_fixed_decisions(self) -> None:
        from release.decision import Decision  # local: decision imports this module

        p = self.partner
        self._no_label = Decision(p, "WITHHOLD", "label-ceiling", "record has no security label", None)
        self._bad_classification = Decision(p, "WITHHOLD", "label-ceiling",
                                            "missing or unknown classification", None)
        self._above: dict[int, Any] = {
            level: Decision(p, "WITHHOLD", "label-ceiling", f"classification {name} above ceiling {self.ceiling}", None)
            for level, name in enumerate(CLASSIFICATIONS) if level > self.ceiling_level
        }
        self._not_rel = Decision(p, "WITHHOLD", "label-releasability", f"releasable_to does not name {p}", None)
        self._no_rule: dict[str, Any] = {}
        self._no_key = {
            (t, r.id): Decision(p, "WITHHOLD", "pseudonymisation-key-missing",
                                f"{t}: rule {r.id} pseudonymises but no key for {p} is loaded", None)
            for t, plan in self._plans.items() for r in plan.rules
        }

    def _no_rule_decision(self, type_name: str) -> Any:
        decision = self._no_rule.get(type_name)
        if decision is None:
            from release.decision import Decision

            name = type_name if isinstance(type_name, str) else repr(type_name)
            decision = Decision(self.partner, "WITHHOLD", "default-deny", f"no rule for {name}", None)
            if len(self._no_rule) < 64:
                self._no_rule[type_name] = decision
        return decision


# =========================================================================== loading


def load_policies(directory: Path | str, secrets: Any = None) -> dict[str, CompiledPolicy]:
    """Every ``*.yaml`` policy of ``directory``, by partner. Raises :class:`PolicyError` on the first
    invalid file, and when the directory holds no policy at all."""
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
    return {policy.partner: policy for policy in (load_policy(path, secrets) for path in files)}


def load_policy(path: Path | str, secrets: Any = None) -> CompiledPolicy:
    """Load, validate and compile one policy file.

    ``secrets`` (a :class:`~release.SecretStore`) supplies the partner's pseudonymisation
    key when a rule pseudonymises; a missing key then raises :class:`MissingSecret`. Without a store
    the policy still compiles (for ``policy check``), and a record a pseudonymising rule would
    release is withheld (rule ``pseudonymisation-key-missing``).
    """
    path = Path(path)
    shown = display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(shown, [(None, "", f"cannot read policy: {exc.strerror or exc}")]) from None
    version = hashlib.sha256(data).hexdigest()[:16]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(shown, [(None, "", f"not UTF-8 text (byte {exc.start})")]) from None
    try:
        tree, lines = load_with_lines(text)
    except YamlSourceError as exc:
        raise PolicyError(shown, [(exc.line, _dotted(exc.loc), exc.message)]) from None
    if tree is None:
        raise PolicyError(shown, [(1, "", "empty policy file")])
    try:
        spec = PolicySpec.model_validate(tree)
    except ValidationError as exc:
        raise PolicyError(shown, _pydantic_problems(exc, lines)) from None

    compiler = _Compiler(spec, lines, shown, path)
    compiler.check_partner(path.stem)
    key: bytes | None = None
    if compiler.pseudonymises and secrets is not None:
        try:
            key = secrets.key(spec.partner)
        except MissingSecret as exc:
            raise MissingSecret(f"{shown}: {exc}") from None
    return compiler.compile(version, key)


def _dotted(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _pydantic_problems(exc: ValidationError, lines: LineMap) -> list[tuple[int | None, str, str]]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        on_key = bool(loc) and loc[-1] == "[key]"
        if on_key:
            loc = loc[:-1]
        kind = err["type"]
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if kind == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif kind == "missing":
            msg = f"missing required key {loc[-1]!r}"
        elif kind == "string_pattern_mismatch":
            msg = f"invalid {'key' if on_key else 'value'}: must match {err.get('ctx', {}).get('pattern')}"
        elif on_key:
            msg = f"invalid key: {msg}"
        line = lines.line(loc)
        problems.append((line, _dotted(loc), msg))
    problems.sort(key=lambda p: p[0] or 0)
    return problems


# =========================================================================== the compiler


@dataclass
class _POp:
    """How one emitted field is produced."""

    node: SchemaNode
    kind: str                          # copy | record | coarsen | bucket | pseudonymise
    action: Action | None = None
    record: Optional[_PRecord] = None  # kind == record


@dataclass
class _PRecord:
    node: SchemaNode
    children: dict[str, _POp] = field(default_factory=dict)


@dataclass
class _UNode:
    """A field of the derived (union over rules) schema."""

    node: SchemaNode
    nullable: bool = False
    children: dict[str, _UNode] = field(default_factory=dict)


_FULL = object()  # shape marker: a record released whole (coarsened Position)


class _Compiler:
    def __init__(self, spec: PolicySpec, lines: LineMap, shown: str, path: Path):
        self.spec = spec
        self.lines = lines
        self.shown = shown
        self.path = path
        self.problems: list[tuple[Loc, str]] = []
        self._seen_problems: set[tuple[Loc, str]] = set()
        # Every set a condition names counts as used, even when that condition has another problem
        # (so a typo in a field path does not also report the set as unused).
        self.used_sets: set[str] = {name for rules in spec.rules.values() for rule in rules
                                    for cond in rule.when for name in _set_references(cond)}
        self.trees: dict[str, SchemaNode] = {}
        self.pseudonymises = any(a.kind == "pseudonymise" for a in spec.label.values()) or any(
            a.kind == "pseudonymise" for rules in spec.rules.values() for r in rules for a in r.fields.values())

    # -------------------------------------------------------------- problems

    def problem(self, loc: Loc, message: str) -> None:
        item = (tuple(loc), message)
        if item not in self._seen_problems:
            self._seen_problems.add(item)
            self.problems.append(item)

    def raise_problems(self) -> None:
        if self.problems:
            rendered = [(self.lines.line(loc), _dotted(loc), msg) for loc, msg in self.problems]
            rendered.sort(key=lambda p: p[0])
            raise PolicyError(self.shown, rendered)

    def check_partner(self, stem: str) -> None:
        if self.spec.partner != stem:
            self.problem(("partner",), f"partner {self.spec.partner!r} must equal the file name {stem!r}")

    # -------------------------------------------------------------- main

    def compile(self, version: str, key: bytes | None) -> CompiledPolicy:
        spec = self.spec
        self.pseudo = make_pseudonymise(key) if key is not None else None
        seen_ids: dict[str, Loc] = {}
        plans: dict[str, _TypePlan] = {}
        derived: dict[str, dict] = {}
        descriptions: list[dict] = []

        for type_name, rules in spec.rules.items():
            if type_name not in schemas.MESSAGE_TYPES:
                self.problem(("rules", type_name), f"unknown message type {type_name!r}{_suggest(type_name, schemas.MESSAGE_TYPES)}"
                             f"; known: {', '.join(schemas.MESSAGE_TYPES)}")
                continue
            tree = build_tree(schemas.load_schema(type_name))
            self.trees[type_name] = tree
            self._check_label_section(type_name, tree)
            compiled_rules = []
            for index, rule in enumerate(rules):
                rloc: Loc = ("rules", type_name, index)
                if rule.id in RESERVED_RULE_IDS:
                    self.problem(rloc + ("id",), f"rule id {rule.id!r} is reserved for decisions without a rule")
                if rule.id in seen_ids:
                    first = self.lines.line(seen_ids[rule.id])
                    self.problem(rloc + ("id",), f"duplicate rule id {rule.id!r} (first at line {first})")
                else:
                    seen_ids[rule.id] = rloc + ("id",)
                compiled_rules.append(self._compile_rule(type_name, tree, rule, rloc))
            if any(c is None for c in compiled_rules):
                continue
            union = self._union(tree, [c["plan"] for c in compiled_rules])
            rule_objs = []
            for c in compiled_rules:
                project = None if (c["needs_key"] and self.pseudo is None) else _projector(c["plan"], union, self.pseudo)
                rule_objs.append(_CompiledRule(c["id"], c["checks"], c["texts"], project, c["release_reason"]))
                descriptions.append(c["describe"])
            plans[type_name] = _TypePlan(type_name, tuple(rule_objs))
            derived[type_name] = _derive_schema(tree, union, f"{PARTNER_NAMESPACE_PREFIX}.{spec.partner.lower()}")

        for name in spec.sets:
            if name not in self.used_sets:
                self.problem(("sets", name), f"set {name!r} is defined but no condition uses it")
        self.raise_problems()
        return CompiledPolicy(
            partner=spec.partner, version=version, path=self.path, ceiling=spec.classification_ceiling,
            require_releasable_to=spec.require_releasable_to,
            sets={k: frozenset(v) for k, v in spec.sets.items()},
            plans=plans, derived=derived, descriptions=descriptions,
            pseudonymises=self.pseudonymises, has_key=(self.pseudo is not None or not self.pseudonymises),
        )

    # -------------------------------------------------------------- field actions

    def _check_label_section(self, type_name: str, tree: SchemaNode) -> None:
        label = tree.children.get("label")
        if label is None or not label.is_record:
            self.problem(("label",), f"{type_name} has no label record")

    def _named_actions(self, type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc) -> dict[str, tuple[Action, Loc]]:
        named: dict[str, tuple[Action, Loc]] = {}
        for sub, action in self.spec.label.items():
            named[f"label.{sub}"] = (action, ("label", sub))
        for path, action in rule.fields.items():
            loc = rloc + ("fields", path)
            if path == "label":
                self.problem(loc, "the label is projected by the top-level 'label' section; "
                                  "a rule may only override single label fields (label.<field>)")
                continue
            named[path] = (action, loc)
        # validate every path and the fit of its action
        valid: dict[str, tuple[Action, Loc]] = {}
        for path, (action, loc) in named.items():
            node = tree.find(path)
            if node is None:
                shown = path[len("label."):] if loc[0] == "label" else path
                scope = "SecurityLabel" if loc[0] == "label" else type_name
                self.problem(loc, f"unknown field {shown!r} in {scope}{_suggest_path(tree, path, loc[0] == 'label')}")
                continue
            if not self._fits(node, action, loc):
                continue
            valid[path] = (action, loc)
        # nesting: nothing under a dropped or transformed field may have its own action
        for path, (action, loc) in valid.items():
            parts = path.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent not in valid:
                    continue
                parent_action = valid[parent][0]
                if parent_action.kind == "drop" and action.kind != "drop":
                    self.problem(loc, f"cannot {action.kind} {path!r}: its parent {parent!r} is dropped")
                elif parent_action.kind in ("coarsen", "bucket", "pseudonymise"):
                    self.problem(loc, f"{parent!r} is {_past(parent_action.kind)} as a whole; "
                                      f"{path!r} cannot have its own action")
        return valid

    def _fits(self, node: SchemaNode, action: Action, loc: Loc) -> bool:
        label = node.type_label()
        if action.kind == "coarsen" and not node.is_position:
            self.problem(loc, f"coarsen needs a Position record (lat, lon), {node.path!r} is {label}")
            return False
        if action.kind == "bucket" and not node.is_timestamp:
            self.problem(loc, f"bucket needs a timestamp, {node.path!r} is {label}")
            return False
        if action.kind == "pseudonymise" and not node.is_plain_string:
            self.problem(loc, f"pseudonymise needs a string, {node.path!r} is {label}")
            return False
        return True

    def _plan(self, tree: SchemaNode, named: dict[str, tuple[Action, Loc]]) -> tuple[_PRecord, dict[str, tuple[str, bool]]]:
        """Projection plan of one rule, plus the effective action of every schema path (for describe)."""
        effective: dict[str, tuple[str, bool]] = {}
        live_prefixes = {p.rsplit(".", i)[0] for p, (a, _) in named.items() if a.kind != "drop"
                         for i in range(p.count(".") + 1)}

        def mark_subtree(node: SchemaNode, kind: str, is_named: bool) -> None:
            for sub in node.walk():
                if sub is not node:
                    effective.setdefault(sub.path, (kind, is_named))

        def record(node: SchemaNode, inherited_keep: bool) -> _PRecord:
            out = _PRecord(node)
            for name, child in node.children.items():
                entry = named.get(child.path)
                action = entry[0].kind if entry else ("keep" if inherited_keep else None)
                is_named = entry is not None or inherited_keep
                if action == "drop" or (action is None and not (child.is_record and child.path in live_prefixes)):
                    effective[child.path] = ("drop", entry is not None)
                    mark_subtree(child, "drop", entry is not None)
                    continue
                if action in ("coarsen", "bucket", "pseudonymise"):
                    effective[child.path] = (action, True)
                    mark_subtree(child, action, True)
                    out.children[name] = _POp(child, action, entry[0])
                    continue
                if child.is_record:
                    sub = record(child, action == "keep")
                    if sub.children:
                        out.children[name] = _POp(child, "record", record=sub)
                        effective[child.path] = ("record", is_named)
                    else:
                        effective[child.path] = ("drop", is_named)
                    continue
                effective[child.path] = ("keep", is_named)
                out.children[name] = _POp(child, "copy")
            return out

        return record(tree, False), effective

    # -------------------------------------------------------------- rules

    def _compile_rule(self, type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc) -> dict | None:
        before = len(self.problems)
        named = self._named_actions(type_name, tree, rule, rloc)
        checks: list[Check] = []
        texts: list[str] = []
        for index, condition in enumerate(rule.when):
            compiled = self._condition(tree, condition, rloc + ("when", index))
            if compiled is not None:
                checks.append(compiled[0])
                texts.append(compiled[1])
        if len(self.problems) > before:
            return None
        plan, effective = self._plan(tree, named)
        if not any(name != "label" for name in plan.children):
            self.problem(rloc + ("fields",), f"rule {rule.id!r} releases no field of {type_name} besides the label")
            return None
        needs_key = any(a.kind == "pseudonymise" for a, _ in named.values())
        condition_text = " and ".join(texts) if texts else "always"
        return {
            "id": rule.id,
            "plan": plan,
            "checks": tuple(checks),
            "texts": tuple(texts),
            "needs_key": needs_key,
            "release_reason": f"{type_name}: released by rule {rule.id} ({condition_text})",
            "describe": _describe(type_name, rule.id, tree, texts, named, effective),
        }

    # -------------------------------------------------------------- conditions

    def _condition(self, tree: SchemaNode, cond: Condition, loc: Loc) -> tuple[Check, str] | None:
        op = cond.operator
        if op in ("any", "all"):
            subs = [self._condition(tree, sub, loc + (op, i)) for i, sub in enumerate(getattr(cond, op))]
            if any(s is None for s in subs):
                return None
            checks = tuple(s[0] for s in subs)
            texts = [s[1] for s in subs]
            if op == "any":
                text = "(" + " or ".join(texts) + ")"
                return _any_check(checks), text
            text = "(" + " and ".join(texts) + ")"
            return _all_check(checks), text

        path = cond.field
        node = tree.find(path)
        if node is None:
            self.problem(loc + ("field",), f"unknown field {path!r}{_suggest_path(tree, path, False)}")
            return None
        label = node.type_label()

        if op in ("equals", "in_set"):
            if node.multi:
                self.problem(loc + ("field",), f"{path!r} can hold several values ({label} or inside an array): "
                                               f"use contains_any / contains_any_set")
                return None
            if not node.is_scalar or node.is_timestamp or node.logical == "date":
                self.problem(loc + ("field",), f"{op} needs a string, number, boolean or enum field; {path!r} is {label}")
                return None
            getter = _single_getter(path)
            if op == "equals":
                value = cond.equals
                if not self._value_fits(node, value, loc + ("equals",)):
                    return None
                text = f"{path} equals {_show(value)}"
                fail = f"{path} does not equal {_show(value)}"
                if node.logical == "uuid":
                    return _equals_str_check(getter, str(value), fail), text
                return _equals_check(getter, value, fail), text
            name = cond.in_set
            members = self._set_members(name, node, loc + ("in_set",))
            if members is None:
                return None
            return _in_check(getter, members, f"{path} not in set {name}"), f"{path} in set {name}"

        if op in ("contains_any", "contains_any_set"):
            if not node.multi:
                self.problem(loc + ("field",), f"{op} needs a field with several values (an array); "
                                               f"{path!r} is {label}: use equals / in_set")
                return None
            if node.kind not in ("primitive", "enum") or node.is_timestamp:
                self.problem(loc + ("field",), f"{op} needs strings, numbers or enum symbols; {path!r} is {label}")
                return None
            getter = _multi_getter(tree, path)
            if op == "contains_any":
                values = cond.contains_any
                for i, value in enumerate(values):
                    if not self._value_fits(node, value, loc + ("contains_any", i)):
                        return None
                members = frozenset(values)
                shown = "[" + ", ".join(_show(v) for v in values) + "]"
                return (_contains_check(getter, members, f"{path} contains none of {shown}"),
                        f"{path} contains any of {shown}")
            name = cond.contains_any_set
            members = self._set_members(name, node, loc + ("contains_any_set",))
            if members is None:
                return None
            return (_contains_check(getter, members, f"{path} contains none of set {name}"),
                    f"{path} contains any of set {name}")

        # inside
        if not node.is_position:
            self.problem(loc + ("field",), f"inside needs a Position record (lat, lon); {path!r} is {label}")
            return None
        box = cond.inside
        area = f"lat {box.lat_min:g}..{box.lat_max:g}, lon {box.lon_min:g}..{box.lon_max:g}"
        getter = _multi_getter(tree, path) if node.multi else _single_as_list(_single_getter(path))
        return (_inside_check(getter, box.lat_min, box.lat_max, box.lon_min, box.lon_max, f"{path} not inside {area}"),
                f"{path} inside {area}")

    def _set_members(self, name: str, node: SchemaNode, loc: Loc) -> frozenset | None:
        if name not in self.spec.sets:
            defined = ", ".join(self.spec.sets) or "none"
            self.problem(loc, f"undefined set {name!r}{_suggest(name, list(self.spec.sets))} (defined: {defined})")
            return None
        if not (node.kind == "enum" or (node.kind == "primitive" and node.prim == "string")):
            self.problem(loc, f"set {name!r} holds strings but {node.path!r} is {node.type_label()}")
            return None
        members = self.spec.sets[name]
        if node.kind == "enum":
            unknown = [m for m in members if m not in node.symbols]
            if unknown:
                self.problem(("sets", name), f"{unknown} are not symbols of {node.record_name} "
                                             f"(used by {node.path!r}): {', '.join(node.symbols)}")
                return None
        return frozenset(members)

    def _value_fits(self, node: SchemaNode, value: Any, loc: Loc) -> bool:
        hint = ""
        if isinstance(value, bool) and not (node.kind == "primitive" and node.prim == "boolean"):
            hint = " (YAML reads yes/no/on/off/true/false as booleans: quote the value)"
        if node.kind == "enum":
            if not isinstance(value, str) or value not in node.symbols:
                self.problem(loc, f"{_literal(value)} is not a symbol of {node.record_name}: {', '.join(node.symbols)}{hint}")
                return False
            return True
        prim = node.prim
        ok = {
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "long": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "double": isinstance(value, (int, float)) and not isinstance(value, bool),
        }.get(prim, False)
        if not ok:
            self.problem(loc, f"{_literal(value)} does not fit {node.path!r} ({node.type_label()}){hint}")
        return ok

    # -------------------------------------------------------------- union of rules

    def _union(self, tree: SchemaNode, plans: list[_PRecord]) -> _UNode:
        return _union_of(tree, plans)


# =========================================================================== helpers: describe


def _set_references(cond: Condition) -> Iterable[str]:
    if cond.in_set is not None:
        yield cond.in_set
    if cond.contains_any_set is not None:
        yield cond.contains_any_set
    for sub in (cond.any or []) + (cond.all or []):
        yield from _set_references(sub)


def _past(kind: str) -> str:
    return {"coarsen": "coarsened", "bucket": "bucketed", "pseudonymise": "pseudonymised"}.get(kind, kind)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _suggest_path(tree: SchemaNode, path: str, in_label: bool) -> str:
    options = [n.path for n in tree.walk() if n.path]
    if in_label:
        options = [p[len("label."):] for p in options if p.startswith("label.")]
        path = path[len("label."):]
    return _suggest(path, options)


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _literal(value: Any) -> str:
    """A policy constant in an error message: YAML spelling for booleans and null, repr otherwise."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def _describe(type_name: str, rule_id: str, tree: SchemaNode, texts: list[str],
              named: dict[str, tuple[Action, Loc]], effective: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_name, "rule": rule_id, "conditions": list(texts), "kept": [],
                           "dropped": [], "unnamed": [], "coarsened": {}, "bucketed": {}, "pseudonymised": []}

    def visit(node: SchemaNode) -> None:
        for child in node.children.values():
            kind, is_named = effective.get(child.path, ("drop", False))
            if kind == "record":
                leaves = [effective.get(n.path, ("drop", False)) for n in child.walk() if not n.children]
                if all(k == "keep" for k, _ in leaves):
                    out["kept"].append(child.path)
                else:
                    visit(child)
            elif kind == "keep":
                out["kept"].append(child.path)
            elif kind == "drop":
                if is_named:
                    out["dropped"].append(child.path)
                elif child.is_record and any(effective.get(n.path, ("drop", False))[1]
                                             for n in child.walk() if n is not child):
                    visit(child)  # dropped because all named children are dropped
                else:
                    out["unnamed"].append(child.path)
            elif kind == "coarsen":
                out["coarsened"][child.path] = named[child.path][0].grid_deg
            elif kind == "bucket":
                out["bucketed"][child.path] = named[child.path][0].seconds
            elif kind == "pseudonymise":
                out["pseudonymised"].append(child.path)

    visit(tree)
    return out


# =========================================================================== helpers: conditions


def _single_getter(path: str) -> Callable[[dict], Any]:
    parts = tuple(path.split("."))
    if len(parts) == 1:
        (a,) = parts
        return lambda r: r.get(a)
    if len(parts) == 2:
        a, b = parts

        def get2(r: dict) -> Any:
            v = r.get(a)
            return None if v is None else v.get(b)

        return get2

    def get(r: dict) -> Any:
        v: Any = r
        for part in parts:
            if v is None:
                return None
            v = v.get(part)
        return v

    return get


def _single_as_list(getter: Callable[[dict], Any]) -> Callable[[dict], list]:
    def get(r: dict) -> list:
        v = getter(r)
        return [] if v is None else [v]

    return get


def _multi_getter(tree: SchemaNode, path: str) -> Callable[[dict], list]:
    steps = []
    node = tree
    for part in path.split("."):
        node = node.children[part]
        steps.append((part, node.array))
    steps_t = tuple(steps)

    def get(r: dict) -> list:
        current = [r]
        for part, is_array in steps_t:
            nxt: list = []
            for v in current:
                if v is None:
                    continue
                x = v.get(part)
                if x is None:
                    continue
                if is_array:
                    nxt.extend(x)
                else:
                    nxt.append(x)
            current = nxt
        return current

    return get


def _equals_check(getter: Callable, value: Any, fail: str) -> Check:
    def check(r: dict) -> str | None:
        return None if getter(r) == value else fail

    return check


def _equals_str_check(getter: Callable, value: str, fail: str) -> Check:
    def check(r: dict) -> str | None:
        v = getter(r)
        return None if v is not None and str(v) == value else fail

    return check


def _in_check(getter: Callable, members: frozenset, fail: str) -> Check:
    def check(r: dict) -> str | None:
        v = getter(r)
        return None if v is not None and v in members else fail

    return check


def _contains_check(getter: Callable, members: frozenset, fail: str) -> Check:
    def check(r: dict) -> str | None:
        for v in getter(r):
            if v in members:
                return None
        return fail

    return check


def _inside_check(getter: Callable, lat_min: float, lat_max: float, lon_min: float, lon_max: float, fail: str) -> Check:
    def check(r: dict) -> str | None:
        for p in getter(r):
            lat = p["lat"]
            lon = p["lon"]
            if lat_min <= lat <= lat_max and lon_min <= lon <= lon_max:
                return None
        return fail

    return check


def _any_check(checks: tuple[Check, ...]) -> Check:
    def check(r: dict) -> str | None:
        fails = []
        for c in checks:
            f = c(r)
            if f is None:
                return None
            fails.append(f)
        return "none of (" + "; ".join(fails) + ")"

    return check


def _all_check(checks: tuple[Check, ...]) -> Check:
    def check(r: dict) -> str | None:
        for c in checks:
            f = c(r)
            if f is not None:
                return f
        return None

    return check


# =========================================================================== helpers: projection


def _union_of(node: SchemaNode, shapes: list[Any]) -> _UNode:
    """Union of the shapes (``_PRecord`` or ``_FULL``) rules give record ``node``."""
    out = _UNode(node)
    for name, child in node.children.items():
        sub: list[Any] = []
        for shape in shapes:
            if shape is _FULL:
                sub.append(_FULL if child.is_record else None)
                continue
            op = shape.children.get(name)
            if op is None:
                continue
            if op.kind == "record":
                sub.append(op.record)
            elif op.kind == "coarsen" or (child.is_record and op.kind == "copy"):
                sub.append(_FULL)
            else:
                sub.append(None)
        if not sub:
            continue
        unode = _union_of(child, sub) if child.is_record else _UNode(child)
        unode.nullable = len(sub) < len(shapes)
        out.children[name] = unode
    return out


def _wrap(fn: Callable | None, node: SchemaNode) -> Callable | None:
    """Apply ``fn`` through the array and optional wrappers of ``node``."""
    if node.array:
        inner = fn
        if inner is None:
            fn = list
        else:
            def fn(v: list, _f=inner) -> list:  # noqa: E306
                return [_f(x) for x in v]
    if node.optional and fn is not None:
        inner_opt = fn

        def fn(v: Any, _f=inner_opt) -> Any:  # noqa: E306
            return None if v is None else _f(v)
    return fn


def _projector(plan: _PRecord, union: _UNode, pseudo: Callable | None) -> Projector:
    fields: list[tuple[str, Any]] = []
    for name, unode in union.children.items():
        op = plan.children.get(name)
        if op is None:
            fields.append((name, _NULLFILL))
            continue
        node = op.node
        if op.kind == "copy":
            fn = None
        elif op.kind == "record":
            fn = _projector(op.record, unode, pseudo)
        elif op.kind == "coarsen":
            fn = make_coarsen(op.action.grid_deg)
        elif op.kind == "bucket":
            fn = make_bucket(op.action.seconds, node.logical)
        elif op.kind == "pseudonymise":
            if pseudo is None:
                raise AssertionError("pseudonymising projector without a key")
            fn = pseudo
        else:
            raise AssertionError(op.kind)
        fields.append((name, _wrap(fn, node)))
    return _generate_projector(fields)


def _generate_projector(fields: list[tuple[str, Any]]) -> Projector:
    """Compile a record projection into one function returning a dict display (the fast path).

    ``fields`` holds (name, fn): fn None copies the value, ``_NULLFILL`` emits None, else fn(value).
    Field names are Avro names (letters, digits, underscore) and enter the source only through
    ``repr``; the functions are bound by generated local names.
    """
    namespace: dict[str, Any] = {}
    items = []
    for index, (name, fn) in enumerate(fields):
        key = repr(name)
        if fn is None:
            items.append(f"{key}: rec[{key}]")
        elif fn is _NULLFILL:
            items.append(f"{key}: None")
        else:
            namespace[f"_f{index}"] = fn
            items.append(f"{key}: _f{index}(rec[{key}])")
    source = "def project(rec):\n    return {" + ", ".join(items) + "}\n"
    exec(compile(source, "<release projection>", "exec"), namespace)  # noqa: S102 - generated from schema names
    return namespace["project"]


# =========================================================================== helpers: derived schema


_KEEP_ATTRS = ("type", "logicalType", "precision", "scale", "size")


def _derive_schema(tree: SchemaNode, union: _UNode, namespace: str) -> dict[str, Any]:
    original = tree.avro_type
    registry = schemas.named_types(original, original.get("namespace", ""))
    emitted: dict[str, Any] = {}

    def named_def(kind_def: dict[str, Any]) -> Any:
        """Register a derived named type; a repeat of an identical definition becomes a reference."""
        name = kind_def["name"]
        base, n = name, 1
        while name in emitted:
            if emitted[name] == {**kind_def, "name": name}:
                return f"{namespace}.{name}"
            n += 1
            name = f"{base}{n}"
        kind_def = {**kind_def, "name": name}
        emitted[name] = kind_def
        return kind_def

    def rebuild(avro_type: Any, unode: _UNode, ns: str) -> Any:
        if isinstance(avro_type, list):
            return [rebuild(b, unode, ns) for b in avro_type]
        if isinstance(avro_type, str):
            if avro_type in PRIMITIVES:
                return avro_type
            full = avro_type if "." in avro_type else f"{ns}.{avro_type}"
            return rebuild(registry[full], unode, ns)
        kind = avro_type.get("type")
        if kind == "record":
            inner_ns = avro_type.get("namespace", ns)
            fields = [field_def(unode.children[f["name"]], f, inner_ns)
                      for f in avro_type.get("fields", []) if f["name"] in unode.children]
            return named_def({"type": "record", "name": avro_type["name"], "namespace": namespace, "fields": fields})
        if kind == "enum":
            d = {"type": "enum", "name": avro_type["name"], "namespace": namespace, "symbols": list(avro_type["symbols"])}
            if "default" in avro_type:
                d["default"] = avro_type["default"]
            return named_def(d)
        if kind == "fixed":
            return named_def({"type": "fixed", "name": avro_type["name"], "namespace": namespace,
                              "size": avro_type["size"]})
        if kind == "array":
            return {"type": "array", "items": rebuild(avro_type["items"], unode, ns)}
        if kind == "map":
            return {"type": "map", "values": rebuild(avro_type["values"], unode, ns)}
        return {k: avro_type[k] for k in _KEEP_ATTRS if k in avro_type}

    def field_def(unode: _UNode, original_field: dict[str, Any], ns: str) -> dict[str, Any]:
        t = rebuild(original_field["type"], unode, ns)
        out: dict[str, Any] = {"name": original_field["name"], "type": t}
        if unode.nullable:
            if isinstance(t, list):
                if "null" not in t:
                    t = ["null", *t]
                elif t[0] != "null":
                    t = ["null", *[b for b in t if b != "null"]]
                out["type"] = t
            else:
                out["type"] = ["null", t]
            out["default"] = None
        elif "default" in original_field and not unode.node.is_record:
            out["default"] = original_field["default"]
        return out

    fields = [field_def(union.children[f["name"]], f, original.get("namespace", ""))
              for f in original["fields"] if f["name"] in union.children]
    return {"type": "record", "name": original["name"], "namespace": namespace, "fields": fields}

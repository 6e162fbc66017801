"""Checking a policy against the writer schemas: partner, message types, rule ids, field paths and
the fit of their actions, conditions (field, operator, values, sets) and unused sets.

:class:`PolicyChecks` collects the problems (each once, with the loc of the policy key it is about)
and raises them together as one :class:`PolicyError`, first line first. Nothing here builds code:
the compiler turns what passed into closures (:mod:`release.conditions`, :mod:`release.projection`).
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

import schemas
from release.errors import PolicyError
from release.loader import dotted
from release.schema_tree import SchemaNode
from release.spec import RESERVED_RULE_IDS, Action, Condition, PolicySpec, Rule
from release.yamlsrc import LineMap, Loc

__all__ = ["PolicyChecks", "FieldActions"]

#: Validated field actions of one rule: schema path -> (action, loc of the policy key naming it).
#: The top-level ``label`` section's actions come first, as ``label.<field>``.
FieldActions = dict[str, tuple[Action, Loc]]


class PolicyChecks:
    """The problems of one policy file, found against the writer schemas."""

    def __init__(self, spec: PolicySpec, lines: LineMap, shown: str):
        self.spec = spec
        self.lines = lines
        self.shown = shown
        self.problems: list[tuple[Loc, str]] = []
        self._seen: set[tuple[Loc, str]] = set()

    # -------------------------------------------------------------- problems

    def problem(self, loc: Loc, message: str) -> None:
        """Record a problem (a repeat of one already recorded is ignored)."""
        item = (tuple(loc), message)
        if item not in self._seen:
            self._seen.add(item)
            self.problems.append(item)

    def raise_problems(self) -> None:
        """Raise every recorded problem as one :class:`PolicyError` (nothing when there is none)."""
        if self.problems:
            rendered = [(self.lines.line(loc), dotted(loc), msg) for loc, msg in self.problems]
            rendered.sort(key=lambda p: p[0])
            raise PolicyError(self.shown, rendered)

    # -------------------------------------------------------------- policy level

    def partner(self, stem: str) -> None:
        key = "partner" if self.spec.is_partner else "component"
        if self.spec.recipient != stem:
            self.problem((key,), f"{key} {self.spec.recipient!r} must equal the file name {stem!r}")

    def reciprocity(self) -> None:
        """A pause names a category of the agreement, at most once, never a safety category."""
        from schemas.agreement import CATEGORIES, SAFETY_CATEGORIES

        seen: set[str] = set()
        for index, pause in enumerate(self.spec.reciprocity):
            loc = ("reciprocity", index, "category")
            if pause.category not in CATEGORIES:
                self.problem(loc, f"unknown category {pause.category!r}{_suggest(pause.category, CATEGORIES)}; "
                                  f"known: {', '.join(CATEGORIES)}")
            elif pause.category in SAFETY_CATEGORIES:
                self.problem(loc, f"{pause.category} is safety data (deconfliction): it is never paused")
            elif pause.category in seen:
                self.problem(loc, f"{pause.category} paused twice")
            seen.add(pause.category)

    def onward(self) -> None:
        """``onward`` names message types this partner sends, and other partners."""
        for type_name, codes in self.spec.onward.items():
            if type_name not in schemas.MESSAGE_TYPES:
                self.problem(("onward", type_name), f"unknown message type {type_name!r}"
                                                    f"{_suggest(type_name, schemas.MESSAGE_TYPES)}")
            for n, code in enumerate(codes):
                if code == self.spec.recipient:
                    self.problem(("onward", type_name, n), f"{code} is this policy's own partner")

    def message_type(self, type_name: str) -> bool:
        if type_name in schemas.MESSAGE_TYPES:
            return True
        self.problem(("rules", type_name), f"unknown message type {type_name!r}{_suggest(type_name, schemas.MESSAGE_TYPES)}"
                     f"; known: {', '.join(schemas.MESSAGE_TYPES)}")
        return False

    def label_section(self, type_name: str, tree: SchemaNode) -> None:
        label = tree.children.get("label")
        if label is None or not label.is_record:
            self.problem(("label",), f"{type_name} has no label record")

    def rule_id(self, rule_id: str, loc: Loc, seen_ids: dict[str, Loc]) -> None:
        """``rule_id`` (at ``loc``) is not reserved and not taken by an earlier rule (``seen_ids``, updated)."""
        if rule_id in RESERVED_RULE_IDS:
            self.problem(loc, f"rule id {rule_id!r} is reserved for decisions without a rule")
        if rule_id in seen_ids:
            first = self.lines.line(seen_ids[rule_id])
            self.problem(loc, f"duplicate rule id {rule_id!r} (first at line {first})")
        else:
            seen_ids[rule_id] = loc

    def sets_used(self) -> None:
        # Every set a condition names counts as used, even when that condition has another problem
        # (so a typo in a field path does not also report the set as unused).
        every = [rules for rules in self.spec.rules.values()]
        every += [rules for types in self.spec.from_partners.values() for rules in types.values()]
        used = {name for rules in every for rule in rules for cond in rule.when for name in _set_references(cond)}
        for name in self.spec.sets:
            if name not in used:
                self.problem(("sets", name), f"set {name!r} is defined but no condition uses it")

    # -------------------------------------------------------------- field actions

    def field_actions(self, type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc) -> FieldActions:
        """The actions of the label section and of ``rule`` whose path and action fit the schema."""
        named: FieldActions = {}
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
        valid: FieldActions = {}
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

    # -------------------------------------------------------------- conditions

    def condition(self, tree: SchemaNode, cond: Condition, loc: Loc) -> bool:
        """True when ``cond`` fits the schema: its field exists, the operator suits the field's type,
        its values fit the field, its set is defined and holds symbols of the field's enum."""
        op = cond.operator
        if op in ("any", "all"):
            fits = [self.condition(tree, sub, loc + (op, i)) for i, sub in enumerate(getattr(cond, op))]
            return all(fits)

        path = cond.field
        node = tree.find(path)
        if node is None:
            self.problem(loc + ("field",), f"unknown field {path!r}{_suggest_path(tree, path, False)}")
            return False
        label = node.type_label()

        if op in ("equals", "in_set"):
            if node.multi:
                self.problem(loc + ("field",), f"{path!r} can hold several values ({label} or inside an array): "
                                               f"use contains_any / contains_any_set")
                return False
            if not node.is_scalar or node.is_timestamp or node.logical == "date":
                self.problem(loc + ("field",), f"{op} needs a string, number, boolean or enum field; {path!r} is {label}")
                return False
            if op == "equals":
                return self._value_fits(node, cond.equals, loc + ("equals",))
            return self._set_fits(cond.in_set, node, loc + ("in_set",))

        if op in ("contains_any", "contains_any_set"):
            if not node.multi:
                self.problem(loc + ("field",), f"{op} needs a field with several values (an array); "
                                               f"{path!r} is {label}: use equals / in_set")
                return False
            if node.kind not in ("primitive", "enum") or node.is_timestamp:
                self.problem(loc + ("field",), f"{op} needs strings, numbers or enum symbols; {path!r} is {label}")
                return False
            if op == "contains_any":
                for i, value in enumerate(cond.contains_any):
                    if not self._value_fits(node, value, loc + ("contains_any", i)):
                        return False
                return True
            return self._set_fits(cond.contains_any_set, node, loc + ("contains_any_set",))

        # inside
        if not node.is_position:
            self.problem(loc + ("field",), f"inside needs a Position record (lat, lon); {path!r} is {label}")
            return False
        return True

    def _set_fits(self, name: str, node: SchemaNode, loc: Loc) -> bool:
        if name not in self.spec.sets:
            defined = ", ".join(self.spec.sets) or "none"
            self.problem(loc, f"undefined set {name!r}{_suggest(name, list(self.spec.sets))} (defined: {defined})")
            return False
        if not (node.kind == "enum" or (node.kind == "primitive" and node.prim == "string")):
            self.problem(loc, f"set {name!r} holds strings but {node.path!r} is {node.type_label()}")
            return False
        if node.kind == "enum":
            unknown = [m for m in self.spec.sets[name] if m not in node.symbols]
            if unknown:
                self.problem(("sets", name), f"{unknown} are not symbols of {node.record_name} "
                                             f"(used by {node.path!r}): {', '.join(node.symbols)}")
                return False
        return True

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


# =========================================================================== helpers


def _set_references(cond: Condition) -> Iterable[str]:
    if cond.in_set is not None:
        yield cond.in_set
    if cond.contains_any_set is not None:
        yield cond.contains_any_set
    for sub in (cond.any or []) + (cond.all or []):
        yield from _set_references(sub)


def _past(kind: str) -> str:
    return {"coarsen": "coarsened", "bucket": "bucketed", "pseudonymise": "pseudonymised"}.get(kind, kind)


def _literal(value: Any) -> str:
    """A policy constant in an error message: YAML spelling for booleans and null, repr otherwise."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _suggest_path(tree: SchemaNode, path: str, in_label: bool) -> str:
    options = [n.path for n in tree.walk() if n.path]
    if in_label:
        options = [p[len("label."):] for p in options if p.startswith("label.")]
        path = path[len("label."):]
    return _suggest(path, options)

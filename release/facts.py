"""What each rule releases, as facts: the released units (times, positions, values, pseudonyms) with
their precision and the policy key that releases them, the record timestamp, the fields a condition pins,
and the rule's acknowledgements.

Built once at compile time (:func:`rule_facts`); read by the envelope (:mod:`release.envelope`) and by the
escape-route checks (:mod:`release.escapes`, :mod:`release.linkable`). A *unit* is what a partner can
read as one fact: a timestamp, a Position (lat and lon together, however partially released), or any
other leaf field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from release.schema_tree import SchemaNode
from release.spec import Acknowledge, Condition, Rule
from release.yamlsrc import LineMap, Loc

__all__ = ["DEFAULT_TIMESTAMP", "Released", "RuleFacts", "PolicyFacts", "rule_facts", "describe_precision"]

#: The record timestamp of a release, by type: this released time (as the rule transforms it). A rule may
#: name another with ``timestamp: <path>``; when the default is not released, the first released time of
#: the record (schema order; the earliest value inside an array) is used.
DEFAULT_TIMESTAMP: Mapping[str, str] = {
    "AirMissionPlan": "label.created_at",
    "AirTrack": "time",
    "MaritimeTrack": "time",
    "StrikeReport": "time",
    "GroupLocationReport": "time",
    "ForeignFighterReport": "time",
    "LogisticsObservation": "time_bucket_start",
    "DeconflictionAlert": "label.created_at",  # when the alert was emitted
}


@dataclass(frozen=True, slots=True)
class Released:
    """One released unit of a rule."""

    path: str
    unit: str                  # time | position | value | pseudonym
    kind: str                  # keep | bucket | coarsen | pseudonymise
    #: Bucket seconds (time), grid degrees (position); 0 when exact; None for values and pseudonyms.
    precision: float | None
    node: SchemaNode = field(repr=False)
    #: Loc of the policy key that releases it (the rule's own key, or ``fields.<path>`` of the rule for a
    #: field the top-level label section releases).
    loc: Loc
    #: Of a position: the coordinates released (``("lat", "lon")`` unless partly released).
    parts: tuple[str, ...] = ()

    @property
    def few_values(self) -> bool:
        """An enum or a boolean: one of a few symbols, never unique to a record."""
        return self.node.kind == "enum" or (self.node.kind == "primitive" and self.node.prim == "boolean")

    def describe(self) -> str:
        return describe_precision(self.unit, self.precision)


def describe_precision(unit: str, precision: float | None) -> str:
    if unit == "pseudonym":
        return "pseudonymised"
    if not precision:
        return "exact"
    if unit == "time":
        return f"bucketed to {precision:g} s"
    return f"coarsened to a {precision:g} deg grid"


@dataclass(frozen=True)
class RuleFacts:
    """What one rule releases and how (see the module doc)."""

    type_name: str
    rule_id: str
    loc: Loc                                  # ("rules", <type>, <index>)
    released: Mapping[str, Released]          # by unit path, schema order
    #: Path of the released time that is the record timestamp; None when the rule releases no time.
    timestamp: str | None
    #: Fields a condition of the rule pins to a named set or a constant (``equals``, ``in_set``).
    constrained: frozenset[str]
    acknowledge: Acknowledge | None = None

    def times(self) -> list[Released]:
        return [r for r in self.released.values() if r.unit == "time"]

    def bucketed(self) -> list[Released]:
        return [r for r in self.released.values() if r.unit == "time" and r.kind == "bucket"]

    def precision_key(self, path: str) -> str | None:
        """The ``acknowledge.precision`` entry that covers ``path`` (itself or an ancestor), if any."""
        reasons = self.acknowledge.precision if self.acknowledge is not None else None
        return _covering(reasons, path)

    def distinguishable_reason(self) -> str | None:
        return self.acknowledge.distinguishable if self.acknowledge is not None else None

    def linkable_reason(self, path: str) -> str | None:
        linkable = self.acknowledge.linkable if self.acknowledge is not None else None
        if isinstance(linkable, str):
            return linkable
        key = _covering(linkable, path)
        return linkable[key] if key is not None else None


@dataclass(frozen=True)
class PolicyFacts:
    """The facts of every rule of a policy, plus what error messages need to point into its file."""

    partner: str
    shown: str
    lines: LineMap
    types: Mapping[str, tuple[RuleFacts, ...]] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        return self.lines.line(loc)


def _covering(reasons: Mapping[str, str] | None, path: str) -> str | None:
    """The key of ``reasons`` that is ``path`` or an ancestor path of it."""
    if not reasons:
        return None
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in reasons:
            return key
    return None


# =========================================================================== building


def rule_facts(type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc, named: Mapping[str, tuple[Any, Loc]],
               effective: Mapping[str, tuple[str, bool]], problem) -> RuleFacts:
    """The facts of one rule that passed the checks. ``named``: its field actions (with locs);
    ``effective``: the effective action of every schema path (:func:`release.projection.plan_projection`);
    ``problem(loc, message)`` records a problem of its ``timestamp`` or ``acknowledge`` keys."""
    released: dict[str, Released] = {}

    def loc_of(path: str) -> Loc:
        parts = path.split(".")
        for i in range(len(parts), 0, -1):
            entry = named.get(".".join(parts[:i]))
            if entry is not None:
                loc = entry[1]
                return rloc + ("fields", ".".join(parts[:i])) if loc[0] == "label" else loc
        return rloc + ("fields", path)

    def visit(node: SchemaNode) -> None:
        for child in node.children.values():
            kind = effective.get(child.path, ("drop", False))[0]
            if kind == "drop":
                continue
            if child.is_position:
                if kind == "coarsen":
                    released[child.path] = Released(child.path, "position", "coarsen", named[child.path][0].grid_deg,
                                                    child, loc_of(child.path), ("lat", "lon"))
                    continue
                parts = tuple(n for n, c in child.children.items() if effective.get(c.path, ("drop",))[0] == "keep")
                if parts:
                    released[child.path] = Released(child.path, "position", "keep", 0, child, loc_of(child.path), parts)
            elif child.children:
                visit(child)
            elif kind == "bucket":
                released[child.path] = Released(child.path, "time", "bucket", named[child.path][0].seconds,
                                                child, loc_of(child.path))
            elif kind == "pseudonymise":
                released[child.path] = Released(child.path, "pseudonym", kind, None, child, loc_of(child.path))
            elif kind == "keep":
                unit = "time" if child.is_timestamp else "value"
                released[child.path] = Released(child.path, unit, kind, 0 if unit == "time" else None,
                                                child, loc_of(child.path))

    visit(tree)
    timestamp = _timestamp(type_name, tree, rule, rloc, released, problem)
    _check_acknowledge(tree, rule, rloc, released, problem)
    return RuleFacts(type_name, rule.id, rloc, released, timestamp, frozenset(_constrained(rule.when)),
                     rule.acknowledge)


def _timestamp(type_name: str, tree: SchemaNode, rule: Rule, rloc: Loc, released: dict[str, Released],
               problem) -> str | None:
    times = [r.path for r in released.values() if r.unit == "time"]
    if rule.timestamp is None:
        default = DEFAULT_TIMESTAMP.get(type_name.rpartition("/")[2], "time")
        return default if default in times else (times[0] if times else None)
    loc = rloc + ("timestamp",)
    node = tree.find(rule.timestamp)
    if node is None:
        problem(loc, f"unknown field {rule.timestamp!r} in {type_name}")
    elif not node.is_timestamp:
        problem(loc, f"the record timestamp needs a timestamp field, {rule.timestamp!r} is {node.type_label()}")
    elif rule.timestamp not in times:
        shown = ", ".join(times) or "none"
        problem(loc, f"timestamp {rule.timestamp!r} is not released by rule {rule.id!r} "
                     f"(released times: {shown}): the record timestamp must be a time the partner sees")
    else:
        return rule.timestamp
    return None


def _check_acknowledge(tree: SchemaNode, rule: Rule, rloc: Loc, released: dict[str, Released], problem) -> None:
    ack = rule.acknowledge
    if ack is None:
        return
    for key, reasons in (("precision", ack.precision), ("linkable", ack.linkable)):
        if not isinstance(reasons, dict):
            continue
        for path in reasons:
            loc = rloc + ("acknowledge", key, path)
            if tree.find(path) is None:
                problem(loc, f"unknown field {path!r} in {tree.record_name}")
            elif not any(unit == path or unit.startswith(path + ".") for unit in released):
                problem(loc, f"{path!r} is not released by rule {rule.id!r}: nothing to acknowledge")


def _constrained(conditions: list[Condition]) -> set[str]:
    out: set[str] = set()
    for cond in conditions:
        if cond.all is not None:
            out |= _constrained(cond.all)
        elif cond.in_set is not None or (cond.field is not None and cond.operator == "equals"):
            out.add(cond.field)
    return out

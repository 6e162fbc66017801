"""A compiled policy's decision for one source, as data the compiled core runs (``compiled/``, issue 13).

:func:`program_of` turns what :mod:`release.compiler` built for one recipient and one source (its label checks,
its rules' :class:`~release.conditions.CondNode` conditions, projection plans and reasons) into a JSON-able
program addressed by field *index* in the input schema. The compiled core decodes a record once and runs the
program: the same decision, rule, reason and released record as :func:`release.decide`, which stays the
specification (``tests/unit/test_compiled_decide.py`` compares them).

What the compiled core does not reproduce is refused here (:class:`NotCompilable`), so that a caller runs the
reference for it: a condition on a timestamp or date field (Python compares datetimes there), a general union.
"""

from __future__ import annotations

from typing import Any

import schemas
from release.conditions import CondNode
from release.decision import LEVELS
from release.model import DEFAULT_DENY, KEY_MISSING, CompiledPolicy
from release.projection import RecordPlan, UnionNode
from release.schema_tree import SchemaNode, build_tree
from schemas.agreement import CATEGORY_OF

__all__ = ["NotCompilable", "program_of"]


class NotCompilable(ValueError):
    """Something of the policy the compiled core does not run (the reference decides those records)."""


def program_of(policy: CompiledPolicy, source: str, schema: dict) -> dict[str, Any]:
    """The program deciding records of ``source`` (written with ``schema``, the schema the policy was compiled
    against) for ``policy``'s recipient."""
    tree = build_tree(schema)
    label = tree.children.get("label")
    if label is None or list(tree.children).index("label") != 0:
        raise NotCompilable(f"{source}: the label is not the first field")
    names = list(label.children)
    out: dict[str, Any] = {
        "source": source,
        "partner": policy.partner,
        "label": [0, names.index("classification"), names.index("releasable_to")],
        "levels": list(LEVELS),
        "ceiling": policy.ceiling_level,
        "above": [policy.withhold_above_ceiling[lv].reason if lv in policy.withhold_above_ceiling else None
                  for lv in range(len(LEVELS))],
        "require_releasable_to": policy.require_releasable_to,
        "not_releasable": policy.withhold_not_releasable.reason,
        "category": CATEGORY_OF.get(source.rpartition("/")[2], ""),
        "malformed": f"{source}: record does not fit the schema",
        "rules": None,
    }
    plan = policy.plans.get(source)
    if plan is None:
        out["no_rule"] = policy.withhold_no_rule(source).reason
        return out
    out["no_match"] = f"{source}: no rule matched"
    out["default_deny"] = DEFAULT_DENY
    rules = []
    facts = policy.facts.types[source] if policy.facts is not None else ()
    for i, rule in enumerate(plan.rules):
        rules.append({
            "id": rule.id,
            "reason": rule.release_reason,
            "conditions": [_condition(tree, c) for c in rule.conditions],
            "project": None if rule.project is None else _projection(rule.plan, rule.union),
            "key_missing": policy.withhold_key_missing(source, rule.id).reason if rule.project is None else None,
            "envelope": _envelope(source, rule.union, facts[i]),
        })
    out["rules"] = rules
    out["key_missing_rule"] = KEY_MISSING
    return out


def _condition(tree: SchemaNode, c: CondNode) -> dict[str, Any]:
    if c.op in ("any", "all"):
        return {"op": c.op, "subs": [_condition(tree, s) for s in c.subs]}
    node, steps = tree, []
    for part, is_array in c.steps:
        names = list(node.children)
        node = node.children[part]
        steps.append([names.index(part), is_array])
    if node.kind == "other":
        raise NotCompilable(f"condition on {c.path}: a general union or map")
    if node.logical in ("timestamp-millis", "timestamp-micros", "date", "time-millis", "time-micros"):
        raise NotCompilable(f"condition on {c.path}: a {node.logical} field")
    out: dict[str, Any] = {"op": c.op, "steps": steps, "fail": c.fail}
    if c.op in ("equals", "equals_str"):
        out["value"] = _scalar(c.value, c.path)
    elif c.op in ("in_set", "contains"):
        out["members"] = sorted((_scalar(v, c.path) for v in c.members), key=repr)
    elif c.op == "inside":
        names = list(node.children)
        out["box"] = list(c.box)
        out["latlon"] = [names.index("lat"), names.index("lon")]
    return out


def _envelope(source: str, union: UnionNode, facts) -> dict[str, Any]:
    """Where the envelope's facts are in the released view (:mod:`release.envelope`), by field index in the
    derived schema: the key field, ``label.message_id``, the record timestamp and the bucketed times."""
    type_name = source.rpartition("/")[2]
    out: dict[str, Any] = {"key": _view_path(union, schemas.key_field(type_name)),
                           "message_id": _view_path(union, "label.message_id"), "timestamp": None, "buckets": []}
    if facts.timestamp is not None:
        logical = facts.released[facts.timestamp].node.logical
        out["timestamp"] = {"path": _view_path(union, facts.timestamp), "micros": logical == "timestamp-micros"}
    for r in facts.bucketed():
        out["buckets"].append({"path": _view_path(union, r.path), "size": int(r.precision) * 1000,
                               "micros": r.node.logical == "timestamp-micros"})
    return out


def _view_path(union: UnionNode, path: str) -> list[int] | None:
    """Field indices of dotted ``path`` in the view (None when the view has no such field)."""
    out, node = [], union
    for part in path.split("."):
        names = list(node.children)
        if part not in names:
            return None
        out.append(names.index(part))
        node = node.children[part]
    return out


def _scalar(v: Any, path: str) -> Any:
    if isinstance(v, (str, bool, int, float)):
        return v
    raise NotCompilable(f"condition on {path}: a constant of type {type(v).__name__}")


def _projection(plan: RecordPlan, union: UnionNode) -> dict[str, Any]:
    """The output record (the fields of ``union``, in order) from the input record of ``plan``."""
    names = list(plan.node.children)
    fields = []
    for name, unode in union.children.items():
        op = plan.children.get(name)
        if op is None:
            fields.append({"op": "null"})
            continue
        node = op.node
        if node.kind == "other":
            raise NotCompilable(f"field {node.path}: a general union, map or nested array")
        f: dict[str, Any] = {"op": op.kind, "src": names.index(name), "array": node.array,
                             "optional": node.optional}
        if op.kind == "record":
            f["project"] = _projection(op.record, unode)
        elif op.kind == "coarsen":
            f["grid"] = float(op.action.grid_deg)
            inner = list(node.children)
            f["latlon"] = [inner.index("lat"), inner.index("lon")]
        elif op.kind == "bucket":
            f["step"] = op.action.seconds * (1_000_000 if node.logical == "timestamp-micros" else 1000)
        elif op.kind not in ("copy", "pseudonymise"):
            raise NotCompilable(f"field {node.path}: action {op.kind}")
        fields.append(f)
    return {"fields": fields}

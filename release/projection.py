"""Field actions -> projection plans -> generated projection functions.

* ``fields:`` is an allow-list: a field no action names is dropped. ``keep`` on a record keeps
  every field the *current* schema gives it (a field unknown to the schema never passes);
  children named under a kept record override it (``route: keep`` + ``route.eta: drop``).
* When several rules of a type project differently, the union of their plans
  (:func:`union_of`) is the shape of the derived schema; a field that not every rule releases is
  null in the records of the rules that drop it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from release.model import Projector
from release.schema_tree import SchemaNode
from release.spec import Action
from release.transforms import make_bucket, make_coarsen
from release.yamlsrc import Loc

__all__ = ["FieldOp", "RecordPlan", "UnionNode", "plan_projection", "union_of", "projector"]

_NULLFILL = object()  # marker: emit None for a field of the derived schema this rule does not release
_FULL = object()      # shape marker: a record released whole (coarsened Position)


@dataclass
class FieldOp:
    """How one emitted field is produced."""

    node: SchemaNode
    kind: str                             # copy | record | coarsen | bucket | pseudonymise
    action: Action | None = None
    record: Optional[RecordPlan] = None   # kind == record


@dataclass
class RecordPlan:
    """The projection of one record: its emitted fields, in schema order."""

    node: SchemaNode
    children: dict[str, FieldOp] = field(default_factory=dict)


@dataclass
class UnionNode:
    """A field of the derived (union over rules) schema."""

    node: SchemaNode
    nullable: bool = False
    children: dict[str, UnionNode] = field(default_factory=dict)


# =========================================================================== plans


def plan_projection(tree: SchemaNode, named: dict[str, tuple[Action, Loc]]) -> tuple[RecordPlan, dict[str, tuple[str, bool]]]:
    """Projection plan of one rule (``named``: its validated field actions), plus the effective
    action of every schema path as ``(kind, named)`` (for :func:`release.describe.describe_rule`)."""
    effective: dict[str, tuple[str, bool]] = {}
    live_prefixes = {p.rsplit(".", i)[0] for p, (a, _) in named.items() if a.kind != "drop"
                     for i in range(p.count(".") + 1)}

    def mark_subtree(node: SchemaNode, kind: str, is_named: bool) -> None:
        for sub in node.walk():
            if sub is not node:
                effective.setdefault(sub.path, (kind, is_named))

    def record(node: SchemaNode, inherited_keep: bool) -> RecordPlan:
        out = RecordPlan(node)
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
                out.children[name] = FieldOp(child, action, entry[0])
                continue
            if child.is_record:
                sub = record(child, action == "keep")
                if sub.children:
                    out.children[name] = FieldOp(child, "record", record=sub)
                    effective[child.path] = ("record", is_named)
                else:
                    effective[child.path] = ("drop", is_named)
                continue
            effective[child.path] = ("keep", is_named)
            out.children[name] = FieldOp(child, "copy")
        return out

    return record(tree, False), effective


def union_of(node: SchemaNode, shapes: list[Any]) -> UnionNode:
    """Union of the shapes (:class:`RecordPlan`, or ``_FULL`` for a record released whole) that
    rules give record ``node``."""
    out = UnionNode(node)
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
        unode = union_of(child, sub) if child.is_record else UnionNode(child)
        unode.nullable = len(sub) < len(shapes)
        out.children[name] = unode
    return out


# =========================================================================== projectors


def projector(plan: RecordPlan, union: UnionNode, pseudo: Callable | None) -> Projector:
    """The projection function of one rule's ``plan``, emitting every field of ``union`` (None for
    those the rule does not release). ``pseudo`` is the partner's pseudonymisation."""
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
            fn = projector(op.record, unode, pseudo)
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

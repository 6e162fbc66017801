"""Conditions -> check closures, built once per policy.

:func:`compile_condition` turns a condition that passed :meth:`PolicyChecks.condition` into a
:data:`~release.model.Check` and the text describing it, through :func:`condition_node` (the condition as data,
:class:`CondNode`, which the compiled core runs too) and :func:`check_of`. A check returns None when the condition
holds, else why not: field names, set names and policy constants only, never a value of the record.
A condition on a path that crosses an array holds when *any* value satisfies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from release.model import Check
from release.schema_tree import SchemaNode
from release.spec import Condition

__all__ = ["CondNode", "check_of", "compile_condition", "condition_node"]


@dataclass(frozen=True)
class CondNode:
    """A condition as data, built once per rule: :func:`check_of` makes its check, and the compiled core
    (``compiled/``) runs the same nodes. ``fail`` is the text of a leaf that does not hold (field names, set names
    and policy constants only).

    ``op``: ``equals`` (``value``; a uuid field compares as text: ``equals_str``), ``in_set`` / ``contains``
    (``members``; ``in_set`` on one value, ``contains`` on every value the path reaches), ``inside`` (``box``: lat
    min, lat max, lon min, lon max; every position the path reaches), ``any`` / ``all`` (``subs``). ``steps``: the
    path, each part with whether it crosses an array."""

    op: str
    path: str = ""
    steps: tuple[tuple[str, bool], ...] = ()
    multi: bool = False
    value: Any = None
    members: frozenset = frozenset()
    box: tuple[float, float, float, float] | None = None
    fail: str = ""
    subs: tuple[CondNode, ...] = ()


def compile_condition(tree: SchemaNode, cond: Condition, sets: Mapping[str, Iterable[str]]) -> tuple[Check, str]:
    """The check of ``cond`` (on records of schema ``tree``) and its text, e.g. ``group_id in set designated``.

    ``cond`` must have passed the checks: its field exists and fits the operator, its sets are defined.
    """
    node, text = condition_node(tree, cond, sets)
    return check_of(node), text


def condition_node(tree: SchemaNode, cond: Condition, sets: Mapping[str, Iterable[str]]) -> tuple[CondNode, str]:
    """``cond`` as a :class:`CondNode`, and its text."""
    op = cond.operator
    if op in ("any", "all"):
        subs = [condition_node(tree, sub, sets) for sub in getattr(cond, op)]
        joiner = " or " if op == "any" else " and "
        return CondNode(op, subs=tuple(s[0] for s in subs)), "(" + joiner.join(s[1] for s in subs) + ")"

    path = cond.field
    node = tree.find(path)
    steps = _steps(tree, path)

    if op == "equals":
        value = cond.equals
        text, fail = f"{path} equals {_show(value)}", f"{path} does not equal {_show(value)}"
        if node.logical == "uuid":
            return CondNode("equals_str", path, steps, value=str(value), fail=fail), text
        return CondNode("equals", path, steps, value=value, fail=fail), text
    if op == "in_set":
        name = cond.in_set
        return (CondNode("in_set", path, steps, members=frozenset(sets[name]), fail=f"{path} not in set {name}"),
                f"{path} in set {name}")
    if op == "contains_any":
        values = cond.contains_any
        shown = "[" + ", ".join(_show(v) for v in values) + "]"
        return (CondNode("contains", path, steps, True, members=frozenset(values),
                         fail=f"{path} contains none of {shown}"), f"{path} contains any of {shown}")
    if op == "contains_any_set":
        name = cond.contains_any_set
        return (CondNode("contains", path, steps, True, members=frozenset(sets[name]),
                         fail=f"{path} contains none of set {name}"), f"{path} contains any of set {name}")
    # inside
    box = cond.inside
    area = f"lat {box.lat_min:g}..{box.lat_max:g}, lon {box.lon_min:g}..{box.lon_max:g}"
    return (CondNode("inside", path, steps, bool(node.multi), box=(box.lat_min, box.lat_max, box.lon_min, box.lon_max),
                     fail=f"{path} not inside {area}"), f"{path} inside {area}")


def check_of(node: CondNode) -> Check:
    """The check closure of ``node``: None when it holds, else why not."""
    op = node.op
    if op in ("any", "all"):
        checks = tuple(check_of(sub) for sub in node.subs)
        return _any_check(checks) if op == "any" else _all_check(checks)
    if op == "equals":
        return _equals_check(_single_getter(node.path), node.value, node.fail)
    if op == "equals_str":
        return _equals_str_check(_single_getter(node.path), node.value, node.fail)
    if op == "in_set":
        return _in_check(_single_getter(node.path), node.members, node.fail)
    if op == "contains":
        return _contains_check(_multi_getter(node.steps), node.members, node.fail)
    if op == "inside":
        getter = _multi_getter(node.steps) if node.multi else _single_as_list(_single_getter(node.path))
        return _inside_check(getter, *node.box, node.fail)
    raise AssertionError(op)


def _steps(tree: SchemaNode, path: str) -> tuple[tuple[str, bool], ...]:
    steps = []
    node = tree
    for part in path.split("."):
        node = node.children[part]
        steps.append((part, node.array))
    return tuple(steps)


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# =========================================================================== getters


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


def _multi_getter(steps_t: tuple[tuple[str, bool], ...]) -> Callable[[dict], list]:
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


# =========================================================================== checks


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

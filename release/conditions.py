"""Conditions -> check closures, built once per policy.

:func:`compile_condition` turns a condition that passed :meth:`PolicyChecks.condition` into a
:data:`~release.model.Check` and the text describing it. A check returns None when the condition
holds, else why not: field names, set names and policy constants only, never a value of the record.
A condition on a path that crosses an array holds when *any* value satisfies it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from release.model import Check
from release.schema_tree import SchemaNode
from release.spec import Condition

__all__ = ["compile_condition"]


def compile_condition(tree: SchemaNode, cond: Condition, sets: Mapping[str, Iterable[str]]) -> tuple[Check, str]:
    """The check of ``cond`` (on records of schema ``tree``) and its text, e.g. ``group_id in set designated``.

    ``cond`` must have passed the checks: its field exists and fits the operator, its sets are defined.
    """
    op = cond.operator
    if op in ("any", "all"):
        subs = [compile_condition(tree, sub, sets) for sub in getattr(cond, op)]
        checks = tuple(s[0] for s in subs)
        texts = [s[1] for s in subs]
        if op == "any":
            return _any_check(checks), "(" + " or ".join(texts) + ")"
        return _all_check(checks), "(" + " and ".join(texts) + ")"

    path = cond.field
    node = tree.find(path)

    if op in ("equals", "in_set"):
        getter = _single_getter(path)
        if op == "equals":
            value = cond.equals
            text = f"{path} equals {_show(value)}"
            fail = f"{path} does not equal {_show(value)}"
            if node.logical == "uuid":
                return _equals_str_check(getter, str(value), fail), text
            return _equals_check(getter, value, fail), text
        name = cond.in_set
        members = frozenset(sets[name])
        return _in_check(getter, members, f"{path} not in set {name}"), f"{path} in set {name}"

    if op in ("contains_any", "contains_any_set"):
        getter = _multi_getter(tree, path)
        if op == "contains_any":
            values = cond.contains_any
            members = frozenset(values)
            shown = "[" + ", ".join(_show(v) for v in values) + "]"
            return (_contains_check(getter, members, f"{path} contains none of {shown}"),
                    f"{path} contains any of {shown}")
        name = cond.contains_any_set
        members = frozenset(sets[name])
        return (_contains_check(getter, members, f"{path} contains none of set {name}"),
                f"{path} contains any of set {name}")

    # inside
    box = cond.inside
    area = f"lat {box.lat_min:g}..{box.lat_max:g}, lon {box.lon_min:g}..{box.lon_max:g}"
    getter = _multi_getter(tree, path) if node.multi else _single_as_list(_single_getter(path))
    return (_inside_check(getter, box.lat_min, box.lat_max, box.lon_min, box.lon_max, f"{path} not inside {area}"),
            f"{path} inside {area}")


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

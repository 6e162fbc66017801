"""The exchange format of what a partner sends us, derived from what we release to it ("give in the shape you
take"), and the partner-origin schema the ingress guard writes.

* inbound schema of (partner, type): the partner's derived schema of that type (the fields its policy releases,
  as it receives them), with the **whole** security label (a partner must say classification, REL TO, caveats,
  originator, creation time and message id of what it sends: the guard checks them), the label optional
  (``["null", SecurityLabel]``) so that a record without one decodes and is quarantined for it, not as
  undecodable. Namespace ``liaison.bus.inbound.<code>``; subject ``liaison.inbound.<code>.<domain>.<type>-value``.
* partner-origin schema: the same with the label required (the guard relabels every record it accepts).
  Namespace ``liaison.bus.origin.<code>``; subject ``liaison.origin.<code>.<domain>.<type>-value``.

A partner whose policy releases no record of a type sends none of it either: it has no inbound topic of that type;
nor of a type each side computes for itself (DeconflictionAlert, :data:`schemas.agreement.NOT_EXCHANGED`).
"""

from __future__ import annotations

import copy
from typing import Any

import schemas
from core.topics import origin_source
from release.model import CompiledPolicy
from schemas.agreement import is_exchanged

__all__ = ["INBOUND_NAMESPACE_PREFIX", "ORIGIN_NAMESPACE_PREFIX", "inbound_schema", "origin_schema",
           "origin_schemas", "exchanged_types"]

INBOUND_NAMESPACE_PREFIX = "liaison.bus.inbound"
ORIGIN_NAMESPACE_PREFIX = "liaison.bus.origin"


def origin_schemas(policies) -> dict[str, dict[str, Any]]:
    """Source "<PARTNER>/<Type>" -> its partner-origin schema, for every partner policy of ``policies``."""
    return {origin_source(p.partner, t): origin_schema(p, t) for p in policies for t in exchanged_types(p)}


def exchanged_types(policy: CompiledPolicy) -> tuple[str, ...]:
    """The message types a partner sends us: those its policy releases to it, but for the ones each side computes
    by itself (schemas.agreement.NOT_EXCHANGED: a partner does not send us its deconfliction alerts; it computes
    them from the plans and tracks we give it, as we compute ours from its)."""
    return tuple(t for t in policy.types if is_exchanged(t)) if policy.is_partner else ()


def inbound_schema(policy: CompiledPolicy, type_name: str) -> dict[str, Any]:
    return _exchange(policy, type_name, f"{INBOUND_NAMESPACE_PREFIX}.{policy.partner.lower()}", optional_label=True)


def origin_schema(policy: CompiledPolicy, type_name: str) -> dict[str, Any]:
    return _exchange(policy, type_name, f"{ORIGIN_NAMESPACE_PREFIX}.{policy.partner.lower()}", optional_label=False)


def _full_label(namespace: str) -> dict[str, Any]:
    label = next(f for f in schemas.load_schema("AirTrack")["fields"] if f["name"] == "label")["type"]
    return _renamespace(_strip_docs(copy.deepcopy(label)), namespace)


def _exchange(policy: CompiledPolicy, type_name: str, namespace: str, optional_label: bool) -> dict[str, Any]:
    if not policy.is_partner:
        raise ValueError(f"{policy.partner} is a component: it sends nothing through the ingress guard")
    derived = _renamespace(policy.derived_schema(type_name), namespace)
    label = _full_label(namespace)
    fields = []
    for f in derived["fields"]:
        if f["name"] == "label":
            f = {"name": "label", "type": ["null", label], "default": None} if optional_label else \
                {"name": "label", "type": label}
        fields.append(f)
    derived["fields"] = fields
    return derived


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k != "doc"}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def _renamespace(node: Any, namespace: str) -> Any:
    """Every named type into ``namespace``; references by full name follow."""
    names: dict[str, str] = {}

    def collect(n: Any, ns: str) -> None:
        if isinstance(n, dict):
            if n.get("type") in ("record", "enum", "fixed") and "name" in n:
                inner = n.get("namespace", ns)
                full = n["name"] if "." in n["name"] else f"{inner}.{n['name']}"
                names[full] = f"{namespace}.{full.rsplit('.', 1)[-1]}"
                ns = inner
            for v in n.values():
                collect(v, ns)
        elif isinstance(n, list):
            for v in n:
                collect(v, ns)

    def rewrite(n: Any, ns: str) -> Any:
        if isinstance(n, dict):
            out = dict(n)
            if n.get("type") in ("record", "enum", "fixed") and "name" in n:
                ns = n.get("namespace", ns)
                out["name"] = n["name"].rsplit(".", 1)[-1]
                out["namespace"] = namespace
            for k, v in n.items():
                if k in ("type", "items", "values", "fields"):
                    out[k] = rewrite(v, ns)
            return out
        if isinstance(n, list):
            return [rewrite(v, ns) for v in n]
        if isinstance(n, str) and n not in _PRIMITIVES:
            full = n if "." in n else f"{ns}.{n}"
            return names.get(full, n)
        return n

    collect(node, node.get("namespace", "") if isinstance(node, dict) else "")
    return rewrite(node, node.get("namespace", "") if isinstance(node, dict) else "")


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

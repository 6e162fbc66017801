"""What a policy releases, described: per rule as data (:meth:`CompiledPolicy.describe`, built at
compile time by :func:`describe_rule`) and as the human text of ``liaison policy check``
(:func:`render_policy`)."""

from __future__ import annotations

from typing import Any

import schemas
from release.errors import display_path
from release.model import CompiledPolicy
from release.schema_tree import SchemaNode
from release.spec import Action
from release.yamlsrc import Loc

__all__ = ["describe_rule", "render_policy"]


def describe_rule(type_name: str, rule_id: str, tree: SchemaNode, texts: list[str],
                  named: dict[str, tuple[Action, Loc]], effective: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """One entry of :meth:`CompiledPolicy.describe`: the rule's condition ``texts`` and its paths by
    effective action (``effective``, from :func:`release.projection.plan_projection`)."""
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


def render_policy(policy: CompiledPolicy) -> str:
    """Human description of a compiled policy (used by `policy check`)."""
    lines = [f"{policy.partner}  {display_path(policy.path)}  version {policy.version}",
             f"  ceiling {policy.ceiling}; "
             + (f"REL TO must name {policy.partner}" if policy.require_releasable_to else "REL TO not required")]
    for name, members in policy.sets.items():
        lines.append(f"  set {name}: {', '.join(sorted(members))}")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in policy.describe():
        by_type.setdefault(entry["type"], []).append(entry)
    for type_name in schemas.MESSAGE_TYPES:
        if type_name not in by_type:
            lines.append(f"  {type_name}: WITHHELD (no rule)")
            continue
        lines.append(f"  {type_name}:")
        _render_rules(lines, by_type[type_name])
    spec = policy.spec
    origins = sorted({s.partition("/")[0] for s in by_type if "/" in s})
    if policy.is_partner or origins:
        lines.append("  from partners (partner-origin records, accepted by the ingress guard):")
    for code in origins:
        for source in sorted(s for s in by_type if s.startswith(code + "/")):
            third = " (third party: allowed by both policies)" if policy.is_partner else ""
            lines.append(f"    {source}{third}:")
            _render_rules(lines, by_type[source], indent="  ")
    if policy.is_partner:
        if not origins:
            lines.append("    none: another partner's records never reach " + policy.partner + " (third-party rule)")
        onward = spec.onward if spec is not None else {}
        lines.append(f"  {policy.partner}'s records to other partners: "
                     + (", ".join(f"{t} to {', '.join(c)}" for t, c in sorted(onward.items())) if onward
                        else "never (third-party rule; no onward)"))
        inbound = spec.inbound if spec is not None and spec.inbound is not None else None
        if inbound is not None:
            lines.append(f"  accepted from {policy.partner}: classification up to {inbound.classification_ceiling}, "
                         f"times {inbound.max_future_s} s ahead to {inbound.max_age_s} s behind")
        for pause in (spec.reciprocity if spec is not None else []):
            lines.append(f"  reciprocity: {pause.category} paused while {policy.partner} gives < {pause.min_ratio:g} "
                         f"of what it takes over a {pause.window} (once given >= {pause.min_given})")
    return "\n".join(lines)


def _render_rules(lines: list[str], entries: list[dict[str, Any]], indent: str = "") -> None:
    for entry in entries:
        when = " and ".join(entry["conditions"]) if entry["conditions"] else "always"
        lines.append(f"{indent}    rule {entry['rule']}  when {when}")
        rows = [
            ("kept", ", ".join(entry["kept"])),
            ("coarsened", ", ".join(f"{p} to {g:g} deg grid" for p, g in entry["coarsened"].items())),
            ("bucketed", ", ".join(f"{p} to {s} s" for p, s in entry["bucketed"].items())),
            ("pseudonymised", ", ".join(entry["pseudonymised"])),
            ("dropped", ", ".join(entry["dropped"])),
            ("not named", ", ".join(entry["unnamed"]) + (" (dropped)" if entry["unnamed"] else "")),
            ("timestamp", _timestamp_text(entry)),
            ("acknowledged", _acknowledged_text(entry.get("acknowledge") or {})),
        ]
        for title, text in rows:
            if text:
                lines.append(f"{indent}      {title + ':':15}{text}")


def _timestamp_text(entry: dict[str, Any]) -> str:
    """The record timestamp of a rule's releases, and whether they are held (``policy check`` text)."""
    path = entry.get("timestamp")
    if path is None:
        return ""
    bucketed = entry["bucketed"]
    text = f"{path}{' (bucket start)' if path in bucketed else ''}"
    if bucketed:
        text += "; held until its buckets end"
    return text


def _acknowledged_text(ack: dict[str, Any]) -> str:
    parts = []
    for kind in ("precision", "distinguishable", "linkable"):
        value = ack.get(kind)
        if value is None:
            continue
        parts.append(f"{kind} ({', '.join(value)})" if isinstance(value, dict) else
                     (f"{kind} (every field)" if kind == "linkable" else kind))
    return "; ".join(parts)

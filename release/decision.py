"""The release decision: pure, no I/O, no logging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import schemas
from release.compiler import CompiledPolicy

__all__ = ["Decision", "decide", "released_key", "LEVELS"]

#: Classification symbol -> rank (0 = UNCLASSIFIED ... 4 = TOP_SECRET).
LEVELS: dict[str, int] = {
    "UNCLASSIFIED": 0, "RESTRICTED": 1, "CONFIDENTIAL": 2, "SECRET": 3, "TOP_SECRET": 4,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What one partner gets of one record.

    ``rule`` is the id of the releasing rule, or for a withhold ``label-ceiling``,
    ``label-releasability``, ``default-deny`` (no rule for the type, or none matched),
    ``malformed-record`` (the record does not fit its schema) or ``pseudonymisation-key-missing``.
    ``reason`` names fields, sets and policy constants only, never a value of the record.
    ``released`` is the partner view (valid for the policy's derived schema) or None.
    """

    partner: str
    decision: Literal["RELEASE", "WITHHOLD"]
    rule: str
    reason: str
    released: dict[str, Any] | None

    @property
    def is_release(self) -> bool:
        return self.decision == "RELEASE"


def decide(type_name: str, record: dict[str, Any], policy: CompiledPolicy) -> Decision:
    """Release or withhold ``record`` (a record dict of message type ``type_name``, as fastavro reads it)
    for ``policy``'s partner. Labels first (ceiling, then REL TO), then the type's rules in order:
    the first rule whose conditions all hold releases the record with its projection."""
    try:
        label = record.get("label")
        if not isinstance(label, dict):
            return policy._no_label
        level = LEVELS.get(label.get("classification"))
        if level is None:
            return policy._bad_classification
        if level > policy.ceiling_level:
            return policy._above[level]
        if policy.require_releasable_to:
            rel = label.get("releasable_to")
            if not isinstance(rel, (list, tuple)) or policy.partner not in rel:
                return policy._not_rel

        plan = policy._plans.get(type_name)
        if plan is None:
            return policy._no_rule_decision(type_name)
        fails = None
        for rule in plan.rules:
            fail = None
            for check in rule.checks:
                fail = check(record)
                if fail is not None:
                    break
            if fail is None:
                if rule.project is None:
                    return policy._no_key[(type_name, rule.id)]
                return Decision(policy.partner, "RELEASE", rule.id, rule.release_reason, rule.project(record))
            if fails is None:
                fails = [f"{rule.id}: {fail}"]
            else:
                fails.append(f"{rule.id}: {fail}")
        return Decision(policy.partner, "WITHHOLD", "default-deny",
                        f"{type_name}: no rule matched ({'; '.join(fails)})", None)
    except Exception as exc:  # a record that does not fit its schema: withhold, never raise
        return Decision(policy.partner, "WITHHOLD", "malformed-record",
                        f"{type_name}: record does not fit the schema ({_describe_error(exc)})", None)


def _describe_error(exc: Exception) -> str:
    # Only the exception type and, for a missing key, the field name: never a value.
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        return f"missing field {exc.args[0]!r}"
    return type(exc).__name__


def released_key(type_name: str, released: dict[str, Any]) -> str | None:
    """Partition key of a released record on the partner topic, from the RELEASED view only:
    the type's key field (:func:`schemas.key_field`) when it survived (pseudonymised or not),
    else the label's message_id; None when neither was released."""
    value: Any = released
    for part in schemas.key_field(type_name).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str) and value:
        return value
    label = released.get("label")
    if isinstance(label, dict):
        message_id = label.get("message_id")
        if message_id is not None and str(message_id):
            return str(message_id)
    return None

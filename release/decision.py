"""The release decision: pure, no I/O, no logging."""

from __future__ import annotations

import uuid
from typing import Any, Mapping

import schemas
from schemas.agreement import CATEGORY_OF
from release.model import CompiledPolicy, Decision

__all__ = ["Decision", "decide", "released_key", "LEVELS"]

#: Classification symbol -> rank (0 = UNCLASSIFIED ... 4 = TOP_SECRET).
LEVELS: dict[str, int] = {
    "UNCLASSIFIED": 0, "RESTRICTED": 1, "CONFIDENTIAL": 2, "SECRET": 3, "TOP_SECRET": 4,
}


def decide(type_name: str, record: dict[str, Any], policy: CompiledPolicy,
           paused: Mapping[str, str] | None = None) -> Decision:
    """Release or withhold ``record`` (a record dict of source ``type_name``: a message type of ours, or
    "<PARTNER>/<Type>" for a partner's record, as fastavro reads it) for ``policy``'s recipient. Labels first
    (ceiling, then REL TO), then a reciprocity pause (``paused``: category -> reason, for this recipient, from
    the ledger; the caller passes it in), then the type's rules in order: the first rule whose conditions all
    hold releases the record with its projection."""
    try:
        label = record.get("label")
        if not isinstance(label, dict):
            return policy.withhold_no_label
        level = LEVELS.get(label.get("classification"))
        if level is None:
            return policy.withhold_unknown_classification
        if level > policy.ceiling_level:
            return policy.withhold_above_ceiling[level]
        if policy.require_releasable_to:
            rel = label.get("releasable_to")
            if not isinstance(rel, (list, tuple)) or policy.partner not in rel:
                return policy.withhold_not_releasable

        if paused:
            reason = paused.get(CATEGORY_OF.get(type_name.rpartition("/")[2], ""))
            if reason is not None:
                return policy.withhold_paused(reason)
        plan = policy.plans.get(type_name)
        if plan is None:
            return policy.withhold_no_rule(type_name)
        fails = None
        for rule in plan.rules:
            fail = None
            for check in rule.checks:
                fail = check(record)
                if fail is not None:
                    break
            if fail is None:
                if rule.project is None:
                    return policy.withhold_key_missing(type_name, rule.id)
                return Decision(policy.partner, "RELEASE", rule.id, rule.release_reason, rule.project(record))
            if fails is None:
                fails = [fail]
            else:
                fails.append(fail)
        return policy.withhold_no_match(type_name, plan.rules, fails)
    except Exception as exc:  # a record that does not fit its schema: withhold, never raise
        return policy.withhold_malformed(type_name, exc)


def released_key(type_name: str, released: dict[str, Any]) -> str | None:
    """Partition key of a released record on the partner topic, from the RELEASED view only:
    the type's key field (:func:`schemas.key_field`) when it survived (pseudonymised or not; a UUID, as
    DeconflictionAlert.alert_id is decoded, as its text: the internal record's key, so every revision of an
    alert lands on one partition of the partner topic, in order), else the label's message_id; None when
    neither was released."""
    value: Any = released
    for part in schemas.key_field(type_name).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and value:
        return value
    label = released.get("label")
    if isinstance(label, dict):
        message_id = label.get("message_id")
        if message_id is not None and str(message_id):
            return str(message_id)
    return None

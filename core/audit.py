"""Reading the decision audit (``liaison.audit.decisions``, schema ``schemas/audit/DecisionAudit.avsc``).

Since v4 the forwarder writes one audit record per input carrying every recipient's decision in ``decisions``
(its top-level per-recipient fields null); v1-v3 records, one per (input, recipient), carry their one decision in
the top-level fields. :func:`decisions_of` turns either into the same rows, one per recipient decision, so the
ledger, the demo and the tests count and query per partner whatever version wrote the topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["INPUT_FIELDS", "DECISION_FIELDS", "decisions_of", "rows_of"]

#: What a record says about its input (every version).
INPUT_FIELDS = ("input_topic", "input_partition", "input_offset", "message_id", "message_type", "decided_at",
                "forwarder")
#: What one recipient's decision says (RecipientDecision since v4, the top-level fields before).
DECISION_FIELDS = ("partner", "decision", "rule", "reason", "policy_version", "output_topic", "due_at", "bytes")


def decisions_of(audit: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per recipient decision the record carries: its input fields and that decision's fields."""
    base = {k: audit.get(k) for k in INPUT_FIELDS}
    listed = audit.get("decisions") or ()
    if listed:
        return [{**base, **{k: d.get(k) for k in DECISION_FIELDS}} for d in listed]
    if audit.get("partner") is None:  # a v4 record with no decision (never written) or not an audit
        return []
    return [{**base, **{k: audit.get(k) for k in DECISION_FIELDS}}]


def rows_of(audits: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every decision of every record, in order."""
    return [row for a in audits for row in decisions_of(a)]

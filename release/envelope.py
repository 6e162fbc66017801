"""The envelope of a release: the Kafka key, headers and record timestamp of the partner's record, and
the earliest time it may reach the partner. Pure; derived from the released view and the policy only.

A partner learns from everything that reaches it, not only from the fields of the record (BRIEF.md,
"Everything a partner receives is data"). So:

* ``key``: :func:`release.released_key` of the view (the type's key field as released, else the
  released ``label.message_id``), UTF-8; None when neither is released.
* ``headers``: an allow-list, :data:`HEADERS`: ``liaison.policy.version`` (the policy version),
  ``message_id`` only when the view itself carries ``label.message_id`` (its value), ``type`` (the
  record name). Never the releasing rule: which rule matched tells which conditions held (the audit
  keeps the rule).
* ``timestamp_ms``: the record timestamp, from the view's own time as the policy transformed it (the
  rule's ``timestamp`` field, default :data:`release.facts.DEFAULT_TIMESTAMP`; the earliest value when it
  lies in an array), never the forwarding time. None only when the rule releases no time at all, which
  the escape-route check refuses (:func:`release.check_escape_routes`, run by ``load_policies``).
* ``due_ms``: when a time of the view is bucketed, the end of its bucket (the latest bucket end over
  the bucketed times): the record must not reach the partner before then, or its arrival tells the time
  the bucket hides. None when nothing is bucketed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NamedTuple

from release.decision import released_key
from release.facts import RuleFacts
from release.model import CompiledPolicy, Decision

__all__ = ["Envelope", "EnvelopePlan", "HEADERS", "envelope", "envelope_plan"]

#: Every header a partner record may carry, in this order.
HEADERS: tuple[str, ...] = ("liaison.policy.version", "message_id", "type")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


class Envelope(NamedTuple):
    """Key, headers, record timestamp and earliest delivery time of one released record (module doc). A named
    tuple: one is made for every release on the forwarder's hot path."""

    key: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None
    due_ms: int | None


@dataclass(frozen=True, slots=True)
class EnvelopePlan:
    """The envelope of one rule's releases: how to read its record timestamp and bucket ends from a view."""

    timestamp: Callable[[dict], int | None]
    due: Callable[[dict], int | None]


def envelope(type_name: str, decision: Decision, policy: CompiledPolicy) -> Envelope:
    """The envelope of ``decision`` (a RELEASE of a ``type_name`` record by ``policy``)."""
    view = decision.released
    if not decision.is_release or view is None:
        raise ValueError(f"{decision.decision} of {type_name}: only a release has an envelope")
    try:
        plan = policy.envelopes[(type_name, decision.rule)]
    except KeyError:
        raise ValueError(f"{policy.partner} has no rule {decision.rule!r} for {type_name}") from None
    key = released_key(type_name.rpartition("/")[2], view)
    headers = [("liaison.policy.version", policy.version.encode())]
    label = view.get("label")
    message_id = label.get("message_id") if isinstance(label, dict) else None
    if message_id is not None:
        headers.append(("message_id", str(message_id).encode()))
    headers.append(("type", type_name.rpartition("/")[2].encode()))
    return Envelope(key.encode() if key is not None else None, headers, plan.timestamp(view), plan.due(view))


def envelope_plan(facts: RuleFacts) -> EnvelopePlan:
    """The envelope plan of one rule (built once, at compile time)."""
    if facts.timestamp is None:
        def timestamp(view: dict) -> None:
            return None
    else:
        unit = facts.released[facts.timestamp]
        read = _reader(facts.timestamp, unit.node.logical)

        def timestamp(view: dict) -> int | None:
            values = read(view)
            return min(values) if values else None

    buckets = [(_reader(r.path, r.node.logical), int(r.precision) * 1000) for r in facts.bucketed()]
    if not buckets:
        def due(view: dict) -> None:
            return None
    else:
        def due(view: dict) -> int | None:
            ends = [start + size for read_starts, size in buckets for start in read_starts(view)]
            return max(ends) if ends else None

    return EnvelopePlan(timestamp, due)


def _reader(path: str, logical: str | None) -> Callable[[dict], list[int]]:
    """Epoch milliseconds of every value at dotted ``path`` of a view (through arrays; nulls skipped)."""
    parts = tuple(path.split("."))
    micros = logical == "timestamp-micros"

    def read(view: dict) -> list[int]:
        values: list[Any] = [view]
        for part in parts:
            nxt: list[Any] = []
            for value in values:
                if isinstance(value, dict):
                    value = value.get(part)
                    if isinstance(value, list):
                        nxt.extend(value)
                    elif value is not None:
                        nxt.append(value)
            values = nxt
        return [_millis(v, micros) for v in values]

    return read


def _millis(value: Any, micros: bool) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH) // _MS
    if isinstance(value, int) and not isinstance(value, bool):
        return value // 1000 if micros else value
    raise TypeError("timestamp is neither a datetime nor an integer")

"""Counting, windows, ratios and pauses. Pure: no Kafka, no clock (``now_ms`` is passed in).

What counts (one record each, its ``bytes`` summed; everything else is ignored):

- **given**: a forwarder decision (liaison.audit.decisions) ``RELEASE`` or ``RELEASED`` (the later release of a
  ``HELD`` record; the ``HELD`` itself is not yet given) whose recipient (``partner``) is a partner code. Our
  components (naval, air, intel) are never counted. ``bytes`` null (audits before v3) counts 0 bytes.
- **received**: an ingress guard decision (liaison.audit.ingress) ``ACCEPT``.

Each is put in the bucket (partner, category of its message type, direction, UTC hour of ``decided_at``).
A window (day, week) sums the buckets of the hour holding ``now`` and the 23 (167) hours before it
(:data:`~operations.ledger.model.WINDOW_HOURS`); buckets after ``now`` are left out. The ratio is
received / given in records (None when nothing was given); the bytes ratio likewise in bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.topics import base_type, is_partner_code
from schemas.agreement import CATEGORIES, CATEGORY_OF, SAFETY_CATEGORIES
from operations.ledger.model import (GIVEN, HOUR_MS, RECEIVED, WINDOW_HOURS, WINDOWS, ZERO, BucketKey, Figures,
                                     decode_key, decode_value, hour_of)

__all__ = ["Entry", "LedgerState", "Row", "entry_of_decision", "entry_of_ingress", "pauses", "ratio", "rows"]

#: Forwarder decisions that give a record to the recipient.
GIVEN_DECISIONS = frozenset({"RELEASE", "RELEASED"})
#: Ingress decisions that receive one.
RECEIVED_DECISIONS = frozenset({"ACCEPT"})

Entry = tuple[BucketKey, Figures]
#: (partner, category, direction, window) -> the window's sum
Totals = dict[tuple[str, str, str, str], Figures]


def _ms(value: Any) -> int:
    """timestamp-millis as decoded: an int, or the datetime a decoder made of the logical type."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _category(message_type: str | None) -> str | None:
    return CATEGORY_OF.get(base_type(message_type)) if message_type else None


def entry_of_decision(audit: Mapping[str, Any]) -> Entry | None:
    """The given bucket a DecisionAudit counts in, or None when it does not count."""
    if audit.get("decision") not in GIVEN_DECISIONS:
        return None
    partner = audit.get("partner") or ""
    category = _category(audit.get("message_type"))
    if not is_partner_code(partner) or category is None or audit.get("decided_at") is None:
        return None
    return BucketKey(partner, category, GIVEN, hour_of(_ms(audit["decided_at"]))), Figures(1, audit.get("bytes") or 0)


def entry_of_ingress(audit: Mapping[str, Any]) -> Entry | None:
    """The received bucket an IngressAudit counts in, or None when it does not count."""
    if audit.get("decision") not in RECEIVED_DECISIONS:
        return None
    partner = audit.get("partner") or ""
    category = _category(audit.get("message_type"))
    if not is_partner_code(partner) or category is None or audit.get("decided_at") is None:
        return None
    return BucketKey(partner, category, RECEIVED, hour_of(_ms(audit["decided_at"]))), Figures(1, audit.get("bytes") or 0)


def ratio(received: int, given: int) -> float | None:
    """received / given; None when nothing was given (no ratio to judge)."""
    return None if given == 0 else received / given


class LedgerState:
    """Every bucket's figures (what the changelog says, plus what this process counted since)."""

    def __init__(self, buckets: Mapping[BucketKey, Figures] | None = None):
        self.buckets: dict[BucketKey, Figures] = dict(buckets or {})

    def __len__(self) -> int:
        return len(self.buckets)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LedgerState) and self.buckets == other.buckets

    def get(self, key: BucketKey) -> Figures:
        return self.buckets.get(key, ZERO)

    # ------------------------------------------------------------------ counting, two steps (a transaction)

    def stage(self, entries: Iterable[Entry | None]) -> dict[BucketKey, Figures]:
        """The new totals of the buckets ``entries`` change, without changing this state: written to the
        changelog in a transaction, then :meth:`update` once it committed."""
        changed: dict[BucketKey, Figures] = {}
        for entry in entries:
            if entry is None:
                continue
            key, fig = entry
            changed[key] = changed.get(key, self.buckets.get(key, ZERO)) + fig
        return changed

    def update(self, changed: Mapping[BucketKey, Figures]) -> None:
        self.buckets.update(changed)

    def add(self, entries: Iterable[Entry | None]) -> None:
        self.update(self.stage(entries))

    # ------------------------------------------------------------------ the changelog

    def apply(self, key: bytes | str, value: bytes | None) -> None:
        """One changelog record: the bucket's total (a tombstone forgets it). Raises LedgerFormatError."""
        k = decode_key(key)
        fig = decode_value(value)
        if fig is None:
            self.buckets.pop(k, None)
        else:
            self.buckets[k] = fig

    # ------------------------------------------------------------------ windows

    def partners(self) -> list[str]:
        return sorted({k.partner for k in self.buckets})

    def totals(self, now_ms: int) -> Totals:
        """Per (partner, category, direction, window): the window's sum at ``now_ms`` (only non-empty ones)."""
        current = hour_of(now_ms)
        first = {w: current - (n - 1) * HOUR_MS for w, n in WINDOW_HOURS.items()}
        out: Totals = {}
        for key, fig in self.buckets.items():
            if key.hour > current:
                continue
            for window, start in first.items():
                if key.hour >= start:
                    t = (key.partner, key.category, key.direction, window)
                    out[t] = out.get(t, ZERO) + fig
        return out


@dataclass(frozen=True)
class Row:
    """One line of the table: a partner's category over a window."""

    partner: str
    category: str
    window: str
    given: Figures
    received: Figures

    @property
    def ratio(self) -> float | None:
        return ratio(self.received.count, self.given.count)

    @property
    def bytes_ratio(self) -> float | None:
        return ratio(self.received.bytes, self.given.bytes)

    def to_dict(self) -> dict:
        return {"partner": self.partner, "category": self.category, "window": self.window,
                "given": self.given.to_dict(), "received": self.received.to_dict(), "ratio": self.ratio,
                "bytes_ratio": self.bytes_ratio}


def rows(state: LedgerState, now_ms: int, partners: Iterable[str] | None = None) -> list[Row]:
    """Every category of every partner (those in ``state``, or ``partners``) over each window, in the order
    partner, category (the brief's), window (day, week)."""
    totals = state.totals(now_ms)
    out = []
    for partner in sorted(partners) if partners is not None else state.partners():
        for category in CATEGORIES:
            for window in WINDOWS:
                out.append(Row(partner, category, window, totals.get((partner, category, GIVEN, window), ZERO),
                               totals.get((partner, category, RECEIVED, window), ZERO)))
    return out


# ---------------------------------------------------------------------------------------------- pauses


def _policies(policies: Any) -> Iterable[Any]:
    return policies.values() if isinstance(policies, Mapping) else policies


def pause_reason(partner: str, category: str, window: str, received: int, given: int, min_ratio: float,
                 min_given: int) -> str:
    """Why a category is paused: numbers only (never a record's values)."""
    return (f"reciprocity pause: {partner} {category} over the {window}: received {received} / given {given} = "
            f"ratio {received / given:.3f} < min_ratio {min_ratio:g} (given {given} >= min_given {min_given})")


def pauses(policies: Any, state: LedgerState, now_ms: int) -> dict[str, dict[str, str]]:
    """partner -> category -> reason, for every category a partner policy's ``reciprocity:`` list pauses now.

    ``policies``: the compiled policies (a mapping recipient -> CompiledPolicy, or an iterable of them; the
    forwarder's plans, objects with a ``policy``, do too); each
    one's ``policy.spec.reciprocity`` lists (category, window, min_ratio, min_given). A category is paused when,
    over the window ending at ``now_ms``, we gave at least ``min_given`` records and received / given <
    ``min_ratio``. Components' policies, and safety categories (air and maritime deconfliction: never paused,
    ``policy check`` refuses such a policy anyway), are skipped. Several entries pausing one category: their
    reasons joined with "; "."""
    totals = state.totals(now_ms)
    out: dict[str, dict[str, str]] = {}
    for policy in _policies(policies):
        if not hasattr(policy, "spec") and hasattr(policy, "policy"):  # the forwarder's PartnerPlan
            policy = policy.policy
        partner = getattr(policy, "partner", "")
        entries = getattr(getattr(policy, "spec", None), "reciprocity", None) or ()
        if not is_partner_code(partner):
            continue
        for entry in entries:
            category, window = entry.category, entry.window
            if category in SAFETY_CATEGORIES or category not in CATEGORIES or window not in WINDOW_HOURS:
                continue
            given = totals.get((partner, category, GIVEN, window), ZERO).count
            received = totals.get((partner, category, RECEIVED, window), ZERO).count
            if given >= entry.min_given and given > 0 and received / given < entry.min_ratio:
                why = pause_reason(partner, category, window, received, given, entry.min_ratio, entry.min_given)
                mine = out.setdefault(partner, {})
                mine[category] = f"{mine[category]}; {why}" if category in mine else why
    return out

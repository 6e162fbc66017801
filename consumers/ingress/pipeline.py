"""The ingress guard's pipeline: a consumed batch of one partner's inbound records in, everything to produce
out. No Kafka client in here; the clock and the seen ids come in.

    InRecord of liaison.inbound.<code>.<domain>.<type>
        -> the compiled core (consumers/ingress/compiled.py), when it accepts the record outright: accepted below
        -> else the checks in order (:mod:`consumers.ingress.checks`), stopping at the first that fails
        accepted:     the record relabelled partner-origin (originator "partner.<code>", caveats + "ORIGIN <CODE>",
                      classification and releasable_to as sent), encoded with the partner-origin schema, to
                      liaison.origin.<code>.<domain>.<type> (key: the message id)
                      + its seen id to liaison.ingress.seen (key "<CODE>/<message id>")
                      + an IngressAudit ACCEPT
        refused:      the original key, value and headers + liaison.quarantine.* headers to liaison.quarantine.<code>
                      + an IngressAudit QUARANTINE naming the check
        registry away (the schema check got no answer): the partition stops here for this batch, like the
                      forwarder's: pauses[(topic, p)] = (offset, retry time); never quarantined
        poison (the service could not produce the record's outputs): quarantined with check "produce"
    BatchResult: the outputs in produce order (with the input each came from), the next offset per (topic,
                 partition), the pauses, the message ids accepted (the service adds them to its seen ids once the
                 transaction commits), the stats

Every input record is accepted or quarantined, once: inbound = accepted + quarantined.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from consumers.shell.codec import RegistryUnavailable
from consumers.shell.records import Headers, InRecord, OutRecord, PoisonSet
from consumers.ingress.checks import (Check, GuardConfig, Inspect, TypePlan, build_checks, origin_caveat,
                                      origin_originator)
from core.topics import INGRESS_AUDIT_TOPIC, SEEN_TOPIC, quarantine_topic

__all__ = ["BatchResult", "IngressStats", "Pipeline", "QUARANTINE_HEADERS", "seen_key"]

#: The headers a quarantined record gets after its own.
QUARANTINE_HEADERS = ("liaison.quarantine.check", "liaison.quarantine.reason", "liaison.quarantine.source.topic",
                      "liaison.quarantine.source.partition", "liaison.quarantine.source.offset",
                      "liaison.quarantine.guard")


def seen_key(partner: str, message_id: str) -> str:
    """The key of a seen id on liaison.ingress.seen: "<CODE>/<message id>"."""
    return f"{partner.upper()}/{message_id}"


@dataclass
class IngressStats:
    records: int = 0
    accepted: int = 0
    quarantined: int = 0
    #: (type, decision, check) -> n; decision ACCEPT or QUARANTINE, check "accepted" for an ACCEPT
    counts: Counter = field(default_factory=Counter)
    #: Transactions.run logs it (the forwarder's hold); the guard holds nothing
    released_from_hold: int = 0

    def add(self, other: IngressStats) -> None:
        self.records += other.records
        self.accepted += other.accepted
        self.quarantined += other.quarantined
        self.counts.update(other.counts)

    def checks(self) -> dict[str, int]:
        """Quarantined records per check."""
        out: Counter = Counter()
        for (_t, decision, check), n in self.counts.items():
            if decision == "QUARANTINE":
                out[check] += n
        return dict(out)


@dataclass
class BatchResult:
    outputs: list[OutRecord] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    pauses: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    stats: IngressStats = field(default_factory=IngressStats)
    #: message ids accepted in this batch, in order: seen once the transaction commits
    accepted_ids: list[str] = field(default_factory=list)
    registry_error: str | None = None
    #: one entry per decided record: (topic, partition, offset, message id or None, decision, check) for logs
    decisions: list[tuple[str, int, int, str | None, str, str]] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list, repr=False)
    _coords: list[tuple[str, int, int]] = field(default_factory=list, repr=False)

    def source_of(self, index: int) -> tuple[str, int, int]:
        """The consumed record (topic, partition, offset) that output ``index`` comes from."""
        return self._coords[bisect_right(self._starts, index) - 1]

    @property
    def origin(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic.startswith("liaison.origin.")]

    @property
    def quarantined(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic.startswith("liaison.quarantine.")]

    @property
    def audits(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == INGRESS_AUDIT_TOPIC]

    @property
    def seen(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == SEEN_TOPIC]


class _Refused(Exception):
    def __init__(self, check: str, reason: str):
        super().__init__(reason)
        self.check, self.reason = check, reason


class Pipeline:
    """InRecords of one partner's inbound topics -> BatchResult. ``plans``: inbound topic -> TypePlan;
    ``schemas``: the inbound subjects' versions (:class:`~consumers.ingress.registry.InboundSchemas`);
    ``audit``: Encoder of IngressAudit; ``guard``: this instance's transactional id (audits, headers)."""

    def __init__(self, config: GuardConfig, plans: dict[str, TypePlan], schemas, audit, guard: str,
                 compiled=None):
        self.config = config
        self.partner = config.partner
        self.plans = plans
        self.checks: list[Check] = build_checks(config, schemas)
        self.audit = audit
        self.guard = guard
        self.quarantine_topic = quarantine_topic(config.partner)
        #: the compiled core's accept path (consumers.ingress.compiled.GuardCore), or None: the reference checks
        #: every record
        self.compiled = compiled

    def process(self, batch: Iterable[InRecord], now_ms: int, seen: Container[str] = frozenset(),
                poison: PoisonSet | None = None) -> BatchResult:
        result = BatchResult()
        batch_ids: set[str] = set()
        for rec in batch:
            tp = (rec.topic, rec.partition)
            if tp in result.pauses:
                continue
            result._starts.append(len(result.outputs))
            result._coords.append((rec.topic, rec.partition, rec.offset))
            bad = poison.get((rec.topic, rec.partition, rec.offset)) if poison else None
            plan = self.plans.get(rec.topic)
            if bad is None and plan is not None and self.compiled is not None:
                accepted = self.compiled.accept(rec, plan, now_ms, seen, batch_ids)
                if accepted is not None:  # every check passed in the core: decode, label, validation, relabel
                    self._accept(rec, plan, accepted[0], accepted[1], now_ms, result)
                    batch_ids.add(accepted[0])
                    continue
            x = Inspect(rec, plan, now_ms, seen, batch_ids) if plan is not None else None
            try:
                if bad is not None:  # its outputs could not be produced: quarantined, never decided again
                    raise _Refused(bad.stage, bad.error)
                if x is None:
                    raise _Refused("topic", f"{rec.topic} is not an inbound topic of {self.partner}")
                for check in self.checks:
                    why = check.run(x)
                    if why is not None:
                        raise _Refused(check.name, why)
                relabelled = self._relabel(x.record, x.message_id)
                try:
                    value = plan.origin_encoder.encode(relabelled)
                except Exception as e:  # noqa: BLE001 - fastavro: does not fit the partner-origin schema
                    raise _Refused("encode", f"relabelled record does not encode with the partner-origin schema "
                                             f"({type(e).__name__})") from None
            except _Refused as r:
                self._quarantine(rec, plan, r.check, r.reason, now_ms, result, x.message_id if x else None)
                continue
            except RegistryUnavailable as e:  # no answer about the writer schema: the partition waits here
                result.pauses[tp] = (rec.offset, now_ms + e.retry_ms)
                result.offsets.setdefault(tp, rec.offset)
                result.registry_error = str(e)
                result._starts.pop()
                result._coords.pop()
                continue
            self._accept(rec, plan, x.message_id, value, now_ms, result)
            batch_ids.add(x.message_id)
        return result

    # ------------------------------------------------------------------ outcomes

    def _relabel(self, record: dict, message_id: str) -> dict:
        label = dict(record["label"])
        label["originator"] = origin_originator(self.partner)
        label["caveats"] = list(label.get("caveats") or []) + [origin_caveat(self.partner)]
        label["message_id"] = message_id
        return {**record, "label": label}

    def _accept(self, rec: InRecord, plan: TypePlan, mid: str, value: bytes, now_ms: int, result: BatchResult):
        emit = result.outputs.append
        emit(OutRecord(plan.origin_topic, mid.encode(), value, None))
        emit(OutRecord(SEEN_TOPIC, seen_key(self.partner, mid).encode(), json.dumps(
            {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset, "accepted_at": now_ms},
            separators=(",", ":")).encode(), None))
        emit(self._audit(rec, plan.type_name, mid, "ACCEPT", "accepted",
                         f"{plan.type_name}: every check passed; relabelled {origin_originator(self.partner)}",
                         plan.origin_topic, now_ms))
        result.offsets[(rec.topic, rec.partition)] = rec.offset + 1
        result.accepted_ids.append(mid)
        s = result.stats
        s.records += 1
        s.accepted += 1
        s.counts[(plan.type_name, "ACCEPT", "accepted")] += 1
        result.decisions.append((rec.topic, rec.partition, rec.offset, mid, "ACCEPT", "accepted"))

    def _quarantine(self, rec: InRecord, plan: TypePlan | None, check: str, reason: str, now_ms: int,
                    result: BatchResult, message_id: str | None) -> None:
        reason = reason[:500]
        tail: Headers = [("liaison.quarantine.check", check.encode()), ("liaison.quarantine.reason", reason.encode()),
                         ("liaison.quarantine.source.topic", rec.topic.encode()),
                         ("liaison.quarantine.source.partition", str(rec.partition).encode()),
                         ("liaison.quarantine.source.offset", str(rec.offset).encode()),
                         ("liaison.quarantine.guard", self.guard.encode())]
        result.outputs.append(OutRecord(self.quarantine_topic, rec.key, rec.value, list(rec.headers or []) + tail))
        type_name = plan.type_name if plan is not None else "?"
        result.outputs.append(self._audit(rec, type_name, message_id, "QUARANTINE", check, f"{check}: {reason}",
                                          self.quarantine_topic, now_ms))
        result.offsets[(rec.topic, rec.partition)] = rec.offset + 1
        s = result.stats
        s.records += 1
        s.quarantined += 1
        s.counts[(type_name, "QUARANTINE", check)] += 1
        result.decisions.append((rec.topic, rec.partition, rec.offset, message_id, "QUARANTINE", check))

    def _audit(self, rec: InRecord, type_name: str, mid: str | None, decision: str, check: str, reason: str,
               output_topic: str, now_ms: int) -> OutRecord:
        value = self.audit.encode({
            "input_topic": rec.topic, "input_partition": rec.partition, "input_offset": rec.offset,
            "partner": self.partner, "message_type": type_name, "message_id": mid, "decision": decision,
            "check": check, "reason": reason[:500], "output_topic": output_topic, "bytes": len(rec.value or b""),
            "decided_at": now_ms, "guard": self.guard})
        return OutRecord(INGRESS_AUDIT_TOPIC, f"{rec.topic}/{rec.partition}/{rec.offset}".encode(), value, None)

"""The forwarder's pipeline: a consumed batch in, everything to produce out. No Kafka client in here.

Read top to bottom; each step is one small unit with one interface:

    InRecord   ->  the compiled core        CompiledRoutes.route (consumers/forwarder/compiled.py): decode,
                                            validate and every partner's decision, bytes and envelope at once,
                                            for what the core takes; the rest goes on below (the reference)
               ->  decode once              InputDecoder.decode(topic, value) -> (type, record) | DecodeError
               ->  for every partner:       decide(type, record, policy)      (release, pure)
                     released view          envelope(type, decision, policy): key, headers, timestamp, due
                       due by now_ms        OutRecord to liaison.partner.<code>.<domain>.<type>   (RELEASE)
                       not yet due          OutRecord to liaison.hold (hold.hold_record)         (HELD)
                   audit                    OutRecord to liaison.audit.decisions: one per input, every partner's
                                            decision in it (DecisionAudit v4)
               or  undecodable / invalid,   dead letter (original bytes and headers + liaison.dlq.*)
                   a view that does not     and one audit, DEAD_LETTER for every partner (stage framing, schema, avro,
                   encode, or poison:       validation, encode; produce: the service could not produce its
                                            outputs and marked it poison, by topic/partition/offset)
               or  registry unavailable:    the partition stops here for this batch, like a hold pause:
                                            pauses[(topic, p)] = (offset, retry time); never a dead letter
    InRecord of liaison.hold, per partition in offset order:
               due by now_ms                the partner record (envelope only) and a RELEASED audit
               not yet due                  the partition stops here for this batch: pauses[(topic, p)] =
                                            (offset, due); its later records in the batch are skipped; its
                                            offset is committed up to this record, never past it
    BatchResult:   the outputs in produce order (with the input each came from), the next offset per
                   (topic, partition), the pauses, the stats

The service (:mod:`consumers.forwarder.service`) owns the clients and the transaction: it turns consumed
messages into InRecords, hands them in with the clock (``now_ms``), and produces what comes out. Partner
plans are built by :func:`build_plans` from compiled policies and an injected encoder factory (registry-backed
in the service, an in-memory registry in the unit tests), the same way at start and at every reload.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from consumers.shell.codec import AuditEncoder, DecodeError, InputDecoder, RegistryUnavailable
from consumers.forwarder.hold import HoldError, check_hold_bound, held, hold_record, released
from consumers.shell.records import Headers, InRecord, OutRecord, Poison, PoisonSet
from core.serde import Encoder
from core.topics import (AUDIT_TOPIC, COMPONENT_PREFIX, DEADLETTER_TOPIC, HOLD_TOPIC, MAX_HOLD_SECONDS,
                         PARTNER_PREFIX, recipient_topic)
from release import CompiledPolicy, decide, envelope
from release.envelope import Envelope

__all__ = ["BatchResult", "BatchStats", "EncoderFactory", "Headers", "InRecord", "OutRecord", "PartnerPlan",
           "Pipeline", "Poison", "PoisonSet", "build_plans"]

VERSION_HEADER = "liaison.policy.version"
#: A release due further ahead than this is withheld (rule ``hold-bound``): the hold topic would not keep it.
MAX_HOLD_MS = MAX_HOLD_SECONDS * 1000
#: A dead letter by reference keeps the original headers when they are no larger than this, else drops them.
REFERENCE_HEADERS_MAX = 65536


# ---------------------------------------------------------------------------------------------- results


@dataclass
class BatchStats:
    records: int = 0        # input records (internal topics); hold-topic records are not inputs
    dead_lettered: int = 0
    #: (partner, type, decision) -> n; type "?" for dead letters. Decisions: RELEASE, WITHHOLD, DEAD_LETTER,
    #: HELD (an input's release written to the hold topic) and RELEASED (a held record released when due).
    counts: Counter = field(default_factory=Counter)
    hold_dead_lettered: int = 0  # hold-topic records without the forwarder's headers (never written by it)
    hold_skipped: int = 0  # hold-topic records another forwarder group holds
    stages: Counter = field(default_factory=Counter)  # dead letters (inputs and hold records) per stage

    def add(self, other: BatchStats) -> None:
        self.records += other.records
        self.dead_lettered += other.dead_lettered
        self.counts.update(other.counts)
        self.hold_dead_lettered += other.hold_dead_lettered
        self.hold_skipped += other.hold_skipped
        self.stages.update(other.stages)

    def _sum(self, decision: str) -> int:
        return sum(n for (_p, _t, d), n in self.counts.items() if d == decision)

    @property
    def held(self) -> int:
        return self._sum("HELD")

    @property
    def released_from_hold(self) -> int:
        return self._sum("RELEASED")

    def per_partner(self) -> dict[str, dict[str, int]]:
        """Partner -> released (RELEASE + RELEASED), withheld, held (HELD), released_from_hold (RELEASED),
        dead_lettered. Over a run: released + withheld + (held - released_from_hold) = input - dead-lettered."""
        out: dict[str, dict[str, int]] = {}
        for (code, _type, decision), n in self.counts.items():
            row = out.setdefault(code, {"released": 0, "withheld": 0, "held": 0, "released_from_hold": 0,
                                        "dead_lettered": 0})
            if decision in ("RELEASE", "RELEASED"):
                row["released"] += n
            if decision == "RELEASED":
                row["released_from_hold"] += n
            elif decision == "HELD":
                row["held"] += n
            elif decision == "WITHHOLD":
                row["withheld"] += n
            elif decision == "DEAD_LETTER":
                row["dead_lettered"] += n
        return out


@dataclass
class BatchResult:
    """What one batch comes to: produce ``outputs`` in order, then commit ``offsets`` with them, then pause each
    partition of ``pauses`` at its offset until its time: a hold partition until its first record not yet due
    is due, an internal one until the registry is asked again (``registry_error`` says why it was not)."""

    outputs: list[OutRecord] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> next offset
    #: (topic, partition) -> (offset of its first record not done, when to take it again, ms)
    pauses: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    stats: BatchStats = field(default_factory=BatchStats)
    registry_error: str | None = None
    #: outputs[_starts[i]:_starts[i+1]] come from the consumed record _coords[i] (topic, partition, offset)
    _starts: list[int] = field(default_factory=list, repr=False)
    _coords: list[tuple[str, int, int]] = field(default_factory=list, repr=False)

    def source_of(self, index: int) -> tuple[str, int, int]:
        """The consumed record (topic, partition, offset) that output ``index`` comes from."""
        return self._coords[bisect_right(self._starts, index) - 1]

    @property
    def registry_paused(self) -> dict[tuple[str, int], tuple[int, int]]:
        return {tp: v for tp, v in self.pauses.items() if tp[0] != HOLD_TOPIC}

    @property
    def hold_paused(self) -> dict[tuple[str, int], tuple[int, int]]:
        return {tp: v for tp, v in self.pauses.items() if tp[0] == HOLD_TOPIC}

    @property
    def views(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic.startswith((PARTNER_PREFIX, COMPONENT_PREFIX))]

    @property
    def audits(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == AUDIT_TOPIC]

    @property
    def dead_letters(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == DEADLETTER_TOPIC]

    @property
    def holds(self) -> list[OutRecord]:
        return [o for o in self.outputs if o.topic == HOLD_TOPIC]


# ---------------------------------------------------------------------------------------------- plans


@dataclass
class PartnerPlan:
    """One recipient's compiled policy (a partner or a component), its feed topic and the encoder of its derived
    schema per source (a type of ours, or "<PARTNER>/<Type>")."""

    policy: CompiledPolicy
    topics: dict[str, str]
    encoders: dict[str, Encoder]
    version_header: tuple[str, bytes]


#: (partner topic, derived schema) -> the Encoder of that schema as registered for the topic
EncoderFactory = Callable[[str, dict], Encoder]


def build_plans(policies: dict[str, CompiledPolicy], encoder_for: EncoderFactory) -> dict[str, PartnerPlan]:
    """Recipient -> plan, in recipient order; at start and at reload alike. A policy with a bucket longer than
    the forwarder holds a release (:data:`core.topics.MAX_HOLD_SECONDS`) is refused (PolicyError)."""
    check_hold_bound(policies)
    plans = {}
    for code, policy in sorted(policies.items()):
        topics, encoders = {}, {}
        for source in policy.sources:
            topic = recipient_topic(code, source)
            topics[source] = topic
            encoders[source] = encoder_for(topic, policy.derived_schema(source))
        plans[code] = PartnerPlan(policy, topics, encoders, (VERSION_HEADER, policy.version.encode()))
    return plans


# ---------------------------------------------------------------------------------------------- pipeline


class Pipeline:
    """InRecords -> BatchResult for the plans in force. ``forwarder`` names this instance in audits and
    dead letters (the service's transactional.id); ``group`` (its consumer group) marks the records it holds, and
    hold records of another group are skipped. Swap ``plans`` between batches to reload."""

    def __init__(self, decoder: InputDecoder, audit: AuditEncoder, plans: dict[str, PartnerPlan], forwarder: str,
                 group: str | None = None, compiled=None):
        self.decoder = decoder
        self.audit = audit
        self.plans = plans
        self.forwarder = forwarder
        self.group = group
        #: the compiled core's routes for ``plans`` (consumers.forwarder.compiled.CompiledRoutes), or None: the
        #: reference decides every record
        self.compiled = compiled
        self._type_headers: dict[str, tuple[str, bytes]] = {}  # source -> its ("type", name) header

    def process(self, batch: Iterable[InRecord], now_ms: int, poison: PoisonSet | None = None,
                paused: dict[str, dict[str, str]] | None = None) -> BatchResult:
        """``poison``: consumed records the service could not produce the outputs of (by topic, partition,
        offset): each is dead-lettered with its stage and error instead of being decided again. ``paused``:
        recipient -> category -> reason, the reciprocity pauses in force (from the ledger), for the whole batch."""
        result = BatchResult()
        partners = list(self.plans.items())  # one set of plans for the whole batch
        # the compiled core, when it was built for these plans (a reload swaps both)
        compiled = self.compiled if self.compiled is not None and self.compiled.plans is self.plans else None
        decode = self.decoder.decode
        offsets, stats, pauses = result.offsets, result.stats, result.pauses
        starts, coords, outputs = result._starts, result._coords, result.outputs
        for rec in batch:
            tp = (rec.topic, rec.partition)
            if tp in pauses:  # stopped for this batch (a hold record not yet due, the registry away)
                continue
            starts.append(len(outputs))
            coords.append((rec.topic, rec.partition, rec.offset))
            if rec.topic == HOLD_TOPIC:
                self._from_hold(rec, now_ms, result, poison)
                continue
            bad = poison.get((rec.topic, rec.partition, rec.offset)) if poison else None
            if bad is not None:
                offsets[tp] = rec.offset + 1
                stats.records += 1
                self._dead_letter(rec, DecodeError(bad.stage, bad.error), partners, now_ms, result, bad.by_reference)
                continue
            routed = compiled.route(rec.topic, rec.value, paused) if compiled is not None else None
            if routed is not None:
                offsets[tp] = rec.offset + 1
                stats.records += 1
                self._release_compiled(rec, routed[0], routed[1], routed[2], partners, now_ms, result)
                continue
            try:
                type_name, record = decode(rec.topic, rec.value)
            except DecodeError as e:
                offsets[tp] = rec.offset + 1
                stats.records += 1
                self._dead_letter(rec, e, partners, now_ms, result)
                continue
            except RegistryUnavailable as e:
                # no answer about its writer schema: the partition waits here (never past it), asked again later
                pauses[tp] = (rec.offset, now_ms + e.retry_ms)
                offsets.setdefault(tp, rec.offset)
                result.registry_error = str(e)
                continue
            offsets[tp] = rec.offset + 1
            stats.records += 1
            try:
                self._release(rec, type_name, record, partners, now_ms, result, paused)
            except _EncodeFailure as e:  # a released view its derived schema cannot encode: no partner gets it
                self._dead_letter(rec, DecodeError("encode", str(e)[:500]), partners, now_ms, result)
        return result

    def _release(self, rec: InRecord, type_name: str, record: dict, partners: list[tuple[str, PartnerPlan]],
                 now_ms: int, result: BatchResult, paused: dict[str, dict[str, str]] | None = None) -> None:
        """Every partner's decision on one decoded record (the reference: release.decide), then :meth:`_emit`."""
        decisions = []
        for code, plan in partners:
            d = decide(type_name, record, plan.policy, paused.get(code) if paused else None)
            value = env = None
            if d.released is not None:
                env = envelope(type_name, d, plan.policy)
                try:
                    value = plan.encoders[type_name].encode(d.released)
                except Exception as e:  # noqa: BLE001 - fastavro: the view does not fit its derived schema
                    raise _EncodeFailure(f"{code} view of {type_name} does not encode with its derived schema "
                                         f"({type(e).__name__}: {e})") from None
            decisions.append((code, plan, d.decision, d.rule, d.reason, value, env))
        self._emit(rec, type_name, str(record["label"]["message_id"]), decisions, now_ms, result)

    def _release_compiled(self, rec: InRecord, type_name: str, message_id: str, rows: list,
                          partners: list[tuple[str, PartnerPlan]], now_ms: int, result: BatchResult) -> None:
        """The same from the compiled core's rows (one per partner, in plan order), then :meth:`_emit`."""
        type_header = self._type_headers.get(type_name)
        if type_header is None:  # once per source
            type_header = self._type_headers[type_name] = ("type", type_name.rpartition("/")[2].encode())
        decisions = []
        append = decisions.append
        for (code, plan), (_code, decision, rule, reason, body, env) in zip(partners, rows, strict=True):
            if body is None:
                append((code, plan, decision, rule, reason, None, None))
                continue
            key, mid, timestamp_ms, due_ms = env
            headers = [plan.version_header, ("message_id", mid.encode()), type_header] if mid is not None else \
                [plan.version_header, type_header]
            append((code, plan, decision, rule, reason, plan.encoders[type_name].header + body,
                    Envelope(None if key is None else key.encode(), headers, timestamp_ms, due_ms)))
        self._emit(rec, type_name, message_id, decisions, now_ms, result)

    def _emit(self, rec: InRecord, type_name: str, message_id: str, decisions: list, now_ms: int,
              result: BatchResult) -> None:
        """Each partner's view (to the partner, or held), then the input's one audit with every partner's decision;
        ``decisions``: (code, plan, decision, rule, reason, framed value or None, envelope or None) per partner."""
        emit = result.outputs.append
        counts = result.stats.counts
        audited = []
        for code, plan, decision, rule, reason, value, env in decisions:
            out_topic, due, size = None, None, None
            if value is not None:
                out_topic = plan.topics[type_name]
                size = len(value)
                if env.due_ms is None or env.due_ms <= now_ms:
                    emit(OutRecord(out_topic, env.key, value, env.headers, env.timestamp_ms))
                elif env.due_ms - now_ms > MAX_HOLD_MS:
                    decision, rule, out_topic, size = "WITHHOLD", "hold-bound", None, None
                    reason = (f"{type_name}: due {_iso(env.due_ms)}, more than {MAX_HOLD_SECONDS} s ahead: longer "
                              f"than a release is held")
                else:
                    decision, due = "HELD", env.due_ms
                    emit(hold_record(env, value, out_topic, due, source=(rec.topic, rec.partition, rec.offset),
                                     message_id=message_id, type_name=type_name, partner=code, rule=rule,
                                     policy_version=plan.policy.version, group=self.group))
            counts[(code, type_name, decision)] += 1
            audited.append((code, decision, rule, reason, plan.policy.version, out_topic, due, size))
        emit(OutRecord(AUDIT_TOPIC, message_id.encode(), self.audit.encode(
            rec.topic, rec.partition, rec.offset, message_id, type_name, now_ms, self.forwarder, audited), None))

    def _from_hold(self, rec: InRecord, now_ms: int, result: BatchResult, poison: PoisonSet | None) -> None:
        """A hold-topic record, in its partition's offset order: released when due, else the partition stops."""
        tp = (rec.topic, rec.partition)
        bad = poison.get((rec.topic, rec.partition, rec.offset)) if poison else None
        try:
            h = held(rec.headers, rec.value)
        except HoldError as e:
            bad = Poison("hold", str(e))
        if bad is not None:  # not a record the forwarder wrote, or its release could not be produced
            result.offsets[tp] = rec.offset + 1
            result.stats.hold_dead_lettered += 1
            result.stats.stages[bad.stage] += 1
            result.outputs.append(self._dead_letter_record(rec, bad.stage, bad.error, bad.by_reference))
            return
        if self.group is not None and h.group is not None and h.group != self.group:
            result.offsets[tp] = rec.offset + 1  # another group's hold: that group releases it
            result.stats.hold_skipped += 1
            return
        if h.due_ms > now_ms:
            result.pauses[tp] = (rec.offset, h.due_ms)
            # commit the partition up to (not past) this record: the group's lag on the hold topic counts the
            # records waiting, where it would otherwise have no committed offset there at all
            result.offsets.setdefault(tp, rec.offset)
            return
        result.offsets[tp] = rec.offset + 1
        out = released(h)
        result.outputs.append(out)
        result.stats.counts[(h.partner, h.type_name, "RELEASED")] += 1
        result.outputs.append(OutRecord(AUDIT_TOPIC, h.message_id.encode(), self.audit.encode(
            h.source_topic, h.source_partition, h.source_offset, h.message_id, h.type_name, now_ms, self.forwarder,
            [(h.partner, "RELEASED", h.rule, f"{h.type_name}: released from {HOLD_TOPIC} by rule {h.rule}, its time "
              f"buckets ended", h.policy_version, h.topic, h.due_ms, len(out.value or b""))]), None))

    def _dead_letter(self, rec: InRecord, error: DecodeError, partners: list[tuple[str, PartnerPlan]],
                     now_ms: int, result: BatchResult, by_reference: bool = False) -> None:
        """The original bytes and headers to the dead-letter topic, and one audit: DEAD_LETTER for every partner."""
        topic, part, off = rec.topic, rec.partition, rec.offset
        result.outputs.append(self._dead_letter_record(rec, error.stage, str(error), by_reference))
        result.stats.dead_lettered += 1
        result.stats.stages[error.stage] += 1
        reason = f"{error.stage}: {error}"[:500]
        for code, _plan in partners:
            result.stats.counts[(code, "?", "DEAD_LETTER")] += 1
        result.outputs.append(OutRecord(AUDIT_TOPIC, f"{topic}/{part}/{off}".encode(), self.audit.encode(
            topic, part, off, None, None, now_ms, self.forwarder,
            [(code, "DEAD_LETTER", "dead-letter", reason, plan.policy.version, DEADLETTER_TOPIC, None, None)
             for code, plan in partners]), None))

    def _dead_letter_record(self, rec: InRecord, stage: str, error: str, by_reference: bool) -> OutRecord:
        """The dead letter of ``rec``: its key, value and headers, then ``liaison.dlq.*``. By reference (its
        dead letter with the bytes was refused): no value, the value's SHA-256 and size instead, the original
        headers only when small."""
        tail = [("liaison.dlq.error", error.encode()), ("liaison.dlq.stage", stage.encode()),
                ("liaison.dlq.source.topic", rec.topic.encode()),
                ("liaison.dlq.source.partition", str(rec.partition).encode()),
                ("liaison.dlq.source.offset", str(rec.offset).encode()), ("liaison.dlq.forwarder", self.forwarder.encode())]
        headers = list(rec.headers or [])
        if not by_reference:
            return OutRecord(DEADLETTER_TOPIC, rec.key, rec.value, headers + tail)
        size = sum(len(k) + len(v or b"") for k, v in headers)
        if size > REFERENCE_HEADERS_MAX:
            headers = [("liaison.dlq.headers.dropped", str(size).encode())]
        value = rec.value or b""
        key = rec.key if rec.key is None or len(rec.key) <= 1024 else hashlib.sha256(rec.key).hexdigest().encode()
        return OutRecord(DEADLETTER_TOPIC, key, None, headers + tail + [
            ("liaison.dlq.value.sha256", hashlib.sha256(value).hexdigest().encode()),
            ("liaison.dlq.value.bytes", str(len(value)).encode()), ("liaison.dlq.by_reference", b"true")])


class _EncodeFailure(Exception):
    """A released view that does not encode with its partner's derived schema."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

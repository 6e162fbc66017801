"""Held releases: a released record whose envelope is not yet due waits in the hold topic. Pure, no Kafka.

A release whose ``due_ms`` (the end of its time buckets, :func:`release.envelope`) lies ahead goes to
:data:`core.topics.HOLD_TOPIC` instead of the partner topic, in the input's transaction:

    key      ``<partner> <partner topic>``: one partner's long buckets never queue behind another's
             (records of one key stay in one partition, in order)
    value    the encoded partner view, as it will be released
    headers  the envelope's headers (:data:`release.HEADERS`, in order), then the internal ``liaison.hold.*``
             headers: target topic, due time, record timestamp, record key, the consumer group that holds it,
             and the audit context (input topic/partition/offset, message id, type, partner, rule, policy version)

When it falls due the forwarder releases it (:func:`released`): to the target topic with the envelope's key,
headers and timestamp only; every ``liaison.hold.*`` header stays behind (an allow-list of
:data:`release.HEADERS`, not a strip-list).
"""

from __future__ import annotations

from dataclasses import dataclass

from consumers.shell.records import OutRecord
from core.topics import HOLD_TOPIC, MAX_HOLD_SECONDS, is_partner_code, recipient_topic, split_source
from schemas import UnknownMessageType
from release import HEADERS, CompiledPolicy, Envelope, PolicyError

__all__ = ["Held", "HoldError", "check_hold_bound", "held", "hold_key", "hold_record", "released"]

PREFIX = "liaison.hold."
_ENVELOPE = frozenset(HEADERS)
_REQUIRED = ("topic", "due", "source.topic", "source.partition", "source.offset", "message_id", "type", "partner",
             "rule", "policy_version")


class HoldError(ValueError):
    """A hold-topic record without the headers the forwarder writes (it cannot be released)."""


@dataclass(frozen=True, slots=True)
class Held:
    """A record read back from the hold topic: what to release, when, and its audit context."""

    topic: str
    due_ms: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]  # the envelope's, in order
    group: str | None  # the forwarder group that holds it (None: any)
    source_topic: str
    source_partition: int
    source_offset: int
    message_id: str
    type_name: str
    partner: str
    rule: str
    policy_version: str


def hold_key(partner: str, topic: str) -> bytes:
    return f"{partner} {topic}".encode()


def hold_record(env: Envelope, value: bytes, topic: str, due_ms: int, *, source: tuple[str, int, int],
                message_id: str, type_name: str, partner: str, rule: str, policy_version: str,
                group: str | None = None) -> OutRecord:
    """The hold-topic record of a release of ``value`` to ``topic`` with envelope ``env``, due at ``due_ms``."""
    src_topic, src_partition, src_offset = source
    headers = list(env.headers) + [
        (PREFIX + "topic", topic.encode()), (PREFIX + "due", str(due_ms).encode())]
    if env.timestamp_ms is not None:
        headers.append((PREFIX + "timestamp", str(env.timestamp_ms).encode()))
    if env.key is not None:
        headers.append((PREFIX + "key", env.key))
    if group is not None:
        headers.append((PREFIX + "group", group.encode()))
    headers += [(PREFIX + "source.topic", src_topic.encode()), (PREFIX + "source.partition", str(src_partition).encode()),
                (PREFIX + "source.offset", str(src_offset).encode()), (PREFIX + "message_id", message_id.encode()),
                (PREFIX + "type", type_name.encode()), (PREFIX + "partner", partner.encode()),
                (PREFIX + "rule", rule.encode()), (PREFIX + "policy_version", policy_version.encode())]
    # timestamp None: stamped when written, so the hold topic's retention counts from the hold
    return OutRecord(HOLD_TOPIC, hold_key(partner, topic), value, headers)


def held(headers: list[tuple[str, bytes | None]] | None, value: bytes | None) -> Held:
    """A hold-topic record's headers and value -> :class:`Held`; :class:`HoldError` when headers are missing."""
    internal: dict[str, bytes] = {}
    envelope_headers = []
    for name, v in headers or []:
        if name in _ENVELOPE and v is not None:
            envelope_headers.append((name, v))
        elif name.startswith(PREFIX) and v is not None:
            internal[name.removeprefix(PREFIX)] = v
    missing = [h for h in _REQUIRED if h not in internal]
    if missing:
        raise HoldError(f"hold record without header(s) {', '.join(PREFIX + h for h in missing)}")
    try:
        text = {k: v.decode() for k, v in internal.items() if k != "key"}
        h = Held(text["topic"], _int(text, "due", _MAX_MS), _int(text, "timestamp", _MAX_MS) if "timestamp" in text
                 else None, internal.get("key"), value, envelope_headers, text.get("group"), text["source.topic"],
                 _int(text, "source.partition", 2**31 - 1), _int(text, "source.offset", 2**63 - 1),
                 text["message_id"], text["type"], text["partner"], text["rule"], text["policy_version"])
    except (UnicodeDecodeError, ValueError) as e:
        raise HoldError(f"hold record with a malformed header: {e}"[:300]) from None
    # released only where a release of its source (type, or partner/type) to its recipient goes (the header alone
    # is not trusted)
    try:
        target = recipient_topic(h.partner, h.type_name)
    except UnknownMessageType:
        raise HoldError(f"hold record of an unknown type {h.type_name[:64]!r}") from None
    origin = split_source(h.type_name)[0]
    if (h.topic != target or not h.partner.isalpha() or len(h.partner) > 16
            or (origin is not None and not is_partner_code(origin))):
        raise HoldError(f"hold record for {h.partner[:8]!r} names topic {h.topic[:120]!r}, not its partner topic")
    return h


#: latest time a hold header may carry (9999-12-31T23:59:59.999Z: every reader's datetime can hold it)
_MAX_MS = 253_402_300_799_999


def _int(text: dict[str, str], name: str, high: int) -> int:
    n = int(text[name])
    if not 0 <= n <= high:
        raise ValueError(f"{PREFIX}{name} out of range")
    return n


def released(h: Held) -> OutRecord:
    """The partner record of a held release: target topic, envelope key, headers and timestamp only."""
    return OutRecord(h.topic, h.key, h.value, list(h.headers), h.timestamp_ms)


def check_hold_bound(policies: dict[str, CompiledPolicy], bound_s: int = MAX_HOLD_SECONDS) -> None:
    """Refuse a policy that buckets a released time coarser than ``bound_s``: its releases would be held
    longer than the hold topic's retention is sized for (:data:`core.topics.MAX_HOLD_SECONDS`)."""
    for code, policy in sorted(policies.items()):
        facts = policy.facts
        problems = []
        for type_name, rules in (facts.types.items() if facts is not None else ()):
            for rule in rules:
                for r in rule.bucketed():
                    if r.precision and r.precision > bound_s:
                        problems.append((facts.line(r.loc), ".".join(str(x) for x in r.loc),
                                         f"bucket of {r.precision:g} s is longer than the forwarder holds a release "
                                         f"({bound_s} s, core.topics.MAX_HOLD_SECONDS: the hold topic keeps 7 days)"))
        if problems:
            raise PolicyError(facts.shown, sorted(problems, key=lambda p: p[0] or 0))

"""Every topic name of the bus, in one module: the internal topic of each message type, the partner feeds,
the audit, dead-letter and hold topics. Declarations (partitions, retention) live in deploy/topics.yaml."""

from __future__ import annotations

from schemas import MESSAGE_TYPES, UnknownMessageType

#: Prefix of the internal (unfiltered) topics producers publish to (no trailing dot).
TOPIC_PREFIX = "liaison.internal"
INTERNAL_PREFIX = TOPIC_PREFIX + "."
#: Prefix of the partner feeds: liaison.partner.<code>.<domain>.<type>.
PARTNER_PREFIX = "liaison.partner."
#: One audit record per input, every recipient's decision in it (DecisionAudit v4).
AUDIT_TOPIC = "liaison.audit.decisions"
#: Records that cannot be decoded or validated, with the reason in headers.
DEADLETTER_TOPIC = "liaison.deadletter"
#: Released records held until their time buckets end (the forwarder writes and reads it; internal only).
HOLD_TOPIC = "liaison.hold"
#: The deconfliction service's changelog of its picture and open alerts (compacted; read back at start).
DECONFLICTION_STATE_TOPIC = "liaison.deconfliction.state"
#: The longest time bucket a policy may use on a held release, in seconds: 2 days. The hold topic keeps its
#: records 7 days (deploy/topics.yaml), so a held record outlives its bucket by 5 days of forwarder outage.
MAX_HOLD_SECONDS = 2 * 86_400

_TOPICS: dict[str, str] = {
    "AirMissionPlan": f"{TOPIC_PREFIX}.air.mission-plan",
    "AirTrack": f"{TOPIC_PREFIX}.air.track",
    "MaritimeTrack": f"{TOPIC_PREFIX}.naval.track",
    "StrikeReport": f"{TOPIC_PREFIX}.air.strike-report",
    "GroupLocationReport": f"{TOPIC_PREFIX}.intel.group-location",
    "ForeignFighterReport": f"{TOPIC_PREFIX}.intel.foreign-fighter",
    "LogisticsObservation": f"{TOPIC_PREFIX}.intel.logistics",
    # A domain of its own: the deconfliction service (principal `deconflict`) writes it, and producer-air's prefix
    # liaison.internal.air. does not cover it (an air producer cannot forge an alert).
    "DeconflictionAlert": f"{TOPIC_PREFIX}.deconfliction.alert",
}
_TYPES_BY_TOPIC: dict[str, str] = {topic: name for name, topic in _TOPICS.items()}
assert set(_TOPICS) == set(MESSAGE_TYPES)

#: The internal topics, in the order of MESSAGE_TYPES.
INTERNAL_TOPICS: tuple[str, ...] = tuple(_TOPICS[t] for t in MESSAGE_TYPES)


def topic_for(name: str) -> str:
    """Internal topic of message type ``name``: ``liaison.internal.<domain>.<type>``."""
    try:
        return _TOPICS[name]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {name!r}; known: {', '.join(MESSAGE_TYPES)}") from None


def type_for_topic(topic: str) -> str:
    """Message type (record name) carried by internal topic ``topic``."""
    try:
        return _TYPES_BY_TOPIC[topic]
    except KeyError:
        raise UnknownMessageType(
            f"no message type for topic {topic!r}; known: {', '.join(_TYPES_BY_TOPIC)}"
        ) from None


def partner_topic(partner: str, internal_topic: str) -> str:
    """The partner feed of an internal topic: liaison.partner.<code lower>.<domain>.<type>."""
    return f"{PARTNER_PREFIX}{partner.lower()}.{internal_topic.removeprefix(INTERNAL_PREFIX)}"


def partner_prefix(partner: str) -> str:
    """Prefix of every topic of one partner's feed."""
    return f"{PARTNER_PREFIX}{partner.lower()}."


def internal_topic_of_partner_topic(topic: str) -> str:
    """liaison.partner.<code>.<domain>.<type> -> liaison.internal.<domain>.<type>."""
    return INTERNAL_PREFIX + topic.split(".", 3)[3]


# --------------------------------------------------------------------------------------------------- give and take
#
# A *source* names where a record to decide comes from: our own records by message type ("AirTrack", read from the
# internal topic of that type), a partner's by "<CODE>/<Type>" ("RUS/AirTrack", read from the partner-origin topic
# the ingress guard writes). A *recipient* is a partner (ISO alpha-3 code, upper case: "RUS") or one of our
# components (lower case: "naval", "air", "intel"); each has one policy and its own feed topics.

#: Where a partner publishes to us: liaison.inbound.<code>.<domain>.<type> (the partner's principal WRITEs it).
INBOUND_PREFIX = "liaison.inbound."
#: What the ingress guard accepted, relabelled partner-origin: liaison.origin.<code>.<domain>.<type>.
ORIGIN_PREFIX = "liaison.origin."
#: What the ingress guard refused, per partner: liaison.quarantine.<code> (original bytes, liaison.quarantine.* headers).
QUARANTINE_PREFIX = "liaison.quarantine."
#: Our components' feeds: liaison.component.<name>.<domain>.<type> (and .origin.<code>.<domain>.<type>).
COMPONENT_PREFIX = "liaison.component."
#: One audit record per ingress decision (ACCEPT or QUARANTINE).
INGRESS_AUDIT_TOPIC = "liaison.audit.ingress"
#: Message ids the ingress guard has seen, per partner (compacted, key "<CODE>/<message_id>").
SEEN_TOPIC = "liaison.ingress.seen"
#: The reciprocity ledger's changelog (compacted, key "<CODE>/<category>/<direction>/<hour start ms>").
LEDGER_TOPIC = "liaison.ledger"

#: Our components, the recipients inside our side.
COMPONENTS: tuple[str, ...] = ("naval", "air", "intel")


def is_partner_code(code: str) -> bool:
    """A partner code: three upper-case letters (ISO 3166-1 alpha-3)."""
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def _tail(internal_topic: str) -> str:
    return internal_topic.removeprefix(INTERNAL_PREFIX)


def inbound_topic(partner: str, type_name: str) -> str:
    """liaison.inbound.<code>.<domain>.<type>: where ``partner`` publishes its records of ``type_name``."""
    return f"{INBOUND_PREFIX}{partner.lower()}.{_tail(topic_for(type_name))}"


def inbound_prefix(partner: str) -> str:
    return f"{INBOUND_PREFIX}{partner.lower()}."


def origin_topic(partner: str, type_name: str) -> str:
    """liaison.origin.<code>.<domain>.<type>: the partner's records the ingress guard accepted."""
    return f"{ORIGIN_PREFIX}{partner.lower()}.{_tail(topic_for(type_name))}"


def quarantine_topic(partner: str) -> str:
    return f"{QUARANTINE_PREFIX}{partner.lower()}"


def origin_source(partner: str, type_name: str) -> str:
    """The source key of a partner's records of one type: "RUS/AirTrack"."""
    return f"{partner.upper()}/{type_name}"


def split_source(source: str) -> tuple[str | None, str]:
    """(origin partner or None for our own records, message type) of a source key."""
    origin, sep, type_name = source.rpartition("/")
    return (origin or None) if sep else None, type_name


def base_type(source: str) -> str:
    """The message type of a source key ("RUS/AirTrack" -> "AirTrack")."""
    return source.rpartition("/")[2]


def source_topic(source: str) -> str:
    """The topic the records of ``source`` are read from: internal, or partner-origin."""
    origin, type_name = split_source(source)
    return topic_for(type_name) if origin is None else origin_topic(origin, type_name)


def source_of_topic(topic: str) -> str:
    """Source key of an internal or partner-origin topic (raises UnknownMessageType otherwise)."""
    if topic.startswith(ORIGIN_PREFIX):
        code, _, rest = topic.removeprefix(ORIGIN_PREFIX).partition(".")
        return origin_source(code, type_for_topic(INTERNAL_PREFIX + rest))
    return type_for_topic(topic)


def type_of_inbound_topic(topic: str) -> tuple[str, str]:
    """(partner code, message type) of liaison.inbound.<code>.<domain>.<type>."""
    if not topic.startswith(INBOUND_PREFIX):
        raise UnknownMessageType(f"{topic!r} is not an inbound topic ({INBOUND_PREFIX}<code>.<domain>.<type>)")
    code, _, rest = topic.removeprefix(INBOUND_PREFIX).partition(".")
    return code.upper(), type_for_topic(INTERNAL_PREFIX + rest)


def recipient_prefix(recipient: str) -> str:
    """Prefix of every feed topic of a recipient: liaison.partner.<code>. or liaison.component.<name>."""
    if is_partner_code(recipient):
        return partner_prefix(recipient)
    return f"{COMPONENT_PREFIX}{recipient.lower()}."


def recipient_topic(recipient: str, source: str) -> str:
    """The feed topic of ``recipient`` for records of ``source``: liaison.partner.rus.air.track,
    liaison.component.naval.air.track, liaison.component.naval.origin.rus.air.track (a partner's record),
    liaison.partner.usa.origin.rus.air.strike-report (third party: only when both policies allow it)."""
    origin, type_name = split_source(source)
    middle = "" if origin is None else f"origin.{origin.lower()}."
    return f"{recipient_prefix(recipient)}{middle}{_tail(topic_for(type_name))}"


def source_of_recipient_topic(topic: str) -> tuple[str, str]:
    """(recipient, source) of a feed topic (the inverse of :func:`recipient_topic`)."""
    if topic.startswith(PARTNER_PREFIX):
        code, _, rest = topic.removeprefix(PARTNER_PREFIX).partition(".")
        recipient = code.upper()
    elif topic.startswith(COMPONENT_PREFIX):
        recipient, _, rest = topic.removeprefix(COMPONENT_PREFIX).partition(".")
    else:
        raise UnknownMessageType(f"{topic!r} is not a feed topic")
    if rest.startswith("origin."):
        code, _, rest = rest.removeprefix("origin.").partition(".")
        return recipient, origin_source(code, type_for_topic(INTERNAL_PREFIX + rest))
    return recipient, type_for_topic(INTERNAL_PREFIX + rest)

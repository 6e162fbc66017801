"""Every topic name of the bus, in one module: the internal topic of each message type, the partner feeds,
the audit, dead-letter and hold topics. Declarations (partitions, retention) live in deploy/topics.yaml."""

from __future__ import annotations

from schemas import MESSAGE_TYPES, UnknownMessageType

#: Prefix of the internal (unfiltered) topics producers publish to (no trailing dot).
TOPIC_PREFIX = "liaison.internal"
INTERNAL_PREFIX = TOPIC_PREFIX + "."
#: Prefix of the partner feeds: liaison.partner.<code>.<domain>.<type>.
PARTNER_PREFIX = "liaison.partner."
#: One audit record per (input, partner) decision.
AUDIT_TOPIC = "liaison.audit.decisions"
#: Records that cannot be decoded or validated, with the reason in headers.
DEADLETTER_TOPIC = "liaison.deadletter"
#: Released records held until their time buckets end (the forwarder writes and reads it; internal only).
HOLD_TOPIC = "liaison.hold"
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

"""The guard's plan of one partner, from its policy: the configuration of the checks and one TypePlan per inbound
topic. No Kafka; the encoder factory of the partner-origin schemas is handed in (registry-backed in the service,
in memory in the unit tests)."""

from __future__ import annotations

from collections.abc import Callable

from consumers.ingress.checks import CHECKS, MAX_VALUE_BYTES, GuardConfig, TypePlan
from consumers.ingress.registry import parse
from consumers.ingress.validation import validator_for
from core import serde
from core.topics import inbound_topic, origin_topic
from release.exchange import exchanged_types, inbound_schema, origin_schema
from release.model import CompiledPolicy
from release.spec import Inbound

__all__ = ["EncoderFactory", "guard_config", "type_plans"]

#: (partner-origin topic, its schema) -> the Encoder of that schema as registered for the topic
EncoderFactory = Callable[[str, dict], serde.Encoder]


def guard_config(policy: CompiledPolicy, checks: tuple[str, ...] = CHECKS,
                 max_bytes: int = MAX_VALUE_BYTES) -> GuardConfig:
    """The checks' configuration for a partner: its policy's ``inbound:`` (defaults when the policy has none)."""
    if not policy.is_partner:
        raise ValueError(f"{policy.partner} is a component: it sends nothing through the ingress guard")
    inbound = getattr(policy.spec, "inbound", None) or Inbound()
    return GuardConfig(partner=policy.partner, inbound=inbound, max_bytes=max_bytes, checks=tuple(checks))


def type_plans(policy: CompiledPolicy, origin_encoder_for: EncoderFactory) -> dict[str, TypePlan]:
    """Inbound topic -> TypePlan, for every type the partner sends (those its policy releases to it)."""
    code = policy.partner
    plans = {}
    for type_name in exchanged_types(policy):
        schema = inbound_schema(policy, type_name)
        origin = origin_schema(policy, type_name)
        topic, out_topic = inbound_topic(code, type_name), origin_topic(code, type_name)
        plans[topic] = TypePlan(
            type_name=type_name, topic=topic, subject=serde.value_subject(topic), reader=parse(schema),
            validate=validator_for(type_name, schema), origin_topic=out_topic,
            origin_encoder=origin_encoder_for(out_topic, origin),
            has_time=any(f["name"] == "time" for f in schema["fields"]), schema=schema, origin_schema=origin)
    return plans

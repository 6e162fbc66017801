"""The ingress guard's compiled path (issue 13): the compiled core's accept path per inbound topic. No Kafka.

    a TypePlan + the guard's config  ->  liaison_compiled.Guard: the inbound schema in force, the partner-origin
                                         schema, the partial model's validation rules (schemas/models/rules.py
                                         with the inbound schema), the label, originator and time checks' limits
    an inbound record                ->  accept(): (message id, partner-origin value) when the record is within
                                         the size bound, well framed, written with a version of the topic's
                                         subject whose shape is the reader's, passes every check the core runs,
                                         and its message id was not seen; None when it is the reference's (the
                                         checks of consumers/ingress/checks.py, which name the check and the
                                         reason of a quarantine), so both paths give the same outputs

The reference stays the specification: ``tests/unit/test_ingress_compiled.py`` runs the guard's pipeline both
ways on the same batches and compares every output record.
"""

from __future__ import annotations

import json
from collections.abc import Container
from typing import Any

import liaison_compiled

from consumers.ingress.checks import CHECKS, GuardConfig, TypePlan
from consumers.ingress.registry import plain_uuids
from consumers.shell.codec import _shape
from core import serde
from release.spec import CLASSIFICATIONS
from schemas.agreement import OWN_NATION
from schemas.models.fields import MAX_ITEMS
from schemas.models.rules import UnknownRule, validation_rules

__all__ = ["ENGINES", "GuardCore"]

#: --engine: the compiled core, or the Python reference for every record
ENGINES = ("compiled", "reference")


class GuardCore:
    """The compiled accept path of one partner's inbound topics (those the core takes: ``refused`` says why not)."""

    def __init__(self, config: GuardConfig, plans: dict[str, TypePlan], schemas):
        self.config, self.schemas = config, schemas
        self.cores: dict[str, Any] = {}
        self.shapes: dict[str, str] = {}
        self.refused: dict[str, str] = {}
        self._same: dict[tuple[str, int], bool] = {}
        self.accepted = 0    # records the core accepted
        self.fallbacks = 0   # records handed to the reference
        if tuple(config.checks) != CHECKS:
            self.refused = {t: "a check list other than the default: the reference runs it" for t in plans}
            return
        level = CLASSIFICATIONS.index(config.inbound.classification_ceiling)
        for topic, plan in plans.items():
            try:
                rules = validation_rules(plan.type_name, plan.schema)
                self.cores[topic] = liaison_compiled.Guard(
                    json.dumps(plan.schema), json.dumps(plan.origin_schema), json.dumps(rules), config.partner,
                    list(CLASSIFICATIONS[:level + 1]), OWN_NATION, MAX_ITEMS["caveats"] - 1,
                    config.inbound.max_age_s * 1000, config.inbound.max_future_s * 1000, plan.has_time)
                self.shapes[topic] = _shape(plain_uuids(plan.schema))  # as the writers are parsed
            except (UnknownRule, ValueError) as e:
                self.refused[topic] = str(e)

    def accept(self, rec, plan: TypePlan, now_ms: int, seen: Container[str], batch_ids: Container[str]
               ) -> tuple[str, bytes] | None:
        core = self.cores.get(rec.topic)
        got = None
        if core is not None and rec.value is not None and len(rec.value) <= self.config.max_bytes:
            try:
                schema_id, body = serde.unframe(rec.value)
                if self._reader_shaped(plan, rec.topic, schema_id):
                    got = core.accept(bytes(body), now_ms)
            except Exception:  # noqa: BLE001 - framing, a refused or unknown id, the registry away: the reference's
                got = None
        if got is None or got[0] in seen or got[0] in batch_ids:
            self.fallbacks += 1
            return None
        self.accepted += 1
        return got[0], plan.origin_encoder.header + got[1]

    def _reader_shaped(self, plan: TypePlan, topic: str, schema_id: int) -> bool:
        key = (plan.subject, schema_id)
        same = self._same.get(key)
        if same is None:
            writer = self.schemas.writer(plan.subject, schema_id)  # SchemaRefused / RegistryUnavailable: raised
            same = self._same[key] = _shape(writer) == self.shapes[topic]
        return same

"""The forwarder's compiled path (issue 13): the compiled core's routers for the plans in force. No Kafka.

    plans (recipient -> PartnerPlan)  ->  for every source (our types, the partners' origin types):
                                          a liaison_compiled.Router of every recipient, in plan order:
                                          release.program's program per recipient, its derived schema, its
                                          pseudonymisation key, and (our types) the models' validation rules
    an input record                   ->  route(): (type, message_id, one row per recipient) when the core can
                                          take it; None when it is the reference's (a writer schema other than
                                          the reader in force, an invalid record, a release that does not
                                          encode: the reference writes the dead letter and its reason), so
                                          both paths give the same outputs

The reference (``release.decide``) stays the specification: ``tests/unit/test_forwarder_compiled.py`` runs the
pipeline both ways on the same batches and compares every output record.
"""

from __future__ import annotations

import json
from typing import Any

import liaison_compiled

import schemas
from consumers.shell.codec import InputDecoder, audit_schema
from release import SecretStore
from release.exchange import origin_schemas
from release.program import NotCompilable, program_of
from schemas.models.rules import validation_rules

__all__ = ["CompiledRoutes", "ENGINES", "compiled_audit"]

#: --engine: the compiled core, or the Python reference for every record
ENGINES = ("compiled", "reference")


def compiled_audit(audit):
    """The compiled core's DecisionAudit encoder for the same registered schema as ``audit`` (the Python
    AuditEncoder, the reference): the same call, the same bytes (tests/unit/test_compiled_audit.py)."""
    return liaison_compiled.AuditEncoder(json.dumps(audit_schema()), audit.schema_id)


class CompiledRoutes:
    """Routers for ``plans`` (the dict the pipeline holds: a reload builds new routes for the new plans)."""

    def __init__(self, plans: dict[str, Any], secrets: SecretStore, decoder: InputDecoder, validate: bool = True):
        self.plans = plans
        self.decoder = decoder
        self.refused: dict[str, str] = {}   # source -> why the core does not take it (the reference does)
        self.routed = 0      # records the core decided
        self.fallbacks = 0   # records handed to the reference
        self.routers: dict[str, Any] = {}
        inputs = {t: schemas.load_schema(t) for t in schemas.MESSAGE_TYPES}
        inputs.update(origin_schemas(p.policy for p in plans.values()))
        for source, schema in inputs.items():
            try:
                items = [self._recipient(code, plan, source, schema, secrets) for code, plan in plans.items()]
            except NotCompilable as e:
                self.refused[source] = str(e)
                continue
            # partner-origin records: the ingress guard validated them (and validate=False: no validation at all)
            rules = None if "/" in source or not validate else json.dumps(validation_rules(source))
            self.routers[source] = liaison_compiled.Router(json.dumps(schema), items, rules)

    @staticmethod
    def _recipient(code: str, plan, source: str, schema: dict, secrets: SecretStore) -> tuple:
        policy = plan.policy
        derived = policy.derived_schema(source) if source in policy.plans else None
        key = secrets.get(code) if policy.pseudonymises and policy.has_key else None
        return (code, json.dumps(program_of(policy, source, schema)), None if derived is None else json.dumps(derived),
                key)

    def route(self, topic: str, value: bytes | None, paused: dict | None) -> tuple[str, str, list] | None:
        """(source, message_id, rows) of one input record, or None for the reference to do it."""
        found = self.decoder.compiled_source(topic, value)
        router = None if found is None else self.routers.get(found[0])
        routed = None
        if router is not None:
            try:
                routed = router.route(bytes(found[1]), paused)
            except ValueError:   # does not decode, or a release does not encode: the reference says how
                routed = None
        if routed is None:
            self.fallbacks += 1
            return None
        self.routed += 1
        return found[0], routed[0], routed[1]

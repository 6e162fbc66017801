"""Partner plans from a policy folder, the same way at start and at every reload (SIGHUP). No Kafka.

    policy folder  ->  a pseudonymisation key for every partner that has none yet (a partner added by a reload
                       is served at once)
                   ->  load_policies (PolicyError: file, line, field)
                   ->  for every partner topic, its derived schema checked against its subject's registered
                       versions (the registry judges; :func:`schemas.compat.explain` names the field):
                       incompatible -> :class:`IncompatibleSchema` (the forwarder does not start; a reload is
                       refused), then registered (BACKWARD_TRANSITIVE) and its Encoder made
                   ->  build_plans

With the registry away, a schema this instance registered before (same subject, same text, in its
:class:`~consumers.shell.schema_cache.SchemaCache`) is used from the cache; one it never registered cannot
be: :class:`~consumers.shell.codec.RegistryUnavailable` names it (the start, or the reload, waits for the
registry).
"""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers.shell.codec import AuditEncoder, RegistryUnavailable, audit_schema
from consumers.forwarder.pipeline import PartnerPlan, build_plans
from consumers.shell.schema_cache import SchemaCache, canonical
from core import serde
from core.topics import AUDIT_TOPIC
from release import SecretStore, load_policies
from schemas.compat import explain

__all__ = ["IncompatibleSchema", "PlanSource", "ensure_partner_keys"]

LEVEL = "BACKWARD_TRANSITIVE"


class IncompatibleSchema(ValueError):
    """A derived schema its subject's registered history cannot accept (names subject, version and field)."""


def ensure_partner_keys(policies_dir: Path, secrets: SecretStore) -> list[str]:
    """Generate a pseudonymisation key for each partner (policy file ``<CODE>.yaml``) that has none yet (never
    committed); returns the partners that got one. A file not named like a partner is left to the loader."""
    made = []
    for path in sorted(Path(policies_dir).glob("*.yaml")):
        try:
            if secrets.get(path.stem) is None:
                secrets.ensure(path.stem)
                made.append(path.stem)
        except ValueError:
            continue
    return made


def _unavailable(subject: str, e: Exception, cached: bool) -> RegistryUnavailable:
    why = (f"registry answered {e.http_status_code} ({e.error_code})" if isinstance(e, SchemaRegistryError)
           else f"registry unreachable: {type(e).__name__}: {e}")
    return RegistryUnavailable(f"{subject}: {why}"[:300] + ("" if cached else "; this derived schema was never "
                               "registered by this forwarder, so it is not in its schema cache"), 1000)


def _transient(e: Exception) -> bool:
    if isinstance(e, SchemaRegistryError):
        return e.http_status_code in (401, 403, 408, 429) or e.http_status_code >= 500 or e.http_status_code < 0
    return True  # no HTTP answer at all (connection refused, timeout, TLS)


class PlanSource:
    """Builds plans from ``policies_dir``; ``client``: the registry; ``cache``: what was registered before."""

    def __init__(self, client, policies_dir: Path, secrets: SecretStore, cache: SchemaCache, log=None):
        self.client = client
        self.policies_dir = Path(policies_dir)
        self.secrets = secrets
        self.cache = cache
        self.log = log
        self.ids: set[int] = set()  # every id registered (or taken from the cache) by this source
        self._done: dict[tuple[str, str], int] = {}  # (subject, canonical) -> id, registered in this process
        self._away: Exception | None = None  # the registry failed during this build: ask it no more
        self.from_cache: dict[str, int] = {}  # subject -> id taken from the cache (registry away), not yet logged

    def build(self) -> dict[str, PartnerPlan]:
        self._away = None
        made = ensure_partner_keys(self.policies_dir, self.secrets)
        if made and self.log is not None:
            self.log.info("pseudonymisation keys created", partners=made, secrets=str(self.secrets))
        return build_plans(load_policies(self.policies_dir, self.secrets), self.encoder_for)

    def encoder_for(self, topic: str, schema: dict) -> serde.Encoder:
        """The pipeline's encoder factory: ``schema`` checked and registered under ``<topic>-value``."""
        return serde.Encoder(self.register(serde.value_subject(topic), schema), schema)

    def audit_encoder(self) -> AuditEncoder:
        schema = audit_schema()
        return AuditEncoder(self.register(serde.value_subject(AUDIT_TOPIC), schema), schema)

    def register(self, subject: str, schema: dict) -> int:
        key = (subject, canonical(schema))
        if key in self._done:
            return self._done[key]
        cached = self.cache.registered_id(subject, schema)
        try:
            if self._away is not None:
                raise self._away
            if cached is None:
                self.check(subject, schema)
            self.client.set_compatibility(subject, LEVEL)
            sid = self.client.register_schema(subject, Schema(json.dumps(schema), "AVRO"), normalize_schemas=True)
        except IncompatibleSchema:
            raise
        except Exception as e:  # noqa: BLE001 - sorted below: a refusal, or no answer
            if isinstance(e, SchemaRegistryError) and e.http_status_code == 409:
                raise IncompatibleSchema(f"derived schema for {subject} is refused by the registry as incompatible "
                                         f"with its registered versions: {e.error_message}") from None
            if not _transient(e):
                raise
            self._away = e
            if cached is None:
                raise _unavailable(subject, e, cached=False) from None
            sid = cached  # registered before by this instance: the registry holds it, by this id
            self.from_cache[subject] = sid
        self.cache.registration_learnt(subject, schema, sid)
        self._done[key] = sid
        self.ids.add(sid)
        return sid

    def report(self) -> None:
        """One log event for the schema ids the last build(s) took from the cache."""
        if self.from_cache and self.log is not None:
            self.log.warning("registry unavailable, registered schema ids taken from the cache",
                             error=str(self._away)[:300], cache=str(self.cache.path), subjects=self.from_cache)
        self.from_cache = {}

    def check(self, subject: str, schema: dict) -> None:
        """``schema`` against every registered version of ``subject``; IncompatibleSchema names the version and
        the field. A subject without versions accepts anything."""
        try:
            versions = self.client.get_versions(subject)
        except SchemaRegistryError as e:
            if e.http_status_code == 404:
                return
            raise
        mine = canonical(schema)
        candidate = Schema(json.dumps(schema), "AVRO")
        for v in versions:
            registered = self.client.get_version(subject, v)
            old_text = registered.schema.schema_str
            if canonical(old_text) == mine:
                continue
            reasons = explain(schema, json.loads(old_text))
            # explain() names the field; the registry has the last word (the registration's 409 backs it up)
            if not reasons or self.client.test_compatibility(subject, candidate, version=v):
                continue
            raise IncompatibleSchema(f"derived schema for {subject} is incompatible with registered version {v}: "
                                     + "; ".join(reasons))

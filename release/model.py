"""The release engine's data model: the decision, the compiled policy and its compiled rules.

:mod:`release.compiler` builds a :class:`CompiledPolicy`; :func:`release.decide` reads it through
its public members only. Every reason text of a decision is written here; a reason names fields,
sets and policy constants only, never a value of the record.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Sequence

import schemas
from release.spec import CLASSIFICATIONS

__all__ = [
    "PARTNER_NAMESPACE_PREFIX",
    "COMPONENT_NAMESPACE_PREFIX",
    "RECIPROCITY_PAUSE",
    "LABEL_CEILING",
    "LABEL_RELEASABILITY",
    "DEFAULT_DENY",
    "MALFORMED_RECORD",
    "KEY_MISSING",
    "Check",
    "Projector",
    "Decision",
    "CompiledRule",
    "TypePlan",
    "CompiledPolicy",
    "release_reason",
]

PARTNER_NAMESPACE_PREFIX = "liaison.bus.partner"
COMPONENT_NAMESPACE_PREFIX = "liaison.bus.component"

# Rule ids of the decisions without a releasing rule (``release.spec.RESERVED_RULE_IDS`` keeps
# policy rules from taking them).
LABEL_CEILING = "label-ceiling"
LABEL_RELEASABILITY = "label-releasability"
DEFAULT_DENY = "default-deny"
MALFORMED_RECORD = "malformed-record"
KEY_MISSING = "pseudonymisation-key-missing"
RECIPROCITY_PAUSE = "reciprocity-pause"

#: Condition check: returns None when the condition holds, else a short text saying why not
#: (field names, set names and policy constants only, never a value of the record).
Check = Callable[[dict], Optional[str]]
Projector = Callable[[dict], dict]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one partner gets of one record.

    ``rule`` is the id of the releasing rule, or for a withhold ``label-ceiling``,
    ``label-releasability``, ``default-deny`` (no rule for the type, or none matched),
    ``malformed-record`` (the record does not fit its schema) or ``pseudonymisation-key-missing``.
    ``reason`` names fields, sets and policy constants only, never a value of the record.
    ``released`` is the partner view (valid for the policy's derived schema) or None.
    """

    partner: str
    decision: Literal["RELEASE", "WITHHOLD"]
    rule: str
    reason: str
    released: dict[str, Any] | None

    @property
    def is_release(self) -> bool:
        return self.decision == "RELEASE"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule of a type: its condition checks (all must hold) and its projection."""

    id: str
    checks: tuple[Check, ...]
    condition_texts: tuple[str, ...]
    project: Projector | None          # None: needs a pseudonymisation key that is not loaded
    release_reason: str
    #: The same as data, for the compiled core: the conditions (:class:`release.conditions.CondNode`, the checks
    #: are made from them), the rule's projection plan and the type's union of plans
    #: (:class:`release.projection.RecordPlan`, :class:`release.projection.UnionNode`) its projector is made from.
    conditions: tuple[Any, ...] = ()
    plan: Any = None
    union: Any = None


@dataclass(frozen=True, slots=True)
class TypePlan:
    """The rules of one message type, in policy order (the first that matches releases)."""

    type_name: str
    rules: tuple[CompiledRule, ...]


def release_reason(type_name: str, rule_id: str, condition_texts: Iterable[str]) -> str:
    """Reason of a release by rule ``rule_id`` (built once per rule, at compile time)."""
    texts = list(condition_texts)
    condition_text = " and ".join(texts) if texts else "always"
    return f"{type_name}: released by rule {rule_id} ({condition_text})"


class CompiledPolicy:
    """A validated partner policy, ready for :func:`release.decide`."""

    def __init__(self, *, partner: str, version: str, path: Path, ceiling: str, require_releasable_to: bool,
                 sets: dict[str, frozenset[str]], plans: dict[str, TypePlan], derived: dict[str, dict],
                 descriptions: list[dict], pseudonymises: bool, has_key: bool,
                 facts: Any = None, envelopes: Mapping[tuple[str, str], Any] | None = None,
                 kind: str = "partner", spec: Any = None):
        #: The recipient: a partner code (RUS) or a component name (naval).
        self.partner = partner
        #: "partner" or "component".
        self.kind = kind
        #: The validated policy file (:class:`release.spec.PolicySpec`): inbound, onward, reciprocity.
        self.spec = spec
        #: First 16 hex digits of the SHA-256 of the policy file's bytes.
        self.version = version
        self.path = path
        #: Classification ceiling (symbol, e.g. ``CONFIDENTIAL``).
        self.ceiling = ceiling
        self.ceiling_level = CLASSIFICATIONS.index(ceiling)
        self.require_releasable_to = require_releasable_to
        self.sets = dict(sets)
        #: Message types this policy has rules for (our own records), in the order of :data:`schemas.MESSAGE_TYPES`.
        self.types: tuple[str, ...] = tuple(t for t in schemas.MESSAGE_TYPES if t in plans)
        #: Every source this policy has rules for: its types, then "<PARTNER>/<Type>" of the partners' records
        #: (``from_partners``), sorted.
        self.sources: tuple[str, ...] = self.types + tuple(sorted(s for s in plans if "/" in s))
        #: True when some rule pseudonymises a field (so the partner's key is needed).
        self.pseudonymises = pseudonymises
        #: True when the pseudonymisation key was loaded (or none is needed).
        self.has_key = has_key
        self.namespace = (f"{PARTNER_NAMESPACE_PREFIX}.{partner.lower()}" if kind == "partner"
                          else f"{COMPONENT_NAMESPACE_PREFIX}.{partner.lower()}")
        #: Compiled rules by message type (read only).
        self.plans: Mapping[str, TypePlan] = MappingProxyType(dict(plans))
        #: What every rule releases, and how (:class:`release.facts.PolicyFacts`), for the escape-route checks.
        self.facts = facts
        #: Envelope plan by (type, rule id) (:func:`release.envelope.envelope`).
        self.envelopes: Mapping[tuple[str, str], Any] = MappingProxyType(dict(envelopes or {}))
        self._derived = derived
        self._descriptions = descriptions
        self._build_withholds()

    def __repr__(self) -> str:
        return f"CompiledPolicy({self.partner}, version={self.version}, types={list(self.types)})"

    @property
    def is_partner(self) -> bool:
        return self.kind == "partner"

    def withhold_paused(self, reason: str) -> Decision:
        """The record's category is paused for this partner (``reciprocity:``); ``reason`` says why."""
        return Decision(self.partner, "WITHHOLD", RECIPROCITY_PAUSE, reason, None)

    def derived_schema(self, type_name: str) -> dict[str, Any]:
        """The partner's Avro schema of ``type_name`` (a fresh dict): the internal schema minus every
        dropped field, without ``doc`` attributes, in namespace ``liaison.bus.partner.<partner>``."""
        try:
            return copy.deepcopy(self._derived[type_name])
        except KeyError:
            raise KeyError(f"{self.partner} releases no {type_name}; released types: {', '.join(self.types)}") from None

    def describe(self) -> list[dict[str, Any]]:
        """Per type and rule: conditions and the kept, dropped, coarsened, bucketed and pseudonymised paths.

        ``dropped`` lists explicit drops, ``unnamed`` the fields dropped because no action names them.
        """
        return copy.deepcopy(self._descriptions)

    # -------------------------------------------------------------- withholds

    def _build_withholds(self) -> None:
        # The withholds that do not depend on the record are built once (decide returns them as they are).
        p = self.partner
        #: The record has no security label.
        self.withhold_no_label = Decision(p, "WITHHOLD", LABEL_CEILING, "record has no security label", None)
        #: The label's classification is missing or not a known symbol.
        self.withhold_unknown_classification = Decision(p, "WITHHOLD", LABEL_CEILING,
                                                        "missing or unknown classification", None)
        #: By classification level (rank in ``CLASSIFICATIONS``), for every level above the ceiling.
        self.withhold_above_ceiling: Mapping[int, Decision] = MappingProxyType({
            level: Decision(p, "WITHHOLD", LABEL_CEILING, f"classification {name} above ceiling {self.ceiling}", None)
            for level, name in enumerate(CLASSIFICATIONS) if level > self.ceiling_level
        })
        #: ``require_releasable_to`` is set and the label's REL TO does not name the partner.
        self.withhold_not_releasable = Decision(p, "WITHHOLD", LABEL_RELEASABILITY,
                                                f"releasable_to does not name {p}", None)
        self._no_rule: dict[Any, Decision] = {}
        self._key_missing = {
            (t, r.id): Decision(p, "WITHHOLD", KEY_MISSING,
                                f"{t}: rule {r.id} pseudonymises but no key for {p} is loaded", None)
            for t, plan in self.plans.items() for r in plan.rules
        }

    def withhold_no_rule(self, type_name: Any) -> Decision:
        """The policy has no rule for ``type_name`` (any value: it comes from the record's header)."""
        decision = self._no_rule.get(type_name)
        if decision is None:
            name = type_name if isinstance(type_name, str) else repr(type_name)
            decision = Decision(self.partner, "WITHHOLD", DEFAULT_DENY, f"no rule for {name}", None)
            if len(self._no_rule) < 64:
                self._no_rule[type_name] = decision
        return decision

    def withhold_key_missing(self, type_name: str, rule_id: str) -> Decision:
        """Rule ``rule_id`` of ``type_name`` matched but pseudonymises, and no key was loaded."""
        return self._key_missing[(type_name, rule_id)]

    def withhold_no_match(self, type_name: str, rules: Sequence[CompiledRule], fails: Sequence[str]) -> Decision:
        """No rule of ``type_name`` matched: ``fails[i]`` says why ``rules[i]`` did not (every rule, in order)."""
        if len(fails) == 1:
            why = f"{rules[0].id}: {fails[0]}"
        else:
            why = "; ".join([f"{rule.id}: {fail}" for rule, fail in zip(rules, fails)])
        return Decision(self.partner, "WITHHOLD", DEFAULT_DENY, f"{type_name}: no rule matched ({why})", None)

    def withhold_malformed(self, type_name: Any, exc: Exception) -> Decision:
        """The record does not fit its schema (deciding it raised ``exc``)."""
        return Decision(self.partner, "WITHHOLD", MALFORMED_RECORD,
                        f"{type_name}: record does not fit the schema ({_error_text(exc)})", None)


def _error_text(exc: Exception) -> str:
    # Only the exception type and, for a missing key, the field name: never a value.
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        return f"missing field {exc.args[0]!r}"
    return type(exc).__name__

"""The policy file format, validated by pydantic (unknown keys are rejected everywhere).

Only the *shape* of a policy is checked here; field paths, set references and the fit of each
action to the schema are checked by :mod:`release.compiler` against the writer schemas.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    StringConstraints,
    model_validator,
)

__all__ = [
    "CLASSIFICATIONS",
    "RESERVED_RULE_IDS",
    "Acknowledge",
    "Action",
    "BoundingBox",
    "Condition",
    "Rule",
    "PolicySpec",
    "Inbound",
    "Reciprocity",
    "FIELD_OPERATORS",
]

#: Classification symbols, least to most restrictive (the order of the Avro enum).
CLASSIFICATIONS: tuple[str, ...] = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP_SECRET")

#: Rule ids the decision itself uses; a policy rule may not take them.
RESERVED_RULE_IDS = frozenset({
    "label-ceiling", "label-releasability", "default-deny", "malformed-record", "pseudonymisation-key-missing",
    "reciprocity-pause",
})

ACTION_KINDS = ("keep", "drop", "coarsen", "bucket", "pseudonymise")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True,
                              arbitrary_types_allowed=True)


# --------------------------------------------------------------------------- field actions


@dataclass(frozen=True, slots=True)
class Action:
    """One field action: ``keep``, ``drop``, ``coarsen`` (grid_deg), ``bucket`` (seconds), ``pseudonymise``."""

    kind: str
    grid_deg: float | None = None
    seconds: int | None = None

    def describe(self) -> str:
        if self.kind == "coarsen":
            return f"coarsen to a {self.grid_deg:g} deg grid"
        if self.kind == "bucket":
            return f"bucket to {self.seconds} s"
        return self.kind


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_action(value: Any) -> Action:
    """``keep`` | ``drop`` | ``pseudonymise`` | ``{coarsen: {grid_deg: G}}`` | ``{bucket: {seconds: S}}``
    | ``{pseudonymise: {}}`` (also ``{keep: {}}``, ``{drop: {}}``)."""
    expected = "expected one of keep, drop, coarsen: {grid_deg: G}, bucket: {seconds: S}, pseudonymise"
    if isinstance(value, str):
        if value in ("keep", "drop", "pseudonymise"):
            return Action(value)
        if value in ("coarsen", "bucket"):
            need = "grid_deg" if value == "coarsen" else "seconds"
            raise ValueError(f"action {value!r} needs a parameter: {{{value}: {{{need}: ...}}}}")
        raise ValueError(f"unknown action {value!r} ({expected})")
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"an action is one key, got {sorted(map(str, value))} ({expected})")
        ((kind, params),) = value.items()
        if kind not in ACTION_KINDS:
            raise ValueError(f"unknown action {kind!r} ({expected})")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError(f"parameters of {kind!r} must be a mapping")
        if kind in ("keep", "drop", "pseudonymise"):
            if params:
                raise ValueError(f"{kind!r} takes no parameters, got {sorted(map(str, params))}")
            return Action(kind)
        if kind == "coarsen":
            extra = set(params) - {"grid_deg"}
            if extra:
                raise ValueError(f"unknown key(s) {sorted(map(str, extra))} in coarsen (allowed: grid_deg)")
            grid = params.get("grid_deg")
            if not _number(grid) or not math.isfinite(grid) or not MIN_GRID_DEG <= grid <= 90:
                raise ValueError(f"coarsen.grid_deg must be a number >= {MIN_GRID_DEG:g} and <= 90")
            return Action("coarsen", grid_deg=float(grid))
        extra = set(params) - {"seconds"}
        if extra:
            raise ValueError(f"unknown key(s) {sorted(map(str, extra))} in bucket (allowed: seconds)")
        seconds = params.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 < seconds <= MAX_BUCKET_SECONDS:
            raise ValueError(f"bucket.seconds must be a whole number > 0 and <= {MAX_BUCKET_SECONDS} (a year)")
        return Action("bucket", seconds=seconds)
    raise ValueError(f"an action must be a word or a one-key mapping ({expected})")


ActionField = Annotated[Action, PlainValidator(_parse_action)]

#: A dotted field path (``subject.subject_ref``); arrays of records are addressed by their field name.
FieldPath = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
Name = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
NonEmptyStr = Annotated[str, StringConstraints(strict=True, min_length=1)]


# --------------------------------------------------------------------------- conditions


class BoundingBox(_Strict):
    """An area: latitudes and longitudes in decimal degrees, bounds included."""

    lat_min: float = Field(ge=-90, le=90)
    lat_max: float = Field(ge=-90, le=90)
    lon_min: float = Field(ge=-180, le=180)
    lon_max: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> BoundingBox:
        if self.lat_min >= self.lat_max:
            raise ValueError("lat_min must be below lat_max")
        if self.lon_min >= self.lon_max:
            raise ValueError("lon_min must be below lon_max (areas across the antimeridian are not supported)")
        return self


#: Operators that test the value(s) at ``field``.
FIELD_OPERATORS = ("equals", "in_set", "contains_any", "contains_any_set", "inside")


#: Finest grid a coarsening may use (about 0.1 m): finer is no coarsening, and subnormal sizes overflow.
MIN_GRID_DEG = 1e-6
#: Longest time bucket a policy file may state (services may bound it further, e.g. the forwarder's hold).
MAX_BUCKET_SECONDS = 366 * 86_400


class Condition(_Strict):
    """One condition: ``field`` plus exactly one operator, or ``any:`` / ``all:`` of sub-conditions."""

    field: Optional[FieldPath] = None
    equals: Any = None
    in_set: Optional[Name] = None
    contains_any: Optional[list[Any]] = Field(None, min_length=1)
    contains_any_set: Optional[Name] = None
    inside: Optional[BoundingBox] = None
    any: Optional[list[Condition]] = Field(None, min_length=1)
    all: Optional[list[Condition]] = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [name for name in (*FIELD_OPERATORS, "any", "all") if name in self.model_fields_set]
        if len(given) != 1:
            allowed = ", ".join((*FIELD_OPERATORS, "any", "all"))
            if not given:
                raise ValueError(f"a condition needs one operator ({allowed})")
            raise ValueError(f"a condition has exactly one operator, got {', '.join(given)}")
        (operator,) = given
        if getattr(self, operator) is None and operator != "equals":
            raise ValueError(f"'{operator}' needs a value (null given)")
        if operator in ("any", "all"):
            if self.field is not None:
                raise ValueError(f"'{operator}' combines sub-conditions and takes no 'field'")
        elif self.field is None:
            raise ValueError(f"'{operator}' needs a 'field'")
        if operator == "equals" and self.equals is None:
            raise ValueError("'equals' needs a value (null is not a value a rule can test)")
        return self

    @property
    def operator(self) -> str:
        for name in (*FIELD_OPERATORS, "any", "all"):
            if name in self.model_fields_set:
                return name
        raise AssertionError("validated condition without operator")


# --------------------------------------------------------------------------- acknowledgements

#: Shortest reason an acknowledgement accepts: a reason says why, it is not a placeholder.
MIN_REASON = 10


def _parse_reason(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a reason must be a text saying why")
    text = " ".join(value.split())
    if len(text) < MIN_REASON:
        raise ValueError(f"a reason must say why (at least {MIN_REASON} characters), got {text!r}")
    return text


Reason = Annotated[str, PlainValidator(_parse_reason)]
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _parse_reasons(value: Any) -> dict[str, str]:
    """``{<field path>: <reason>, ...}`` (at least one)."""
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a mapping {<field path>: <reason>, ...}")
    out = {}
    for path, reason in value.items():
        if not isinstance(path, str) or not _FIELD_PATH.match(path):
            raise ValueError(f"invalid field path {path!r}")
        try:
            out[path] = _parse_reason(reason)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return out


def _parse_linkable(value: Any) -> str | dict[str, str]:
    """``<reason>`` (every field the rule releases) or ``{<field path>: <reason>, ...}``."""
    if isinstance(value, str):
        return _parse_reason(value)
    if isinstance(value, dict):
        return _parse_reasons(value)
    raise ValueError("expected a reason (every field the rule releases) or a mapping {<field path>: <reason>}")


class Acknowledge(_Strict):
    """The escape routes a rule accepts, each with its reason (``release.escapes``, ``release.linkable``).

    ``precision``: fields that carry a fact of the record more precisely than a transformed field does
    (a time kept exact next to a bucketed one, a position next to a coarsened one, an exact value next to
    a pseudonymised one of the same name). ``distinguishable``: this rule's view may differ from the other
    rules' of its type (the partner can tell which rule matched). ``linkable``: fields released
    deliberately although another partner may receive the same record-unique value (a reason alone: every
    field this rule releases).
    """

    precision: Optional[Annotated[dict[str, str], PlainValidator(_parse_reasons)]] = None
    distinguishable: Optional[Reason] = None
    linkable: Optional[Annotated[Union[str, dict[str, str]], PlainValidator(_parse_linkable)]] = None

    @model_validator(mode="after")
    def _not_empty(self) -> Acknowledge:
        if not self.model_fields_set:
            raise ValueError("acknowledge needs precision, distinguishable or linkable")
        return self


# --------------------------------------------------------------------------- rules and policy


class Rule(_Strict):
    """Releases a message type when every ``when`` condition holds, projected by ``fields``.

    ``timestamp`` names the released time that becomes the record timestamp of the release (default:
    the type's, see :data:`release.facts.DEFAULT_TIMESTAMP`); ``acknowledge`` accepts escape routes.
    """

    id: Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)]
    when: list[Condition] = Field(default_factory=list)
    fields: dict[FieldPath, ActionField] = Field(min_length=1)
    timestamp: Optional[FieldPath] = None
    acknowledge: Optional[Acknowledge] = None
    #: top-level fields the derived schema keeps optional (["null", T]) although every rule releases them:
    #: a field optional in a released version of the partner's schema must stay so (BACKWARD_TRANSITIVE)
    nullable: list[Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z_][a-z0-9_]*$")]] = Field(
        default_factory=list)


PartnerCode = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
ComponentName = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9]{1,15}$")]
ClassificationName = Literal["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP_SECRET"]
TypeRules = dict[StrictStr, Annotated[list[Rule], Field(min_length=1)]]


class Inbound(_Strict):
    """What we accept from a partner (partner policies only): the ingress guard quarantines the rest."""

    #: the highest classification a record of the partner may carry (above: quarantined, label check)
    classification_ceiling: ClassificationName = "SECRET"
    #: how far a record's times may lie ahead of our clock, and behind it (label.created_at; a track's time)
    max_future_s: int = Field(300, ge=0, le=86_400)
    max_age_s: int = Field(7 * 86_400, ge=60, le=30 * 86_400)


class Reciprocity(_Strict):
    """Pause a category while the partner gives far less than it takes: over ``window`` (day or week),
    when we gave at least ``min_given`` records and received/given < ``min_ratio``, records of the category
    are withheld for this partner (rule ``reciprocity-pause``). Safety categories are never paused."""

    category: StrictStr
    window: Literal["day", "week"] = "week"
    min_ratio: float = Field(gt=0, le=100)
    min_given: int = Field(10, ge=1)


class PolicySpec(_Strict):
    """One recipient's release policy (one YAML file, ``deploy/policies/<RECIPIENT>.yaml``): a partner
    (``partner: RUS``) or one of our components (``component: naval``)."""

    partner: Optional[PartnerCode] = None
    component: Optional[ComponentName] = None
    classification_ceiling: ClassificationName
    require_releasable_to: StrictBool = True
    sets: dict[Name, Annotated[list[NonEmptyStr], Field(min_length=1)]] = Field(default_factory=dict)
    label: dict[FieldPath, ActionField]
    rules: TypeRules = Field(default_factory=dict)
    #: rules for the records a partner gave us (partner-origin, accepted by the ingress guard), by partner code;
    #: in a partner's policy this is the third-party rule, valid only when the origin's policy allows it
    #: (``onward``) — default: never
    from_partners: dict[PartnerCode, TypeRules] = Field(default_factory=dict)
    #: partner policies: which of this partner's records (by type) may go on to which other partners
    onward: dict[StrictStr, list[PartnerCode]] = Field(default_factory=dict)
    inbound: Optional[Inbound] = None
    reciprocity: list[Reciprocity] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_recipient(self) -> PolicySpec:
        if (self.partner is None) == (self.component is None):
            raise ValueError("a policy names exactly one recipient: `partner: <ISO alpha-3>` or `component: <name>`")
        if self.component is not None and (self.onward or self.inbound or self.reciprocity):
            raise ValueError("`onward`, `inbound` and `reciprocity` are for partner policies: a component sends "
                             "nothing through the ingress guard")
        return self

    @property
    def recipient(self) -> str:
        """The partner code or component name."""
        return self.partner if self.partner is not None else self.component  # type: ignore[return-value]

    @property
    def is_partner(self) -> bool:
        return self.partner is not None

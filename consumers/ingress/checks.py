"""The ingress guard's checks: each one small unit with one interface, ``Check(name, run)``, built from the
guard's configuration. ``run(inspect) -> None`` when the record passes, else the reason (a short text that names
the check's fields and never the record's values). No Kafka, no clock: ``now_ms`` comes in with the record.

In order (:data:`CHECKS`); a record stops at the first that fails, and that check is named in its quarantine
headers and its audit:

    size        the value is at most ``max_bytes`` (:data:`MAX_VALUE_BYTES`, 32 KiB; the broker refuses more than
                128 KiB on inbound topics, a partner record is 200 B - 2 KB)
    framing     Confluent framing: magic byte 0 and a 4-byte schema id
    schema      that id is a version registered under the topic's inbound subject (no other id)
    avro        the body decodes with that writer, resolved to the current inbound schema; no trailing bytes
    label       a label is present; classification <= the policy's inbound ceiling; releasable_to names FRA;
                message_id a non-empty UUID; caveats leave room for the origin caveat and claim no origin
    originator  label.originator is the partner's own: its code in lower case, or "<code>.<anything>"
    validation  the model's validators for the fields the partner sends (:mod:`consumers.ingress.validation`)
    time        label.created_at and, when the type has one, ``time`` within [now - max_age_s, now + max_future_s]
    replay      the message id was not accepted from this partner before (the seen ids restored at start and
                those committed since), nor earlier in the same batch

Each check declares what it needs from earlier checks (``needs``) and what it gives the later ones (``gives``);
:func:`build_checks` fails at start on an unknown name, a check placed before what it needs, or a list that
does not decode and read a label (nothing could be accepted).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fastavro import schemaless_reader

from consumers.shell.codec import _short_validation
from consumers.shell.records import InRecord
from core import serde
from release.spec import CLASSIFICATIONS, Inbound
from schemas.agreement import OWN_NATION
from schemas.models.fields import MAX_ITEMS

__all__ = ["CHECKS", "MAX_VALUE_BYTES", "Check", "GuardConfig", "Inspect", "TypePlan", "build_checks",
           "origin_caveat", "origin_originator"]

#: The guard's bound on a partner record's value, below the inbound topics' max.message.bytes (128 KiB).
MAX_VALUE_BYTES = 32 * 1024
#: Every check, in the order they run.
CHECKS: tuple[str, ...] = ("size", "framing", "schema", "avro", "label", "originator", "validation", "time",
                           "replay")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def origin_originator(code: str) -> str:
    """The originator of an accepted record: ``partner.<code>``."""
    return f"partner.{code.lower()}"


def origin_caveat(code: str) -> str:
    """The caveat an accepted record gets: ``ORIGIN <CODE>``."""
    return f"ORIGIN {code.upper()}"


@dataclass(frozen=True)
class GuardConfig:
    """What the checks are built from: the partner, what its policy accepts, the size bound, the checks."""

    partner: str  # upper case: RUS
    inbound: Inbound = field(default_factory=Inbound)
    max_bytes: int = MAX_VALUE_BYTES
    checks: tuple[str, ...] = CHECKS


@dataclass
class TypePlan:
    """One inbound topic of the partner: its type, subject, reader (the current inbound schema), validator, and
    where an accepted record goes (the partner-origin topic, with the encoder of its registered schema)."""

    type_name: str
    topic: str
    subject: str
    reader: Any  # parsed inbound schema (message ids plain strings)
    validate: Callable[[dict], Any]
    origin_topic: str
    origin_encoder: Any  # core.serde.Encoder of the partner-origin schema
    has_time: bool = False
    schema: dict | None = None  # the inbound schema (the compiled core's reader)
    origin_schema: dict | None = None


@dataclass(slots=True)
class Inspect:
    """One record on its way through the checks; each fills in what the next ones read."""

    rec: InRecord
    plan: TypePlan
    now_ms: int
    seen: Container[str]  # message ids accepted from this partner and committed
    batch_ids: set[str]  # message ids accepted earlier in this batch
    schema_id: int | None = None
    body: memoryview | None = None
    writer: Any = None
    record: dict | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Inspect], str | None]
    needs: frozenset[str] = frozenset()
    gives: frozenset[str] = frozenset()


def _ms(value: Any) -> int | None:
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MS
    return None


_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc) - _EPOCH


# --------------------------------------------------------------------------------------------- the checks


def _size(cfg: GuardConfig, schemas) -> Callable[[Inspect], str | None]:
    limit = cfg.max_bytes

    def run(x: Inspect) -> str | None:
        n = len(x.rec.value or b"")
        return f"value is {n} bytes, more than the guard's {limit}" if n > limit else None
    return run


def _framing(cfg, schemas):
    def run(x: Inspect) -> str | None:
        try:
            x.schema_id, x.body = serde.unframe(x.rec.value)
        except serde.FramingError as e:
            return str(e)
        return None
    return run


def _schema(cfg, schemas):
    from consumers.ingress.registry import SchemaRefused

    def run(x: Inspect) -> str | None:
        try:
            x.writer = schemas.writer(x.plan.subject, x.schema_id)  # RegistryUnavailable: the partition waits
        except SchemaRefused as e:
            return str(e)
        return None
    return run


def _avro(cfg, schemas):
    def run(x: Inspect) -> str | None:
        buf = io.BytesIO(x.body)
        try:
            x.record = schemaless_reader(buf, x.writer, x.plan.reader)
        except Exception as e:  # noqa: BLE001 - fastavro raises many kinds on corrupt bodies
            return f"Avro body does not decode with schema id {x.schema_id} as {x.plan.subject} ({type(e).__name__})"
        rest = len(x.body) - buf.tell()
        if rest:
            return f"{rest} trailing byte(s) after the Avro record (schema id {x.schema_id})"
        if not isinstance(x.record, dict):
            return "not an Avro record"
        return None
    return run


def _label(cfg: GuardConfig, schemas):
    ceiling = cfg.inbound.classification_ceiling
    level = CLASSIFICATIONS.index(ceiling)
    room = MAX_ITEMS["caveats"] - 1

    def run(x: Inspect) -> str | None:
        label = x.record.get("label")
        if label is None:
            return "record has no security label"
        mid = label.get("message_id")
        if not isinstance(mid, str) or not mid.strip():
            return "label.message_id is empty"
        try:
            x.message_id = str(uuid.UUID(mid))
        except ValueError:
            return "label.message_id is not a UUID"
        cls = label.get("classification")
        if cls not in CLASSIFICATIONS:
            return "label.classification is missing or unknown"
        if CLASSIFICATIONS.index(cls) > level:
            return f"label.classification above the inbound ceiling {ceiling}"
        if OWN_NATION not in (label.get("releasable_to") or ()):
            return f"label.releasable_to does not name {OWN_NATION}"
        caveats = label.get("caveats") or []
        if any(isinstance(c, str) and c.upper().startswith("ORIGIN") for c in caveats):
            return "label.caveats claims an origin (only the guard sets ORIGIN caveats)"
        if len(caveats) > room:
            return f"label.caveats has {len(caveats)} items; at most {room} leave room for the origin caveat"
        return None
    return run


def _originator(cfg: GuardConfig, schemas):
    code = cfg.partner.lower()

    def run(x: Inspect) -> str | None:
        who = x.record["label"].get("originator")
        if isinstance(who, str) and (who == code or who.startswith(code + ".")):
            return None
        return f"label.originator is not {cfg.partner}'s own ({code} or {code}.<unit>): the topic is {cfg.partner}'s"
    return run


def _validation(cfg, schemas):
    def run(x: Inspect) -> str | None:
        try:
            x.plan.validate(x.record)
        except ValueError as e:  # pydantic.ValidationError; errors name the field and the rule, never the value
            return _short_validation(e)
        return None
    return run


def _time(cfg: GuardConfig, schemas):
    past, future = cfg.inbound.max_age_s * 1000, cfg.inbound.max_future_s * 1000

    def run(x: Inspect) -> str | None:
        low, high = x.now_ms - past, x.now_ms + future
        for name, value in (("label.created_at", x.record["label"].get("created_at")),
                            ("time", x.record.get("time") if x.plan.has_time else None)):
            if name == "time" and not x.plan.has_time:
                continue
            ms = _ms(value)
            if ms is None:
                return f"{name} is missing"
            if ms < low:
                return f"{name} is older than max_age_s ({past // 1000} s)"
            if ms > high:
                return f"{name} is further ahead than max_future_s ({future // 1000} s)"
        return None
    return run


def _replay(cfg: GuardConfig, schemas):
    def run(x: Inspect) -> str | None:
        mid = x.message_id
        if mid in x.batch_ids:
            return f"message id already seen from {cfg.partner} in this batch"
        if mid in x.seen:
            return f"message id already seen from {cfg.partner}"
        return None
    return run


#: name -> (factory(config, schemas) -> run, needs, gives)
_FACTORIES: dict[str, tuple[Callable, frozenset[str], frozenset[str]]] = {
    "size": (_size, frozenset(), frozenset()),
    "framing": (_framing, frozenset(), frozenset({"framed"})),
    "schema": (_schema, frozenset({"framed"}), frozenset({"writer"})),
    "avro": (_avro, frozenset({"writer"}), frozenset({"record"})),
    "label": (_label, frozenset({"record"}), frozenset({"label"})),
    "originator": (_originator, frozenset({"label"}), frozenset()),
    "validation": (_validation, frozenset({"label"}), frozenset()),
    "time": (_time, frozenset({"label"}), frozenset()),
    "replay": (_replay, frozenset({"label"}), frozenset()),
}
assert tuple(_FACTORIES) == CHECKS


def build_checks(cfg: GuardConfig, schemas) -> list[Check]:
    """The checks named by ``cfg.checks``, in that order, built for ``cfg``; ValueError at start when a name is
    unknown or repeated, a check comes before what it needs, or the list cannot accept anything (it must decode a
    record and read its label, whose message id keys the output)."""
    unknown = [n for n in cfg.checks if n not in _FACTORIES]
    if unknown:
        raise ValueError(f"unknown ingress check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    if len(set(cfg.checks)) != len(cfg.checks):
        raise ValueError(f"ingress checks named twice: {', '.join(cfg.checks)}")
    have: set[str] = set()
    out = []
    for name in cfg.checks:
        factory, needs, gives = _FACTORIES[name]
        missing = needs - have
        if missing:
            raise ValueError(f"ingress check {name} needs what {', '.join(sorted(missing))} gives: place "
                             f"{' '.join(n for n in CHECKS if _FACTORIES[n][2] & missing)} before it")
        out.append(Check(name, factory(cfg, schemas), needs, gives))
        have |= gives
    if not {"record", "label"} <= have:
        raise ValueError("ingress checks must include framing, schema, avro and label: without them no record can "
                         "be accepted")
    return out

"""What each principal may ask the registry gateway: a pure function of (principal, method, path, query).

Two kinds of principals authenticate at the gateway (HTTP basic, the principals' SCRAM passwords):

- **service principals** (admin, forwarder, producer-<component>, lag-monitor): the whole Confluent API under
  ``/apis/ccompat/v7``, any method;
- **recipient principals**, read-only GETs on their own subjects and nothing else:

  - a partner (``partner-<code>``): its derived feed subjects (``liaison.partner.<code>.*``) and the inbound
    subjects it publishes with (``liaison.inbound.<code>.*``, the exchange format of what it sends us);
  - one of our components (``component-<name>``): its feed subjects (``liaison.component.<name>.*``), which
    ``liaison subscribe`` reads for a component as it does for a partner.

  What a recipient principal may send:

      GET /subjects                                     the list, filtered to the principal's own subjects
      GET /subjects/<own>/versions[/<v>[/schema]]       <v>: a number, latest or -1
      GET /schemas/ids/<id>[/schema]                    only if <id> is registered under an own subject
      GET /schemas/ids/<id>/subjects|versions           same, and the list filtered to own subjects
      GET /config, GET /config/<own>, GET /schemas/types   compatibility level, schema types

  Every other request is refused (403). A recipient's path is matched on its raw (undecoded) segments, and each
  segment must consist of ``[A-Za-z0-9._-]`` only, so no encoding, matrix parameter or dot-segment can make
  the registry read a path other than the one judged here. Query parameters outside :data:`PARTNER_QUERY`
  are refused too. (The ``partner`` names below say "recipient": a component is held to the same rules.)

The gateway performs what a :class:`Decision` asks on top of allow/deny: the schema-id ownership check
(``schema_id``: look up the subjects the id is registered under) and the filtering of list responses
(``filter``, applied by :func:`filter_response`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["API_PREFIX", "PARTNER_PRINCIPAL_PREFIX", "COMPONENT_PRINCIPAL_PREFIX", "PARTNER_SUBJECT_PREFIX",
           "INBOUND_SUBJECT_PREFIX", "COMPONENT_SUBJECT_PREFIX", "PARTNER_QUERY", "Decision", "partner_code",
           "component_name", "is_partner", "is_component", "is_restricted", "own_prefixes", "own_subject",
           "authorize", "filter_response", "owns_schema"]

#: Where the Confluent-compatible API lives, on Apicurio and on the gateway alike.
API_PREFIX = "/apis/ccompat/v7"
PARTNER_PRINCIPAL_PREFIX = "partner-"
COMPONENT_PRINCIPAL_PREFIX = "component-"
#: A partner's feeds are liaison.partner.<code>.<domain>.<type>; their subjects are <topic>-value.
#: (core.topics.PARTNER_PREFIX etc.; spelled out here so this module stays pure and standalone.)
PARTNER_SUBJECT_PREFIX = "liaison.partner."
#: What a partner publishes to us: liaison.inbound.<code>.<domain>.<type> (core.topics.INBOUND_PREFIX).
INBOUND_SUBJECT_PREFIX = "liaison.inbound."
#: A component's feeds: liaison.component.<name>.<...> (core.topics.COMPONENT_PREFIX).
COMPONENT_SUBJECT_PREFIX = "liaison.component."
#: Query parameters a partner may pass (what confluent-kafka's client and deserializer send on these GETs).
PARTNER_QUERY = frozenset({"subject", "format", "deleted", "deleted_only", "deletedOnly", "subjectPrefix",
                           "defaultToGlobal", "reference_format", "fetchMaxId", "normalize", "lookupDeletedSchema",
                           "offset", "limit"})

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_CODE = re.compile(r"[a-z0-9]+")
_VERSION = re.compile(r"[0-9]+|latest|-1")
_ID = re.compile(r"[0-9]{1,10}")

#: filter kinds: a JSON list of subject names, or of {"subject": ..., "version": ...}
NAMES, VERSIONS = "names", "versions"


@dataclass(frozen=True)
class Decision:
    allow: bool
    reason: str
    #: allowed only if this schema id is registered under one of the principal's own subjects
    schema_id: int | None = None
    #: the 200 response is a list to filter to the principal's own subjects: NAMES or VERSIONS
    filter: str | None = None


def partner_code(principal: str) -> str | None:
    """`rus` for `partner-rus`; None for any other principal."""
    if principal.startswith(PARTNER_PRINCIPAL_PREFIX):
        return principal[len(PARTNER_PRINCIPAL_PREFIX):]
    return None


def component_name(principal: str) -> str | None:
    """`naval` for `component-naval`; None for any other principal."""
    if principal.startswith(COMPONENT_PRINCIPAL_PREFIX):
        return principal[len(COMPONENT_PRINCIPAL_PREFIX):]
    return None


def is_partner(principal: str) -> bool:
    return partner_code(principal) is not None


def is_component(principal: str) -> bool:
    return component_name(principal) is not None


def is_restricted(principal: str) -> bool:
    """A recipient principal (partner or component): read-only, its own subjects only."""
    return is_partner(principal) or is_component(principal)


def own_prefixes(principal: str) -> tuple[str, ...]:
    """Subject prefixes of a recipient principal's own subjects (each ends with a dot); () for a service
    principal and for a recipient principal whose name carries no valid code."""
    code = partner_code(principal)
    if code is not None:
        return (f"{PARTNER_SUBJECT_PREFIX}{code}.", f"{INBOUND_SUBJECT_PREFIX}{code}.") \
            if _CODE.fullmatch(code) else ()
    name = component_name(principal)
    if name is not None:
        return (f"{COMPONENT_SUBJECT_PREFIX}{name}.",) if _CODE.fullmatch(name) else ()
    return ()


def own_subject(principal: str, subject: str) -> bool:
    """A subject of the recipient's own: liaison.partner.<code>.<something> or liaison.inbound.<code>.<something>
    for a partner, liaison.component.<name>.<something> for a component."""
    return any(subject.startswith(p) and len(subject) > len(p) for p in own_prefixes(principal))


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def authorize(principal: str, method: str, path: str, query: Iterable[str] = ()) -> Decision:
    """May `principal` send `method` `path` (the raw request path, percent-encoding untouched) with these query
    parameter names? See the module docstring for the rules."""
    if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
        return _deny(f"{path} is not the Confluent-compatible API ({API_PREFIX})")
    if any(unquote(seg) in (".", "..") for seg in path.split("/")):
        return _deny("dot-segments are not allowed in a registry path")
    if not is_restricted(principal):
        return Decision(True, "service principal: the whole Confluent-compatible API")
    kind = "partner" if is_partner(principal) else "component"
    prefixes = own_prefixes(principal)
    if not prefixes:
        return _deny(f"{principal} names no {kind} code")
    if method != "GET":
        return _deny(f"{kind} principals may only read (GET), not {method}")
    extra = sorted(set(query) - PARTNER_QUERY)
    if extra:
        return _deny(f"query parameter(s) {', '.join(extra)} not allowed to {kind} principals")
    rest = path[len(API_PREFIX):]
    parts = rest.split("/")[1:] if rest else []
    if not parts or any(not _SEGMENT.fullmatch(p) for p in parts):
        return _deny(f"not a path {kind} principals may read")
    own = " or ".join(f"{p}*" for p in prefixes)

    match parts:
        case ["subjects"]:
            return Decision(True, f"subject list, filtered to {own}", filter=NAMES)
        case ["subjects", subject, "versions", *tail] if len(tail) <= 2:
            if not own_subject(principal, subject):
                return _deny(f"subject {subject} is not one of {principal}'s subjects ({own})")
            if tail and not _VERSION.fullmatch(tail[0]):
                return _deny(f"version {tail[0]} is not a version number, latest or -1")
            if len(tail) == 2 and tail[1] != "schema":
                return _deny(f"not a path {kind} principals may read")
            return Decision(True, f"own subject {subject}")
        case ["schemas", "ids", sid, *tail] if len(tail) <= 1:
            if not _ID.fullmatch(sid):
                return _deny(f"schema id {sid} is not a number")
            if not tail or tail[0] == "schema":
                return Decision(True, f"schema id {sid}, if registered under {own}", schema_id=int(sid))
            if tail[0] == "subjects":
                return Decision(True, f"subjects of schema id {sid}, filtered to {own}", schema_id=int(sid),
                                filter=NAMES)
            if tail[0] == "versions":
                return Decision(True, f"versions of schema id {sid}, filtered to {own}", schema_id=int(sid),
                                filter=VERSIONS)
            return _deny(f"not a path {kind} principals may read")
        case ["schemas", "types"]:
            return Decision(True, "schema types")
        case ["config"]:
            return Decision(True, "global compatibility level")
        case ["config", subject]:
            if not own_subject(principal, subject):
                return _deny(f"subject {subject} is not one of {principal}'s subjects ({own})")
            return Decision(True, f"compatibility level of own subject {subject}")
    return _deny(f"not a path {kind} principals may read")


def filter_response(principal: str, kind: str | None, data):
    """The list in a 200 response reduced to the principal's own subjects (service principals: unchanged)."""
    if kind is None or not is_restricted(principal):
        return data
    if not isinstance(data, list):
        return []
    if kind == NAMES:
        return [s for s in data if isinstance(s, str) and own_subject(principal, s)]
    if kind == VERSIONS:
        return [v for v in data if isinstance(v, dict) and isinstance(v.get("subject"), str)
                and own_subject(principal, v["subject"])]
    return []


def owns_schema(principal: str, versions) -> bool:
    """Whether a /schemas/ids/<id>/versions answer lists one of the principal's own subjects."""
    return bool(filter_response(principal, VERSIONS, versions))

"""The release decision: which partner gets what of each liaison record. Pure code, no Kafka.

A partner's policy (``deploy/policies/<PARTNER>.yaml``) is validated against the writer schemas
and compiled once (:func:`load_policies`); :func:`decide` then releases or withholds one record
for one partner and, on release, returns the partner's view of it: an allow-list projection
whose schema is :meth:`CompiledPolicy.derived_schema`. :func:`envelope` gives the key, headers,
record timestamp and earliest delivery time of a release, from the released view and the policy only.
:func:`load_policies` refuses a set of policies with an escape route (:func:`check_escape_routes`: a
withheld or coarsened fact that comes back through another field, which rule matched, or a value two
partners could join their copies of a record on; :func:`linkable_fields` lists the latter).
"""

from release.compiler import load_policies, load_policy
from release.decision import decide, released_key
from release.envelope import HEADERS, Envelope, envelope
from release.errors import MissingSecret, PolicyError, PolicyErrors
from release.escapes import check_escape_routes, escape_routes
from release.linkable import LinkableField, linkable_fields
from release.model import PARTNER_NAMESPACE_PREFIX, CompiledPolicy, Decision
from release.secretstore import SecretStore, default_secrets_dir

__all__ = [
    "CompiledPolicy",
    "Decision",
    "Envelope",
    "HEADERS",
    "LinkableField",
    "MissingSecret",
    "PARTNER_NAMESPACE_PREFIX",
    "PolicyError",
    "PolicyErrors",
    "SecretStore",
    "check_escape_routes",
    "decide",
    "default_policies_dir",
    "default_secrets_dir",
    "envelope",
    "escape_routes",
    "linkable_fields",
    "load_policies",
    "load_policy",
    "released_key",
]


def default_policies_dir():
    """``<deploy_dir>/policies`` of the liaison settings."""
    from core.settings import get_settings

    return get_settings().deploy_dir / "policies"

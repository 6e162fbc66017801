"""The release decision: which partner gets what of each liaison record. Pure code, no Kafka.

A partner's policy (``deploy/policies/<PARTNER>.yaml``) is validated against the writer schemas
and compiled once (:func:`load_policies`); :func:`decide` then releases or withholds one record
for one partner and, on release, returns the partner's view of it: an allow-list projection
whose schema is :meth:`CompiledPolicy.derived_schema`.
"""

from release.compiler import load_policies, load_policy
from release.decision import decide, released_key
from release.errors import MissingSecret, PolicyError
from release.model import PARTNER_NAMESPACE_PREFIX, CompiledPolicy, Decision
from release.secretstore import SecretStore, default_secrets_dir

__all__ = [
    "CompiledPolicy",
    "Decision",
    "MissingSecret",
    "PARTNER_NAMESPACE_PREFIX",
    "PolicyError",
    "SecretStore",
    "decide",
    "default_policies_dir",
    "default_secrets_dir",
    "load_policies",
    "load_policy",
    "released_key",
]


def default_policies_dir():
    """``<deploy_dir>/policies`` of the liaison settings."""
    from core.settings import get_settings

    return get_settings().deploy_dir / "policies"

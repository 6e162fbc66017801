"""deploy/acls.yaml, the producers: each writes its component's internal topics, and `liaison publish` runs its
transaction under transactional ids of its own component that no other principal may use."""

from __future__ import annotations

import pytest

from core import REPO_ROOT
from deploy.acl import Acl, load_acls
from producers.publisher import TRANSACTIONAL_ID_PREFIX, transactional_id

ACLS = REPO_ROOT / "deploy" / "acls.yaml"


@pytest.fixture(scope="module")
def declared() -> set[Acl]:
    return load_acls(ACLS)


@pytest.mark.parametrize("component", ["naval", "air", "intel"])
def test_a_producer_writes_its_topics_under_its_own_transactional_ids_and_nothing_else(declared, component):
    me = f"producer-{component}"
    assert {a for a in declared if a.principal == me} == {
        Acl(me, "topic", f"liaison.internal.{component}.", "prefixed", "WRITE"),
        Acl(me, "topic", f"liaison.internal.{component}.", "prefixed", "DESCRIBE"),
        # `liaison publish`: one transaction per file, transactional id liaison-publish-<component>-<hex>
        Acl(me, "transactional_id", f"{TRANSACTIONAL_ID_PREFIX}{component}-", "prefixed", "WRITE"),
        Acl(me, "transactional_id", f"{TRANSACTIONAL_ID_PREFIX}{component}-", "prefixed", "DESCRIBE"),
    }
    txn_id = transactional_id(component)
    assert txn_id.startswith(f"liaison-publish-{component}-") and txn_id != transactional_id(component)
    # no other principal's transactional-id ACL matches it (another producer's prefix, the forwarder's)
    assert {a.principal for a in declared if a.resource == "transactional_id" and txn_id.startswith(a.name)} == {me}

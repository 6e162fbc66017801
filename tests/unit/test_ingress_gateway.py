"""The ingress guard's principal at the registry gateway: a service principal (the whole API), as it needs to list
the inbound subjects' versions and register the partner-origin and audit schemas."""

from deploy.infra.gateway.policy import authorize, is_partner


def test_ingress_is_a_service_principal():
    assert not is_partner("ingress")
    for method, path in (("GET", "/apis/ccompat/v7/subjects/liaison.inbound.rus.air.track-value/versions"),
                         ("GET", "/apis/ccompat/v7/subjects/liaison.inbound.rus.air.track-value/versions/1"),
                         ("POST", "/apis/ccompat/v7/subjects/liaison.origin.rus.air.track-value/versions"),
                         ("PUT", "/apis/ccompat/v7/config/liaison.audit.ingress-value")):
        d = authorize("ingress", method, path)
        assert d.allow and "service principal" in d.reason, (method, path, d)

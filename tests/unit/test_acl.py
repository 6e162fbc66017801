"""deploy/acls.yaml: what each principal may do (partner isolation above all), file errors, the apply plan."""

from __future__ import annotations

import pytest

from core import REPO_ROOT
from deploy.acl import Acl, AclError, from_binding, load_acls, plan, principals, to_binding

ACLS = REPO_ROOT / "deploy" / "acls.yaml"


@pytest.fixture(scope="module")
def declared() -> set[Acl]:
    return load_acls(ACLS)


def of(acls, principal):
    return {a for a in acls if a.principal == principal}


def test_every_principal_of_the_brief_is_declared_and_no_super_user(declared):
    assert principals(declared) == ["component-air", "component-intel", "component-naval", "deconflict", "forwarder",
                                    "ingress",
                                    "lag-monitor", "ledger", "operations", "partner-rus", "partner-usa", "producer-air",
                                    "producer-intel", "producer-naval", "registry"]
    assert all(a.permission == "ALLOW" and a.host == "*" for a in declared)


def test_operations_reads_the_audits_and_the_ledger_and_no_data_topic(declared):
    mine = of(declared, "operations")
    reads = {(a.name, a.pattern) for a in mine if a.operation == "READ"}
    assert reads == {("liaison.audit.decisions", "literal"), ("liaison.audit.ingress", "literal"),
                     ("liaison.ledger", "literal")}
    # the lag view: what the lag monitor may describe (its audit prefix: the two audits, literally)
    lag = {(a.resource, a.name, a.pattern) for a in of(declared, "lag-monitor")} - {
        ("topic", "liaison.audit.", "prefixed")} | {("topic", "liaison.audit.decisions", "literal"),
                                                    ("topic", "liaison.audit.ingress", "literal")}
    # + the console's operations session finding its (never joined) group's coordinator
    assert {(a.resource, a.name, a.pattern) for a in mine if a.operation == "DESCRIBE"} == lag | {
        ("topic", "liaison.ledger", "literal"), ("group", "liaison.console.", "prefixed")}
    assert {a.operation for a in mine} == {"READ", "DESCRIBE"}


@pytest.mark.parametrize("code,other", [("rus", "usa"), ("usa", "rus")])
def test_a_partner_reads_its_own_prefix_and_nothing_else(declared, code, other):
    mine = of(declared, f"partner-{code}")
    assert mine == {
        Acl(f"partner-{code}", "topic", f"liaison.partner.{code}.", "prefixed", "READ"),
        Acl(f"partner-{code}", "topic", f"liaison.partner.{code}.", "prefixed", "DESCRIBE"),
        Acl(f"partner-{code}", "group", f"liaison.partner.{code}.", "prefixed", "READ"),
        # what it sends us: its own inbound topics, nothing else
        Acl(f"partner-{code}", "topic", f"liaison.inbound.{code}.", "prefixed", "WRITE"),
        Acl(f"partner-{code}", "topic", f"liaison.inbound.{code}.", "prefixed", "DESCRIBE"),
    }
    # the trailing dot matters: liaison.partner.rus. never matches liaison.partner.rusX...
    assert all(a.name.endswith(".") for a in mine)
    assert not any(other in a.name or "internal" in a.name for a in mine)


@pytest.mark.parametrize("name", ["naval", "air", "intel"])
def test_a_component_reads_its_own_feed_and_nothing_else(declared, name):
    assert of(declared, f"component-{name}") == {
        Acl(f"component-{name}", "topic", f"liaison.component.{name}.", "prefixed", "READ"),
        Acl(f"component-{name}", "topic", f"liaison.component.{name}.", "prefixed", "DESCRIBE"),
        Acl(f"component-{name}", "group", f"liaison.component.{name}.", "prefixed", "READ"),
    }


def test_who_writes_inbound_origin_and_quarantine(declared):
    def writers(prefix):
        return {(a.principal, a.name) for a in declared if a.operation == "WRITE" and a.resource == "topic"
                and (a.name.startswith(prefix) or prefix.startswith(a.name))}
    assert writers("liaison.inbound.") == {("partner-rus", "liaison.inbound.rus."),
                                           ("partner-usa", "liaison.inbound.usa.")}
    assert writers("liaison.origin.") == {("ingress", "liaison.origin.")}
    assert writers("liaison.quarantine.") == {("ingress", "liaison.quarantine.")}
    assert writers("liaison.component.") == {("forwarder", "liaison.component.")}
    assert {a.principal for a in declared if a.operation == "READ" and a.resource == "topic"
            and a.name.startswith("liaison.inbound")} == {"ingress"}


def test_only_a_components_producer_and_nobody_else_writes_its_internal_topics(declared):
    writers = {(a.principal, a.name) for a in declared if a.operation == "WRITE" and a.name.startswith("liaison.internal")}
    assert writers == {("producer-naval", "liaison.internal.naval."), ("producer-air", "liaison.internal.air."),
                       ("producer-intel", "liaison.internal.intel."),
                       ("deconflict", "liaison.internal.deconfliction.alert")}
    # the alerts are a domain of their own: producer-air's prefix does not cover them (an air producer cannot forge one)
    assert not "liaison.internal.deconfliction.alert".startswith("liaison.internal.air.")
    assert all(a.pattern == "prefixed" for a in declared if a.name.startswith("liaison.internal.")
               and a.principal != "deconflict")


def test_deconflict_reads_the_air_plans_and_tracks_of_both_sides_and_writes_its_alerts_and_changelog(declared):
    rw = {(a.resource, a.name, a.pattern, a.operation) for a in of(declared, "deconflict")}
    reads = {"liaison.internal.air.mission-plan", "liaison.internal.air.track", "liaison.origin.rus.air.mission-plan",
             "liaison.origin.rus.air.track", "liaison.origin.usa.air.mission-plan", "liaison.origin.usa.air.track"}
    assert rw == ({("topic", t, "literal", op) for t in reads for op in ("READ", "DESCRIBE")}
                  | {("topic", "liaison.internal.deconfliction.alert", "literal", op) for op in ("WRITE", "DESCRIBE")}
                  | {("topic", "liaison.deconfliction.state", "literal", op) for op in ("READ", "WRITE", "DESCRIBE")}
                  | {("group", "liaison-deconflict", "prefixed", "READ")}
                  | {("transactional_id", "liaison-deconflict-", "prefixed", op) for op in ("WRITE", "DESCRIBE")})
    # literal names only: no prefix over the partner-origin intelligence, nor over any other internal topic
    assert all(a.pattern == "literal" for a in of(declared, "deconflict") if a.resource == "topic")
    # nobody else writes its changelog
    assert {a.principal for a in declared if a.name == "liaison.deconfliction.state" and a.operation == "WRITE"} == {
        "deconflict"}


def test_partner_placeholder_in_a_principals_entry_expands_for_each_partner(tmp_path):
    f = tmp_path / "acls.yaml"
    f.write_text("principals:\n  svc:\n    - {topic: 'liaison.origin.{partner}.air.track', operations: [READ]}\n"
                 "    - {topic: liaison.internal.air.track, operations: [READ]}\n")
    got = load_acls(f, partners=["RUS", "GBR"])
    assert got == {Acl("svc", "topic", "liaison.origin.rus.air.track", "literal", "READ"),
                   Acl("svc", "topic", "liaison.origin.gbr.air.track", "literal", "READ"),
                   Acl("svc", "topic", "liaison.internal.air.track", "literal", "READ")}


def test_only_the_forwarder_writes_partner_audit_dead_letter_and_hold_topics(declared):
    writers = {(a.principal, a.name, a.pattern) for a in declared if a.operation == "WRITE"
               and not a.name.startswith(("liaison.internal", "liaison.inbound", "liaison.origin", "liaison.quarantine",
                                          "liaison.ingress", "liaison.audit.ingress", "liaison.ledger",
                                          "liaison.deconfliction.state"))
               and a.resource == "topic" and a.name.startswith("liaison")}
    assert writers == {("forwarder", "liaison.partner.", "prefixed"),
                       ("forwarder", "liaison.component.", "prefixed"),
                       ("forwarder", "liaison.audit.decisions", "literal"),
                       ("forwarder", "liaison.deadletter", "literal"),
                       ("forwarder", "liaison.hold", "literal")}
    fwd = of(declared, "forwarder")
    assert Acl("forwarder", "transactional_id", "liaison-forwarder-", "prefixed", "WRITE") in fwd
    assert Acl("forwarder", "group", "liaison-forwarder", "prefixed", "READ") in fwd
    assert {a.name for a in fwd if a.operation == "READ" and a.resource == "topic"} == {
        "liaison.internal.", "liaison.origin.", "liaison.hold", "liaison.ledger"}
    # nobody else touches the hold topic: it holds released views not yet due
    assert {a.principal for a in declared if a.resource == "topic" and "liaison.hold".startswith(a.name)
            and a.operation != "DESCRIBE"} == {"forwarder"}


def test_who_reads_internal_topics(declared):
    readers = {a.principal for a in declared if a.operation in ("READ", "ALL") and a.resource == "topic"
               and "liaison.internal.".startswith(a.name)}
    assert readers == {"forwarder"}
    # besides, deconflict reads two of them by name: our air plans and tracks
    assert {(a.principal, a.name) for a in declared if a.operation == "READ" and a.name.startswith("liaison.internal.")
            and a.principal != "forwarder"} == {("deconflict", "liaison.internal.air.mission-plan"), ("deconflict", "liaison.internal.air.track")}
    lag = of(declared, "lag-monitor")  # least privilege: it reads no record, lag in seconds from its own samples
    assert {a.operation for a in lag} == {"DESCRIBE"}


def test_the_lag_monitor_may_describe_every_service_group_and_what_it_consumes(declared):
    lag = of(declared, "lag-monitor")
    groups = {a.name for a in lag if a.resource == "group" and a.pattern == "prefixed"}
    for group in ("liaison-forwarder", "liaison-ingress-rus", "liaison-deconflict", "liaison-ledger",
                  "liaison.partner.rus.officer.x", "liaison.component.air.x"):
        assert any(group.startswith(g) for g in groups), group
    topics = {a.name for a in lag if a.resource == "topic"}
    for topic in ("liaison.internal.air.track", "liaison.hold", "liaison.origin.rus.air.track",
                  "liaison.inbound.rus.air.track", "liaison.audit.decisions", "liaison.audit.ingress"):
        assert any(topic.startswith(t) for t in topics), topic


def test_registry_gets_its_three_topics_and_apicurio_groups_only(declared):
    reg = of(declared, "registry")
    assert {a.name for a in reg if a.resource == "topic"} == {"kafkasql-journal", "kafkasql-snapshots",
                                                                "registry-events"}
    assert {(a.name, a.pattern) for a in reg if a.resource == "group"} == {("apicurio-", "prefixed")}


def test_per_partner_block_expands_for_the_partners_given(tmp_path):
    f = tmp_path / "acls.yaml"
    f.write_text("per_partner:\n  principal: partner-{partner}\n  allow:\n"
                 "    - {topic: 'liaison.partner.{partner}.', pattern: prefixed, operations: [READ]}\n")
    got = load_acls(f, partners=["RUS", "USA", "GBR"])
    assert {a.principal for a in got} == {"partner-rus", "partner-usa", "partner-gbr"}
    assert Acl("partner-gbr", "topic", "liaison.partner.gbr.", "prefixed", "READ") in got


@pytest.mark.parametrize("body,message", [
    ("principals:\n  x:\n    - {topic: t, operations: [READ_ALL]}\n", "unknown operation"),
    ("principals:\n  x:\n    - {topic: t, group: g, operations: [READ]}\n", "exactly one resource"),
    ("principals:\n  x:\n    - {operations: [READ]}\n", "exactly one resource"),
    ("principals:\n  x:\n    - {topic: t, pattern: match, operations: [READ]}\n", "pattern"),
    ("principals:\n  admin:\n    - {topic: t, operations: [READ]}\n", "super user"),
    ("principals:\n  x:\n    - {topic: 'a.{code}.', operations: [READ]}\n", "placeholder"),
    ("principals:\n  x:\n    - {cluster: other, operations: [IDEMPOTENT_WRITE]}\n", "kafka-cluster"),
    ("principal:\n  x: []\n", "principal"),
])
def test_an_invalid_file_names_the_file_and_the_entry(tmp_path, body, message):
    f = tmp_path / "acls.yaml"
    f.write_text(body)
    with pytest.raises(AclError, match=message) as e:
        load_acls(f, partners=[])
    assert str(f) in str(e.value)


def test_plan_creates_the_missing_and_reports_drift_then_nothing_to_do(declared):
    extra = Acl("someone", "topic", "liaison.internal.", "prefixed", "READ")
    missing = sorted(declared)[0]
    p = plan(declared, (declared - {missing}) | {extra})
    assert p.create == [missing] and p.drift == [extra] and p.present == len(declared) - 1
    again = plan(declared, declared)
    assert again.create == [] and again.drift == [] and again.present == len(declared)


def test_bindings_round_trip(declared):
    for a in declared:
        assert from_binding(to_binding(a)) == a
    cluster = Acl("x", "cluster", "kafka-cluster", "literal", "IDEMPOTENT_WRITE")
    assert from_binding(to_binding(cluster)) == cluster

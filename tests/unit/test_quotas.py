"""deploy/quotas.yaml: the partners' client quotas, file errors, the plan, the describe parser, apply on a fake tool."""

from __future__ import annotations

import pytest

from core import REPO_ROOT
from deploy.quotas import (DEFAULT_USER, Change, Drift, QuotaError, apply_quotas, fmt, java_client_properties,
                           load_quotas, parse_describe, plan)

QUOTAS = REPO_ROOT / "deploy" / "quotas.yaml"
MIB = 1024 * 1024


def test_the_shipped_file_bounds_each_partner_of_topics_yaml():
    q = load_quotas(QUOTAS)
    assert set(q) == {"partner-rus", "partner-usa"}  # deploy/topics.yaml partners: [RUS, USA]
    for values in q.values():
        assert values == {"producer_byte_rate": 1 * MIB, "consumer_byte_rate": 4 * MIB, "request_percentage": 25.0}


def _file(tmp_path, text: str, partners=("RUS", "USA")):
    (tmp_path / "topics.yaml").write_text(f"partners: [{', '.join(partners)}]\n")
    f = tmp_path / "quotas.yaml"
    f.write_text(text)
    return f


def test_overrides_replace_single_keys_for_one_partner(tmp_path):
    f = _file(tmp_path, "per_partner:\n  defaults: {producer_byte_rate: 1048576, request_percentage: 25}\n"
                        "  overrides:\n    USA: {producer_byte_rate: 2097152, consumer_byte_rate: 8388608}\n")
    assert load_quotas(f) == {
        "partner-rus": {"producer_byte_rate": 1048576.0, "request_percentage": 25.0},
        "partner-usa": {"producer_byte_rate": 2097152.0, "request_percentage": 25.0, "consumer_byte_rate": 8388608.0},
    }
    # partners given explicitly win over topics.yaml
    assert set(load_quotas(f, partners=["USA", "GBR"])) == {"partner-usa", "partner-gbr"}


@pytest.mark.parametrize("text,needle", [
    ("per_partner:\n  defaults: {producer_rate: 1048576}\n", "producer_rate"),
    ("per_partner:\n  defaults: {producer_byte_rate: -1}\n", "producer_byte_rate"),
    ("per_partner:\n  defaults: {producer_byte_rate: 10}\n", "greater than or equal to 1024"),
    ("per_partner:\n  defaults: {request_percentage: 0}\n", "request_percentage"),
    ("per_partner:\n  defaults: {producer_byte_rate: lots}\n", "producer_byte_rate"),
    ("per_partner:\n  defaults: {}\n", "at least one of"),
    ("per_partner:\n  defaults: {producer_byte_rate: 1048576}\n  overrides: {FRA: {producer_byte_rate: 2048}}\n",
     "FRA: not a partner"),
    ("per_partner:\n  defaults: {producer_byte_rate: 1048576}\n  overrides: {usa: {producer_byte_rate: 2048}}\n",
     "three upper-case letters"),
    ("per_partner:\n  principal: partner-x\n  defaults: {producer_byte_rate: 1048576}\n", "must contain {partner}"),
    ("per_partner:\n  principal: p-{component}-{partner}\n  defaults: {producer_byte_rate: 1048576}\n",
     "only the {partner}"),
    ("per_partner:\n  defaults: {producer_byte_rate: 1048576}\nextra: 1\n", "extra"),
    ("{}\n", "per_partner"),
    ("per_partner: [\n", "not valid YAML"),
])
def test_an_invalid_file_is_one_line_naming_file_and_entry(tmp_path, text, needle):
    f = _file(tmp_path, text)
    with pytest.raises(QuotaError) as e:
        load_quotas(f)
    msg = str(e.value)
    assert "\n" not in msg.strip() and str(f) in msg and needle in msg, msg


DECLARED = {"partner-rus": {"producer_byte_rate": 1048576.0, "request_percentage": 25.0},
            "partner-usa": {"producer_byte_rate": 1048576.0, "request_percentage": 25.0}}


def test_plan_sets_what_is_missing_or_different_and_reports_drift():
    on_broker = {"partner-rus": {"producer_byte_rate": 1048576.0, "request_percentage": 50.0,
                                 "consumer_byte_rate": 1024.0},
                 "forwarder": {"producer_byte_rate": 9999999.0}}
    p = plan(DECLARED, on_broker)
    assert p.set == [Change("partner-rus", "request_percentage", 25.0, 50.0),
                     Change("partner-usa", "producer_byte_rate", 1048576.0, None),
                     Change("partner-usa", "request_percentage", 25.0, None)]
    assert p.drift == [Drift("forwarder", "producer_byte_rate", 9999999.0),
                       Drift("partner-rus", "consumer_byte_rate", 1024.0)]
    assert p.present == 1
    assert str(p.set[0]) == "User:partner-rus request_percentage=25 (was 50)"
    assert str(p.set[1]) == "User:partner-usa producer_byte_rate=1048576 (was unset)"
    # one --alter per user: its keys to add, and with prune the keys to delete
    assert p.alters() == {"partner-rus": ({"request_percentage": 25.0}, []),
                          "partner-usa": ({"producer_byte_rate": 1048576.0, "request_percentage": 25.0}, [])}
    assert p.alters(prune=True)["partner-rus"] == ({"request_percentage": 25.0}, ["consumer_byte_rate"])
    assert p.alters(prune=True)["forwarder"] == ({}, ["producer_byte_rate"])


def test_plan_of_a_broker_as_declared_is_empty():
    p = plan(DECLARED, {k: dict(v) for k, v in DECLARED.items()})
    assert (p.set, p.drift, p.present) == ([], [], 4)
    assert plan({}, {}).present == 0


DESCRIBE = """\
Quota configs for user-principal 'partner-rus' are request_percentage=25.0, producer_byte_rate=1048576.0
SCRAM credential configs for user-principal 'partner-rus' are SCRAM-SHA-512=iterations=4096
Quota configs for user-principal 'partner-usa' are consumer_byte_rate=4194304.0
Quota configs for user-principal 'emptied' are
Quota configs for the default user-principal are producer_byte_rate=2097152.0
SCRAM credential configs for user-principal 'admin' are SCRAM-SHA-512=iterations=4096
"""


def test_parse_describe_reads_user_quotas_and_ignores_credentials():
    assert parse_describe(DESCRIBE) == {
        "partner-rus": {"request_percentage": 25.0, "producer_byte_rate": 1048576.0},
        "partner-usa": {"consumer_byte_rate": 4194304.0},
        DEFAULT_USER: {"producer_byte_rate": 2097152.0},
    }
    assert parse_describe("") == {}


def test_values_are_written_as_configcommand_takes_them():
    assert fmt(1048576.0) == "1048576" and fmt(25.0) == "25" and fmt(12.5) == "12.5"


def test_command_config_properties_from_the_admin_client_settings():
    text = java_client_properties({"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
                                   "sasl.username": "admin", "sasl.password": 'p"w\\x', "ssl.ca.location": "/s/ca.pem"})
    assert text.splitlines() == [
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-512",
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
        'password="p\\\\"w\\\\\\\\x";',
        "ssl.truststore.type=PEM",
        "ssl.truststore.location=/s/ca.pem",
    ]
    assert java_client_properties({}) == "security.protocol=PLAINTEXT\n"


class FakeTool:
    """The broker's user quotas in a dict; records each --alter."""

    def __init__(self, quotas=None):
        self.quotas = {k: dict(v) for k, v in (quotas or {}).items()}
        self.alters: list[tuple[str, dict, list]] = []

    def describe(self):
        return {k: dict(v) for k, v in self.quotas.items() if v}

    def alter(self, principal, add, delete=()):
        self.alters.append((principal, dict(add), sorted(delete)))
        q = self.quotas.setdefault(principal, {})
        q.update(add)
        for k in delete:
            q.pop(k, None)


def test_apply_is_idempotent_and_prunes_only_when_asked():
    tool = FakeTool({"partner-rus": {"producer_byte_rate": 2048.0}, "ingress": {"request_percentage": 10.0},
                     DEFAULT_USER: {"producer_byte_rate": 4096.0}})
    p, pruned = apply_quotas(DECLARED, tool, dry_run=True)
    assert len(p.set) == 4 and tool.alters == [] and pruned == []
    p, pruned = apply_quotas(DECLARED, tool)
    assert [a[0] for a in tool.alters] == ["partner-rus", "partner-usa"] and pruned == []
    assert tool.quotas["partner-rus"] == DECLARED["partner-rus"]
    assert len(p.drift) == 2  # ingress and the default user, kept
    tool.alters.clear()
    p, _ = apply_quotas(DECLARED, tool)
    assert tool.alters == [] and p.set == [] and p.present == 4
    # prune removes what the file does not declare, but never the default user entity
    p, pruned = apply_quotas(DECLARED, tool, prune=True)
    assert pruned == [Drift("ingress", "request_percentage", 10.0)]
    assert tool.alters == [("ingress", {}, ["request_percentage"])]
    assert tool.describe() == {**DECLARED, DEFAULT_USER: {"producer_byte_rate": 4096.0}}

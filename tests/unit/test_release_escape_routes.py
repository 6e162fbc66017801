"""`policy check` (load_policies) refuses escape routes: a field giving a transformed one back, rules the
partner can tell apart, a rule without a released time, values two partners could join their copies on;
unless the rule acknowledges the route with a reason. The shipped policies have none."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import REPO_ROOT
from release import PolicyError, PolicyErrors, escape_routes, linkable_fields, load_policies, load_policy
from release.cli import app

pytestmark = pytest.mark.unit

POLICY_DIR = REPO_ROOT / "deploy" / "policies"


def header(partner: str = "RUS") -> str:
    return textwrap.dedent(f"""\
        partner: {partner}
        classification_ceiling: SECRET
        label:
          classification: keep
          created_at: keep
        """)


def write(directory: Path, body: str, partner: str = "RUS") -> str:
    directory.mkdir(parents=True, exist_ok=True)
    text = header(partner) + textwrap.dedent(body)
    (directory / f"{partner}.yaml").write_text(text, encoding="utf-8")
    return text


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return hits[occurrence - 1]


def refused(directory: Path) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policies(directory)
    return info.value


# --------------------------------------------------------------------------- precision

STRIKE = """\
    rules:
      StrikeReport:
        - id: strike
          fields:
            strike_id: keep
            time: {bucket: {seconds: 3600}}
            position: {coarsen: {grid_deg: 0.1}}
    """


def test_created_at_kept_next_to_a_bucketed_time_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = write(tmp_path / "pol", STRIKE)
    err = refused(tmp_path / "pol")
    assert err.file == "pol/RUS.yaml"
    assert err.line == line_of(text, "fields:")
    assert err.path == "rules.StrikeReport.0.fields.label.created_at"
    assert str(err).startswith(f"pol/RUS.yaml:{err.line}: rules.StrikeReport.0.fields.label.created_at: "
                               "rule 'strike': label.created_at is exact next to time bucketed to 3600 s: it gives "
                               "the bucketed time back")
    assert "acknowledge: {precision: {label.created_at: <reason>}}" in err.message
    # one file alone still compiles: escape routes are a property of the policy set
    assert load_policy(tmp_path / "pol" / "RUS.yaml").partner == "RUS"
    assert load_policies(tmp_path / "pol", escape_routes=False)


@pytest.mark.parametrize("created_at, ok", [
    ("{bucket: {seconds: 3600}}", True),
    ("drop", True),
    ("{bucket: {seconds: 60}}", False),      # finer than the time's bucket
])
def test_created_at_transformed_as_strictly_as_the_time(tmp_path, created_at, ok):
    write(tmp_path, STRIKE.replace("strike_id: keep", f"strike_id: keep\n            label.created_at: {created_at}"))
    if ok:
        assert load_policies(tmp_path)
    else:
        assert "label.created_at is bucketed to 60 s next to time bucketed to 3600 s" in refused(tmp_path).message


def test_a_time_inside_a_kept_record_next_to_a_bucketed_one(tmp_path):
    text = write(tmp_path, """\
        rules:
          AirMissionPlan:
            - id: plan
              fields:
                label.created_at: drop
                callsign: keep
                time_windows.start: {bucket: {seconds: 900}}
                route: keep
        """)
    err = refused(tmp_path)
    assert err.line == line_of(text, "route: keep") and err.path == "rules.AirMissionPlan.0.fields.route"
    assert "route.eta is exact next to time_windows.start bucketed to 900 s" in err.message


def test_precision_acknowledged_with_a_reason_passes_and_an_idle_one_is_refused(tmp_path):
    ack = STRIKE.replace("          fields:", "          acknowledge:\n"
                         "            precision: {label.created_at: \"reports are filed at the end of the shift\"}\n"
                         "          fields:")
    write(tmp_path, ack)
    assert load_policies(tmp_path)
    text = write(tmp_path, ack.replace("strike_id: keep", "strike_id: keep\n            label.created_at: drop"))
    err = refused(tmp_path)
    assert err.path == "rules.StrikeReport.0.acknowledge.precision.label.created_at"
    assert err.line == line_of(text, "precision:") and "nothing to acknowledge" in err.message


def test_a_reason_must_say_why(tmp_path):
    write(tmp_path, STRIKE.replace("          fields:", "          acknowledge: {precision: {label.created_at: ok}}\n"
                                   "          fields:"))
    err = refused(tmp_path)
    assert err.path == "rules.StrikeReport.0.acknowledge.precision" and "a reason must say why" in err.message


def test_exact_value_next_to_a_pseudonym_of_the_same_name(tmp_path):
    text = write(tmp_path, """\
        rules:
          AirTrack:
            - id: track
              fields: {track_id: keep, time: keep, sortie_id: pseudonymise}
          StrikeReport:
            - id: strike
              fields: {strike_id: keep, time: keep, sortie_id: keep}
        """)
    err = refused(tmp_path)
    assert err.line == line_of(text, "sortie_id: keep") and err.path == "rules.StrikeReport.0.fields.sortie_id"
    assert ("StrikeReport.sortie_id is released exact while AirTrack.sortie_id (rule track) is pseudonymised"
            in err.message)


def test_a_rule_that_releases_no_time(tmp_path):
    (tmp_path / "RUS.yaml").write_text(header().replace("  created_at: keep\n", "") + textwrap.dedent("""\
        rules:
          StrikeReport:
            - id: strike
              fields: {strike_id: keep}
        """), encoding="utf-8")
    err = refused(tmp_path)
    assert err.path == "rules.StrikeReport.0.fields"
    assert "rule 'strike' releases no time of StrikeReport: the record timestamp would be the forwarding time" \
        in err.message


# --------------------------------------------------------------------------- distinguishable rules

TWO_RULES = """\
    sets:
      designated: [daesh]
    rules:
      ForeignFighterReport:
        - id: ff-designated
          when: [{field: affiliation, in_set: designated}]
          fields:
            report_id: pseudonymise
            affiliation: keep
            last_known_area: keep
            time: keep
        - id: ff-other
          fields:
            report_id: pseudonymise
            time: keep
    """


def test_rules_the_partner_can_tell_apart_are_refused(tmp_path):
    text = write(tmp_path, TWO_RULES)
    err = refused(tmp_path)
    assert err.path == "rules.ForeignFighterReport.1.fields"
    assert err.line == line_of(text, "fields:", 2)
    assert err.message.startswith(f"rules 'ff-designated' (line {line_of(text, '- id: ff-designated')}) and "
                                  "'ff-other' of ForeignFighterReport release different views: affiliation, "
                                  "last_known_area.name, last_known_area.center, last_known_area.radius_km released "
                                  "by ff-designated only (null from ff-other): the partner can tell which rule matched")


def test_another_transform_or_record_timestamp_also_tells_the_rule(tmp_path):
    body = """\
        rules:
          StrikeReport:
            - id: exact
              fields: {strike_id: keep, time: keep}
            - id: coarse
              fields: {strike_id: keep, time: {bucket: {seconds: 86400}}, label.created_at: drop}
        """
    write(tmp_path, body)
    message = refused(tmp_path).message
    assert "label.created_at released by exact only (null from coarse)" in message
    assert "time exact by exact, bucketed to 86400 s by coarse" in message
    write(tmp_path, """\
        rules:
          StrikeReport:
            - id: one
              fields: {strike_id: keep, time: keep}
            - id: two
              timestamp: label.created_at
              fields: {strike_id: keep, time: keep}
        """)
    assert "record timestamp from time by one, from label.created_at by two" in refused(tmp_path).message


def test_distinguishable_acknowledged_passes_and_an_idle_one_is_refused(tmp_path):
    acked = TWO_RULES.replace("        - id: ff-other\n", "        - id: ff-other\n          acknowledge:\n"
                              "            distinguishable: \"the partner is told the designation list anyway\"\n")
    write(tmp_path, acked)
    assert load_policies(tmp_path)
    same = acked.replace("            affiliation: keep\n            last_known_area: keep\n", "")
    text = write(tmp_path, same)
    err = refused(tmp_path)
    assert err.path == "rules.ForeignFighterReport.1.acknowledge.distinguishable"
    assert err.line == line_of(text, "distinguishable:") and "nothing to acknowledge" in err.message


# --------------------------------------------------------------------------- linkable across partners

FF = """\
    sets:
      designated: [daesh]
    rules:
      ForeignFighterReport:
        - id: ff-{p}
          when: [{{field: affiliation, in_set: designated}}]
          {ack}fields:
            label.created_at: {created}
            report_id: pseudonymise
            subject.subject_ref: pseudonymise
            affiliation: keep
            time: {time}
    """


def two_partners(directory: Path, rus: dict, usa: dict) -> dict[str, str]:
    texts = {}
    for partner, opts in (("RUS", rus), ("USA", usa)):
        values = {"p": partner.lower(), "ack": "", "created": "keep", "time": "keep", **opts}
        texts[partner] = write(directory, FF.format(**values), partner)
    return texts


ACK_TIME = ("acknowledge:\n            linkable:\n              time: \"the exact time is the substance of it\"\n"
            "              label.created_at: \"the exact time is the substance of it\"\n          ")


def test_a_record_unique_value_both_partners_receive_is_refused_in_both_files(tmp_path):
    texts = two_partners(tmp_path, {}, {})
    err = refused(tmp_path)
    assert isinstance(err, PolicyErrors) and [e.file.rsplit("/", 1)[-1] for e in err.errors] == ["RUS.yaml", "USA.yaml"]
    rus = err.errors[0]
    assert [p[1] for p in rus.problems] == ["rules.ForeignFighterReport.0.fields.label.created_at",
                                            "rules.ForeignFighterReport.0.fields.time"]
    time = rus.problems[1]
    assert time[0] == line_of(texts["RUS"], "time: keep")
    assert time[2].startswith("rule 'ff-rus': ForeignFighterReport.time reaches both RUS and USA exact (USA: rule ff-usa at ")
    assert "the two partners could join their copies" in time[2]
    table = linkable_fields(load_policies(tmp_path, escape_routes=False))
    fields = table[("RUS", "USA")]["ForeignFighterReport"]
    assert set(fields) == {"label.created_at", "time"}          # pseudonyms and a pinned field never link
    assert not fields["time"].deliberate and fields["time"].unacknowledged == (("RUS", "ff-rus"), ("USA", "ff-usa"))


def test_acknowledged_in_one_policy_only_is_refused_in_the_other(tmp_path):
    two_partners(tmp_path, {"ack": ACK_TIME}, {})
    err = refused(tmp_path)
    assert not isinstance(err, PolicyErrors) and err.file.endswith("USA.yaml")
    assert {p[1] for p in err.problems} == {"rules.ForeignFighterReport.0.fields.label.created_at",
                                            "rules.ForeignFighterReport.0.fields.time"}


def test_acknowledged_in_both_passes_and_is_listed_as_deliberate(tmp_path):
    two_partners(tmp_path, {"ack": ACK_TIME}, {"ack": ACK_TIME})
    fields = linkable_fields(load_policies(tmp_path))[("RUS", "USA")]["ForeignFighterReport"]
    assert fields["time"].deliberate and fields["time"].reasons["RUS"] == ("the exact time is the substance of it",)


def test_bucketed_to_a_day_in_one_policy_no_longer_links(tmp_path):
    day = "{bucket: {seconds: 86400}}"
    two_partners(tmp_path, {"created": day, "time": day}, {})
    policies = load_policies(tmp_path)
    assert linkable_fields(policies)[("RUS", "USA")]["ForeignFighterReport"] == {}
    two_partners(tmp_path, {"created": "{bucket: {seconds: 3600}}", "time": "{bucket: {seconds: 3600}}"}, {})
    assert "reaches both RUS and USA bucketed to 3600 s" in str(refused(tmp_path))


# --------------------------------------------------------------------------- the shipped policies


def test_the_shipped_policies_have_no_escape_route():
    policies = load_policies(POLICY_DIR)
    assert all(escape_routes(p) == [] for p in policies.values())
    result = CliRunner().invoke(app, ["check", str(POLICY_DIR)])
    assert result.exit_code == 0, result.stderr


def test_shipped_foreign_fighter_reports_share_nothing_that_is_not_deliberate():
    table = linkable_fields(load_policies(POLICY_DIR))
    fields = table[("RUS", "USA")]["ForeignFighterReport"]
    assert all(lf.deliberate for lf in fields.values())
    assert set(fields) == {"subject.nationality", "subject.languages"}     # ISO codes, acknowledged in both
    for lf in fields.values():
        assert lf.reasons["RUS"] and lf.reasons["USA"]
    # and every other shared field of every type is deliberate too
    assert all(lf.deliberate for types in table.values() for fs in types.values() for lf in fs.values())


def test_check_linkable_lists_the_fields():
    result = CliRunner().invoke(app, ["check", str(POLICY_DIR), "--linkable"])
    assert result.exit_code == 0, result.stderr
    assert "RUS + USA" in result.stdout and "NOT DELIBERATE" not in result.stdout
    ff = result.stdout.split("  ForeignFighterReport:\n")[1].split("\n  LogisticsObservation")[0]
    assert "subject.nationality" in ff and "deliberate" in ff and "time" not in ff.split("RUS:")[0]
    result = CliRunner().invoke(app, ["check", str(POLICY_DIR), "--linkable", "--json"])
    assert result.exit_code == 0 and '"field": "subject.languages"' in result.stdout


# --------------------------------------------------------------------------- nullable: keep a field optional


def test_nullable_keeps_a_field_optional_in_the_derived_schema(tmp_path):
    body = """\
        rules:
          AirTrack:
            - id: track
              nullable: [callsign]
              fields:
                track_id: keep
                callsign: keep
                time: keep
        """
    write(tmp_path, body)
    fields = {f["name"]: f for f in load_policy(tmp_path / "RUS.yaml").derived_schema("AirTrack")["fields"]}
    assert fields["callsign"]["type"] == ["null", "string"] and fields["callsign"]["default"] is None
    assert fields["track_id"]["type"] == "string"  # the others stay required


def test_nullable_naming_a_field_no_rule_releases_is_refused(tmp_path):
    body = """\
        rules:
          AirTrack:
            - id: track
              nullable: [speed_kt]
              fields:
                track_id: keep
                time: keep
        """
    text = write(tmp_path, body)
    with pytest.raises(PolicyError) as e:
        load_policy(tmp_path / "RUS.yaml")
    assert f"RUS.yaml:{line_of(text, 'nullable')}: rules.AirTrack.0.nullable.0: 'speed_kt' is not a field" in str(e.value)

"""Invalid policy files are rejected with file, line and field path of each problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from release import MissingSecret, PolicyError, SecretStore, load_policies, load_policy

pytestmark = pytest.mark.unit

#: A small valid policy; each test breaks one thing. Lines are found by content, not hard-coded.
VALID = textwrap.dedent("""\
    # test policy
    partner: RUS
    classification_ceiling: CONFIDENTIAL
    sets:
      designated: [daesh]
    label:
      classification: keep
      message_id: keep
      releasable_to: drop
    rules:
      StrikeReport:
        - id: strike
          when:
            - {field: group_id, in_set: designated}
          fields:
            strike_id: keep
            time: {bucket: {seconds: 3600}}
            position: {coarsen: {grid_deg: 0.1}}
            weapon: drop
      AirMissionPlan:
        - id: plan
          fields:
            callsign: keep
            route: keep
            status: keep
      ForeignFighterReport:
        - id: ff
          when:
            - any:
                - {field: subject.nationality, contains_any: [RUS]}
                - {field: subject.languages, contains_any: [ru]}
          fields:
            subject.subject_ref: pseudonymise
            subject.name: drop
            time: keep
    """)


def write(tmp_path: Path, text: str, name: str = "RUS.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    found = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            found += 1
            if found == occurrence:
                return number
    raise AssertionError(f"{fragment!r} not in text")


def broken(tmp_path: Path, old: str, new: str) -> tuple[str, PolicyError]:
    assert old in VALID, old
    text = VALID.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return text, info.value


def test_the_base_policy_is_valid(tmp_path):
    policy = load_policy(write(tmp_path, VALID))
    assert policy.partner == "RUS"
    assert policy.types == ("AirMissionPlan", "StrikeReport", "ForeignFighterReport")


def test_unknown_action_names_file_line_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    text, err = broken(tmp_path, "weapon: drop", "weapon: kep")
    line = line_of(text, "weapon: kep")
    assert err.line == line
    assert err.path == "rules.StrikeReport.0.fields.weapon"
    assert err.file == f"{tmp_path.name}/RUS.yaml"
    assert str(err).startswith(f"{tmp_path.name}/RUS.yaml:{line}: rules.StrikeReport.0.fields.weapon: "
                               f"unknown action 'kep'")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("old, new, marker, path, message", [
    ("classification_ceiling: CONFIDENTIAL", "classification_ceiling: CONFIDENTIAL\nfoo: 1", "foo: 1",
     "foo", "unknown key 'foo'"),
    ("      when:\n        - {field: group_id", "      wen:\n        - {field: group_id", "wen:",
     "rules.StrikeReport.0.wen", "unknown key 'wen'"),
    ("classification_ceiling: CONFIDENTIAL", "classification_ceiling: CONFIDENTAL", "CONFIDENTAL",
     "classification_ceiling", "Input should be"),
    ("partner: RUS", "partner: rus", "partner: rus", "partner", "must match"),
    ("position: {coarsen: {grid_deg: 0.1}}", "position: {coarsen: {grid_deg: -1}}", "grid_deg: -1",
     "rules.StrikeReport.0.fields.position", "coarsen.grid_deg must be a number >= 1e-06"),
    ("position: {coarsen: {grid_deg: 0.1}}", "position: {coarsen: {grid: 0.1}}", "grid: 0.1",
     "rules.StrikeReport.0.fields.position", "unknown key(s) ['grid'] in coarsen"),
    ("time: {bucket: {seconds: 3600}}", "time: bucket", "time: bucket",
     "rules.StrikeReport.0.fields.time", "needs a parameter"),
    ("        - {field: group_id, in_set: designated}", "        - {field: group_id, in_set: designated, equals: daesh}",
     "equals: daesh", "rules.StrikeReport.0.when.0", "exactly one operator"),
    ("        - {field: group_id, in_set: designated}", "        - {in_set: designated}",
     "- {in_set: designated}", "rules.StrikeReport.0.when.0", "'in_set' needs a 'field'"),
    ("    - id: strike\n", "    - id: Strike Rule\n", "Strike Rule", "rules.StrikeReport.0.id", "must match"),
])
def test_shape_errors(tmp_path, old, new, marker, path, message):
    text, err = broken(tmp_path, old, new)
    assert err.line == line_of(text, marker), str(err)
    assert err.path == path, str(err)
    assert message in err.message, str(err)
    assert str(err).startswith(f"{err.file}:{err.line}: {path}: ")


@pytest.mark.parametrize("old, new, marker, path, message", [
    # field paths checked against the writer schema
    ("weapon: drop", "weapn: drop", "weapn: drop", "rules.StrikeReport.0.fields.weapn",
     "unknown field 'weapn' in StrikeReport (did you mean 'weapon'?)"),
    ("subject.name: drop", "subject.nam: drop", "subject.nam:", "rules.ForeignFighterReport.0.fields.subject.nam",
     "unknown field 'subject.nam'"),
    ("{field: group_id, in_set", "{field: group, in_set", "field: group,", "rules.StrikeReport.0.when.0.field",
     "unknown field 'group'"),
    ("{field: subject.languages, contains_any", "{field: subject.language, contains_any", "subject.language,",
     "rules.ForeignFighterReport.0.when.0.any.1.field", "unknown field 'subject.language'"),
    ("  releasable_to: drop", "  releaseable_to: drop", "releaseable_to", "label.releaseable_to",
     "unknown field 'releaseable_to' in SecurityLabel"),
    # actions that do not fit the type
    ("strike_id: keep", "strike_id: {coarsen: {grid_deg: 0.1}}", "strike_id:", "rules.StrikeReport.0.fields.strike_id",
     "coarsen needs a Position record"),
    ("strike_id: keep", "strike_id: {bucket: {seconds: 60}}", "strike_id:", "rules.StrikeReport.0.fields.strike_id",
     "bucket needs a timestamp, 'strike_id' is string"),
    ("time: {bucket: {seconds: 3600}}", "time: pseudonymise", "time: pseudonymise",
     "rules.StrikeReport.0.fields.time", "pseudonymise needs a string"),
    ("status: keep", "status: pseudonymise", "status: pseudonymise", "rules.AirMissionPlan.0.fields.status",
     "pseudonymise needs a string, 'status' is enum MissionStatus"),
    ("  message_id: keep", "  message_id: pseudonymise", "message_id: pseudonymise", "label.message_id",
     "pseudonymise needs a string, 'label.message_id' is string/uuid"),
    # sets
    ("in_set: designated}", "in_set: designatd}", "designatd", "rules.StrikeReport.0.when.0.in_set",
     "undefined set 'designatd' (did you mean 'designated'?)"),
    ("  designated: [daesh]", "  designated: [daesh]\n  partners: [hts]", "partners: [hts]", "sets.partners",
     "set 'partners' is defined but no condition uses it"),
    # types and ids
    ("  AirMissionPlan:", "  AirMisionPlan:", "AirMisionPlan:", "rules.AirMisionPlan",
     "unknown message type 'AirMisionPlan' (did you mean 'AirMissionPlan'?)"),
    ("    - id: plan", "    - id: strike  # again", "- id: strike  # again", "rules.AirMissionPlan.0.id",
     "duplicate rule id 'strike' (first at line 12)"),
    ("    - id: plan", "    - id: default-deny", "- id: default-deny", "rules.AirMissionPlan.0.id",
     "reserved"),
    # nesting
    ("        route: keep", "        route: drop\n        route.position: keep", "route.position: keep",
     "rules.AirMissionPlan.0.fields.route.position", "cannot keep 'route.position': its parent 'route' is dropped"),
    ("        route: keep", "        route.position: {coarsen: {grid_deg: 1}}\n        route.position.lat: keep",
     "route.position.lat", "rules.AirMissionPlan.0.fields.route.position.lat", "coarsened as a whole"),
    ("        callsign: keep", "        label: keep", "label: keep", "rules.AirMissionPlan.0.fields.label",
     "top-level 'label' section"),
    # conditions that do not fit the field
    ("{field: group_id, in_set: designated}", "{field: group_id, contains_any: [daesh]}", "contains_any: [daesh]",
     "rules.StrikeReport.0.when.0.field", "contains_any needs a field with several values"),
    ("{field: subject.languages, contains_any: [ru]}", "{field: subject.languages, equals: ru}", "equals: ru",
     "rules.ForeignFighterReport.0.when.0.any.1.field", "use contains_any"),
    ("{field: subject.languages, contains_any: [ru]}", "{field: subject.languages, contains_any: [no]}",
     "contains_any: [no]", "rules.ForeignFighterReport.0.when.0.any.1.contains_any.0",
     "YAML reads yes/no/on/off/true/false as booleans"),
    ("{field: group_id, in_set: designated}", "{field: assessed_effect, equals: DESTROY}", "DESTROY",
     "rules.StrikeReport.0.when.0.equals", "'DESTROY' is not a symbol of AssessedEffect"),
    ("{field: group_id, in_set: designated}", "{field: group_id, inside: {lat_min: 1, lat_max: 2, lon_min: 1, lon_max: 2}}",
     "inside:", "rules.StrikeReport.0.when.0.field", "inside needs a Position record"),
    ("{field: group_id, in_set: designated}", "{field: position, inside: {lat_min: 3, lat_max: 2, lon_min: 1, lon_max: 2}}",
     "inside:", "rules.StrikeReport.0.when.0.inside", "lat_min must be below lat_max"),
])
def test_semantic_errors(tmp_path, old, new, marker, path, message):
    text, err = broken(tmp_path, old, new)
    # a mutation may cause a second, genuine problem (e.g. the set it stopped using is now unused)
    matching = [p for p in err.problems if p[1] == path]
    assert len(matching) == 1, str(err)
    line, _, problem = matching[0]
    assert line == line_of(text, marker), str(err)
    assert message in problem, str(err)
    assert f"{err.file}:{line}: {path}: {problem}" in str(err).splitlines()
    assert len(err.problems) <= 2, str(err)


def test_every_problem_is_reported_in_line_order(tmp_path):
    text = VALID.replace("weapon: drop", "weapn: drop").replace("status: keep", "status: {bucket: {seconds: 1}}")
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    err = info.value
    lines = [line for line, _, _ in err.problems]
    assert lines == sorted(lines) and len(lines) == 2
    assert err.line == line_of(text, "weapn") and "weapn" in str(err) and "status" in str(err)
    assert len(str(err).splitlines()) == 2


def test_yaml_level_errors(tmp_path):
    text = VALID.replace("  message_id: keep\n", "  message_id: keep\n  message_id: drop\n")
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert info.value.line == line_of(text, "message_id: drop")
    assert info.value.path == "label.message_id"
    assert "duplicate key 'message_id' (first at line" in str(info.value)

    text = VALID.replace("        strike_id: keep", "        strike_id: [keep")
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert "invalid YAML" in str(info.value) and info.value.line is not None

    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, "label: &l\n  a: keep\nrules:\n  <<: *l\n"))
    assert "merge keys" in str(info.value) and info.value.line == 4

    for empty in ("", "# nothing\n"):
        with pytest.raises(PolicyError, match="empty policy file"):
            load_policy(write(tmp_path, empty))
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, "- a\n- b\n"))
    assert info.value.line == 1


def test_missing_required_keys(tmp_path):
    text = VALID.replace("label:\n  classification: keep\n  message_id: keep\n  releasable_to: drop\n", "")
    assert text != VALID
    with pytest.raises(PolicyError, match="missing required key 'label'"):
        load_policy(write(tmp_path, text))
    text = VALID.replace("      fields:\n        strike_id: keep\n        time: {bucket: {seconds: 3600}}\n"
                         "        position: {coarsen: {grid_deg: 0.1}}\n        weapon: drop\n", "")
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert info.value.path == "rules.StrikeReport.0.fields"
    assert info.value.line == line_of(text, "- id: strike")


def test_partner_must_equal_the_file_name(tmp_path):
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, VALID, name="USA.yaml"))
    assert info.value.path == "partner" and info.value.line == 2
    assert "must equal the file name 'USA'" in str(info.value)


def test_a_rule_that_releases_nothing_but_the_label(tmp_path):
    text, err = broken(tmp_path, "        callsign: keep\n        route: keep\n        status: keep\n",
                       "        base: drop\n")
    assert err.path == "rules.AirMissionPlan.0.fields"
    assert "releases no field of AirMissionPlan besides the label" in str(err)


def test_load_policies_directory_problems(tmp_path):
    with pytest.raises(PolicyError, match="no policy"):
        load_policies(tmp_path)
    with pytest.raises(PolicyError, match="not a directory"):
        load_policies(tmp_path / "missing")
    write(tmp_path, VALID)
    write(tmp_path, VALID.replace("partner: RUS", "partner: USA"), name="USA.yml")
    with pytest.raises(PolicyError, match=r"\.yml"):
        load_policies(tmp_path)
    (tmp_path / "USA.yml").unlink()
    write(tmp_path, VALID.replace("partner: RUS", "partner: USA").replace("weapon: drop", "weapon: kep"), name="USA.yaml")
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    assert info.value.file.endswith("USA.yaml")
    (tmp_path / "USA.yaml").unlink()
    assert set(load_policies(tmp_path)) == {"RUS"}


def test_a_pseudonymising_policy_needs_its_key_when_a_store_is_given(tmp_path):
    path = write(tmp_path, VALID)
    with pytest.raises(MissingSecret, match="RUS"):
        load_policy(path, SecretStore.in_memory({"USA": b"u" * 32}))
    assert load_policy(path, SecretStore.in_memory({"RUS": b"r" * 32})).has_key
    no_store = load_policy(path)
    assert no_store.pseudonymises and not no_store.has_key

"""`liaison policy check` and `liaison policy explain` (the typer app of release.cli)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from release.cli import app
from core import REPO_ROOT
from schemas.examples import example, examples

pytestmark = pytest.mark.unit

POLICY_DIR = REPO_ROOT / "deploy" / "policies"
runner = CliRunner()


def line(type_name: str, value: dict | None = None) -> str:
    value = value if value is not None else example(type_name).model_dump(mode="json")
    return json.dumps({"type": type_name, "value": value})


def explain(tmp_path: Path, partner: str, text: str, *extra: str):
    args = ["explain", "--partner", partner, "--policies", str(POLICY_DIR), "--secrets", str(tmp_path / "secrets"),
            *extra]
    return runner.invoke(app, args, input=text)


def outputs(result) -> list[dict]:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return [json.loads(x) for x in result.stdout.splitlines()]


# --------------------------------------------------------------------------- check


def test_check_describes_the_demo_policies():
    result = runner.invoke(app, ["check", str(POLICY_DIR)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "5 valid policies (RUS, USA, air, intel, naval)" in out
    rus, usa = out.split("\nUSA ")
    assert "ceiling CONFIDENTIAL" in rus and "set designated: daesh" in rus
    assert "rule rus-strike-designated  when group_id in set designated" in rus
    assert "position to 0.1 deg grid" in rus and "time to 3600 s" in rus and "position to 0.05 deg grid" in rus
    assert "pseudonymised: report_id, subject.subject_ref" in rus
    assert "subject.name" in rus and "source_type" in rus
    assert "set designated: al-nusra, daesh" in usa and "deg grid" not in usa


def test_check_json():
    result = runner.invoke(app, ["check", str(POLICY_DIR), "--json"])
    assert result.exit_code == 0, result.stderr
    data = {p["partner"]: p for p in json.loads(result.stdout)}
    strike = next(r for r in data["RUS"]["rules"] if r["type"] == "StrikeReport")
    assert strike["coarsened"] == {"position": 0.1} and strike["bucketed"] == {"label.created_at": 3600, "time": 3600}
    assert "weapon" in strike["dropped"] and strike["conditions"] == ["group_id in set designated"]
    assert data["USA"]["withheld_types"] == []


def test_check_reports_an_invalid_policy_with_exit_2(tmp_path):
    text = (POLICY_DIR / "RUS.yaml").read_text().replace("        weapon: drop", "        weapon: kep")
    (tmp_path / "RUS.yaml").write_text(text)
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 2
    number = next(i for i, x in enumerate(text.splitlines(), start=1) if "weapon: kep" in x)
    assert f"RUS.yaml:{number}: rules.StrikeReport.0.fields.weapon: unknown action 'kep'" in result.stderr
    assert result.stdout == ""
    assert runner.invoke(app, ["check", str(tmp_path / "empty")]).exit_code == 2


def test_check_defaults_to_the_deploy_policies():
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.stderr
    assert "RUS" in result.stdout and "USA" in result.stdout


# --------------------------------------------------------------------------- explain


def test_explain_every_example_in_order(tmp_path):
    text = "\n".join(line(t) for t in examples()) + "\n"
    results = outputs(explain(tmp_path, "RUS", text))
    assert [r["decision"] for r in results] == ["RELEASE"] * 8
    assert [r["rule"] for r in results] == ["rus-air-plan", "rus-air-track", "rus-maritime-track",
                                            "rus-strike-designated", "rus-group-location-designated",
                                            "rus-foreign-fighter-designated", "rus-logistics",
                                            "rus-deconfliction-alert"]
    for result in results:
        assert set(result) == {"decision", "rule", "reason", "released"}
    strike = results[3]["released"]
    assert strike["position"] == {"lat": 34.9, "lon": 40.5}
    assert strike["time"] == "2015-11-23T07:00:00Z"
    assert strike["label"] == {"classification": "CONFIDENTIAL", "created_at": "2015-11-23T09:00:00Z",
                               "message_id": example("StrikeReport").model_dump(mode="json")["label"]["message_id"]}
    ffr = results[5]["released"]
    assert "name" not in ffr["subject"] and "EXAMPLE" not in json.dumps(ffr)
    key = bytes.fromhex((tmp_path / "secrets" / "RUS.key").read_text().strip())
    assert ffr["subject"]["subject_ref"] == "p-" + hmac.new(key, b"ffs-000417", hashlib.sha256).hexdigest()[:32]


def test_explain_keeps_order_and_reports_bad_lines(tmp_path):
    bad_value = example("AirTrack").model_dump(mode="json")
    bad_value["position"]["lat"] = 123.0
    del bad_value["callsign"]
    secret = example("StrikeReport").model_dump(mode="json")
    secret["label"]["classification"] = "SECRET"
    nusra = example("StrikeReport").model_dump(mode="json")
    nusra["group_id"] = "al-nusra"
    lines = [
        line("AirTrack"),
        "",
        "{not json",
        json.dumps({"type": "Nope", "value": {}}),
        json.dumps({"type": "AirTrack", "value": bad_value}),
        line("StrikeReport", secret),
        json.dumps(["AirTrack"]),
        line("StrikeReport", nusra),
        json.dumps({"type": "AirTrack", "value": example("AirTrack").model_dump(mode="json"), "extra": 1}),
        line("MaritimeTrack"),
    ]
    results = outputs(explain(tmp_path, "RUS", "\n".join(lines) + "\n"))
    assert len(results) == len(lines)
    assert [r["decision"] for r in results] == ["RELEASE", "ERROR", "ERROR", "ERROR", "ERROR", "WITHHOLD", "ERROR",
                                                "WITHHOLD", "ERROR", "RELEASE"]
    errors = {i: r for i, r in enumerate(results, start=1) if r["decision"] == "ERROR"}
    for number, result in errors.items():
        assert set(result) == {"decision", "reason"}
        assert result["reason"].startswith(f"line {number}: ")
    assert "blank line" in errors[2]["reason"]
    assert "invalid JSON" in errors[3]["reason"]
    assert "unknown message type 'Nope'" in errors[4]["reason"]
    assert "value.callsign: Field required" in errors[5]["reason"]
    assert "value.position.lat:" in errors[5]["reason"] and "123" not in errors[5]["reason"]
    assert "expected a JSON object" in errors[7]["reason"]
    assert "unknown key(s) 'extra'" in errors[9]["reason"]
    assert results[5] == {"decision": "WITHHOLD", "rule": "label-ceiling",
                          "reason": "classification SECRET above ceiling CONFIDENTIAL", "released": None}
    assert results[7]["rule"] == "default-deny" and "al-nusra" not in results[7]["reason"]


def test_explain_usa_from_a_file_and_pseudonyms_are_stable(tmp_path):
    both = example("ForeignFighterReport").model_dump(mode="json")
    both["subject"]["nationality"] = ["RUS", "USA"]
    path = tmp_path / "input.jsonl"
    path.write_text(line("ForeignFighterReport", both) + "\n" + line("StrikeReport") + "\n")
    first = outputs(explain(tmp_path, "usa", "", "--input", str(path)))
    second = outputs(explain(tmp_path, "USA", "", "--input", str(path)))
    assert first == second
    assert first[0]["rule"] == "usa-foreign-fighter-designated"
    assert first[1]["released"]["time"] == "2015-11-23T07:52:30Z"  # exact for USA
    rus = outputs(explain(tmp_path, "RUS", line("ForeignFighterReport", both) + "\n"))
    assert rus[0]["released"]["subject"]["subject_ref"] != first[0]["released"]["subject"]["subject_ref"]
    for partner in ("RUS", "USA"):
        key_file = tmp_path / "secrets" / f"{partner}.key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_explain_unknown_partner_and_bad_input_file(tmp_path):
    result = explain(tmp_path, "FRA", line("AirTrack"))
    assert result.exit_code == 2
    assert "unknown partner 'FRA'" in result.stderr and "RUS, USA" in result.stderr
    result = explain(tmp_path, "RUS", "", "--input", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_explain_with_an_invalid_policy_directory(tmp_path):
    (tmp_path / "pol").mkdir()
    result = runner.invoke(app, ["explain", "--partner", "RUS", "--policies", str(tmp_path / "pol")], input="")
    assert result.exit_code == 2 and "no policy" in result.stderr


# --------------------------------------------------------------------------- explain: hostile lines


def _refuse_constant(name: str):
    raise AssertionError(f"non-standard JSON in the output: {name}")


def strict_outputs(result) -> list[dict]:
    """The output lines, each parsed as standard JSON (NaN / Infinity in the output fail the test)."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return [json.loads(x, parse_constant=_refuse_constant) for x in result.stdout.splitlines()]


def _with_token(type_name: str, field: str, token: str) -> str:
    value = example(type_name).model_dump(mode="json")
    value[field] = 123456.5
    text = line(type_name, value)
    assert text.count("123456.5") == 1
    return text.replace("123456.5", token)


def hostile_lines() -> list[bytes]:
    deep = '{"type": "AirTrack", "value": ' + "[" * 1000 + "]" * 1000 + "}"
    assert 2000 <= len(deep) <= 2100
    return [
        line("AirTrack").encode(),
        deep.encode(),
        line("StrikeReport").encode()[:40] + b"\xff\xfe\xc3\x28" + line("StrikeReport").encode()[40:],
        _with_token("AirTrack", "speed_kt", "Infinity").encode(),
        _with_token("GroupLocationReport", "confidence", "NaN").encode(),
        line("MaritimeTrack").encode(),
    ]


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_explain_answers_every_line_of_hostile_input(tmp_path, source):
    data = b"\n".join(hostile_lines()) + b"\n"
    if source == "stdin":
        result = explain(tmp_path, "RUS", data)
    else:
        path = tmp_path / "hostile.jsonl"
        path.write_bytes(data)
        result = explain(tmp_path, "RUS", "", "--input", str(path))
    results = strict_outputs(result)
    assert [r["decision"] for r in results] == ["RELEASE", "ERROR", "ERROR", "ERROR", "ERROR", "RELEASE"]
    assert [r["rule"] for r in (results[0], results[5])] == ["rus-air-track", "rus-maritime-track"]
    reasons = {number: results[number - 1]["reason"] for number in (2, 3, 4, 5)}
    for number, reason in reasons.items():
        assert set(results[number - 1]) == {"decision", "reason"}
        assert reason.startswith(f"line {number}: ")
    assert reasons[2] == "line 2: invalid JSON: nested deeper than 64 levels of arrays/objects"
    assert reasons[3] == "line 3: not valid UTF-8 (byte 40)"
    assert reasons[4] == "line 4: value.speed_kt: Infinity is not valid JSON (numbers must be finite)"
    assert reasons[5] == "line 5: value.confidence: NaN is not valid JSON (numbers must be finite)"
    assert "RecursionError" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_explain_bounds_the_line_length_and_goes_on(tmp_path):
    from release.explain_input import MAX_LINE_BYTES

    huge = b'{"type": "AirTrack", "value": "' + b"x" * MAX_LINE_BYTES + b'"}'
    just_fits = b" " * (MAX_LINE_BYTES - len(line("StrikeReport"))) + line("StrikeReport").encode()
    assert len(just_fits) == MAX_LINE_BYTES
    data = b"\n".join([line("AirTrack").encode(), huge, just_fits, huge]) + b"\n" + line("MaritimeTrack").encode()
    results = strict_outputs(explain(tmp_path, "RUS", data))
    assert [r["decision"] for r in results] == ["RELEASE", "ERROR", "RELEASE", "ERROR", "RELEASE"]
    assert results[1]["reason"] == f"line 2: line longer than {MAX_LINE_BYTES} bytes (not read)"
    assert results[3]["reason"].startswith("line 4: line longer than")
    assert "xxxx" not in json.dumps(results)
    import typer

    command = typer.main.get_command(app).commands["explain"]
    assert "at most 1 MiB per line" in next(p for p in command.params if p.name == "input_file").help
    assert "longer than 1 MiB" in command.help


def test_explain_other_non_finite_and_non_unicode_values(tmp_path):
    overflow = _with_token("AirTrack", "speed_kt", "1e999")
    minus = _with_token("AirTrack", "heading_deg", "-Infinity")
    nested = line("AirTrack").replace('"lat": ', '"lat": NaN, "_": ', 1)
    surrogate = line("AirTrack").replace('"track_id": "', '"track_id": "\\ud800', 1)
    duplicate = '{"type": "AirTrack", "type": "StrikeReport", "value": {}}'
    text = "\n".join([overflow, minus, nested, surrogate, duplicate, line("AirTrack")]) + "\n"
    results = strict_outputs(explain(tmp_path, "RUS", text))
    assert [r["decision"] for r in results] == ["ERROR"] * 5 + ["RELEASE"]
    assert results[0]["reason"] == "line 1: value.speed_kt: number out of range of a double (not finite)"
    assert results[1]["reason"] == "line 2: value.heading_deg: -Infinity is not valid JSON (numbers must be finite)"
    assert results[2]["reason"] == "line 3: value.position.lat: NaN is not valid JSON (numbers must be finite)"
    assert results[3]["reason"] == "line 4: value.track_id: string is not valid Unicode (lone surrogate escape)"
    assert results[4]["reason"] == "line 5: invalid JSON: duplicate key 'type' in an object"


def test_explain_one_failing_line_does_not_stop_the_run(tmp_path, monkeypatch):
    import release.cli as cli

    real = cli.decide

    def decide(type_name, record, policy):
        if type_name == "StrikeReport":
            raise RuntimeError("boom " + record["strike_id"])
        return real(type_name, record, policy)

    monkeypatch.setattr(cli, "decide", decide)
    text = "\n".join([line("AirTrack"), line("StrikeReport"), line("MaritimeTrack")]) + "\n"
    results = strict_outputs(explain(tmp_path, "RUS", text))
    assert [r["decision"] for r in results] == ["RELEASE", "ERROR", "RELEASE"]
    assert results[1]["reason"] == "line 2: cannot be decided (RuntimeError)"
    assert cli._dump(7, {"decision": "RELEASE", "released": {"x": float("nan")}}) == json.dumps(
        {"decision": "ERROR", "reason": "line 7: the answer cannot be written as standard JSON (ValueError)"})

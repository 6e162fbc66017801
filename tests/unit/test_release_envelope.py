"""The envelope of a release (key, headers, record timestamp, earliest delivery): from the released view and
the policy only, never the rule, the internal message id of a view without one, or the forwarding time."""

from __future__ import annotations

import copy
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import schemas
from core import REPO_ROOT
from release import HEADERS, Envelope, PolicyError, SecretStore, decide, envelope, load_policies, load_policy, released_key
from schemas.examples import deconfliction_alert, example
from schemas.models import to_avro

pytestmark = pytest.mark.unit

POLICY_DIR = REPO_ROOT / "deploy" / "policies"
KEYS = {"RUS": bytes(range(32)), "USA": bytes(range(100, 132))}
UTC = timezone.utc


@pytest.fixture(scope="module")
def policies():
    return load_policies(POLICY_DIR, SecretStore.in_memory(KEYS))


def rec(type_name: str, **changes) -> dict:
    record = to_avro(example(type_name))
    record.update(changes)
    return record


def ms(value: datetime) -> int:
    return int((value - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def released(policies, partner: str, type_name: str, record: dict):
    decision = decide(type_name, record, policies[partner])
    assert decision.is_release, decision
    return decision, envelope(type_name, decision, policies[partner])


def ffr(nationality) -> dict:
    record = rec("ForeignFighterReport")
    record["subject"]["nationality"] = list(nationality)
    return record


def every_release(policies):
    for partner in sorted(code for code, p in policies.items() if p.is_partner):  # what leaves our side
        for type_name in schemas.MESSAGE_TYPES:
            record = ffr([partner]) if type_name == "ForeignFighterReport" else \
                to_avro(deconfliction_alert(partner)) if type_name == "DeconflictionAlert" else rec(type_name)
            decision, env = released(policies, partner, type_name, record)
            yield partner, type_name, record, decision, env


# --------------------------------------------------------------------------- key and headers


def test_headers_are_an_allow_list_and_never_name_the_rule(policies):
    seen = 0
    for partner, type_name, record, decision, env in every_release(policies):
        seen += 1
        assert isinstance(env, Envelope)
        names = [name for name, _ in env.headers]
        assert set(names) <= set(HEADERS) and names == [h for h in HEADERS if h in names]
        assert "rule" not in names
        headers = dict(env.headers)
        assert headers["liaison.policy.version"] == policies[partner].version.encode()
        assert headers["type"] == type_name.encode()
        assert all(decision.rule.encode() not in value for _, value in env.headers)
        assert all(isinstance(value, bytes) for _, value in env.headers)
        key = released_key(type_name, decision.released)
        assert env.key == (key.encode() if key is not None else None)
    assert seen == 2 * len(schemas.MESSAGE_TYPES)


def test_message_id_header_only_when_the_view_carries_it(policies):
    for partner, type_name, record, decision, env in every_release(policies):
        headers = dict(env.headers)
        internal = str(record["label"]["message_id"]).encode()
        if "message_id" in decision.released["label"]:
            assert headers["message_id"] == str(decision.released["label"]["message_id"]).encode() == internal
        else:
            assert "message_id" not in headers
            assert all(internal not in value for _, value in env.headers) and env.key != internal
    # foreign-fighter reports: the policies drop the message id, so does the envelope
    for partner in ("RUS", "USA"):
        decision, env = released(policies, partner, "ForeignFighterReport", ffr([partner]))
        assert "message_id" not in dict(env.headers)
        assert env.key == decision.released["subject"]["subject_ref"].encode()


def test_envelope_of_a_withhold_is_refused(policies):
    decision = decide("StrikeReport", rec("StrikeReport", group_id="hts"), policies["RUS"])
    assert not decision.is_release
    with pytest.raises(ValueError, match="only a release"):
        envelope("StrikeReport", decision, policies["RUS"])


# --------------------------------------------------------------------------- timestamp and due


def test_rus_strike_timestamp_is_the_bucket_start_and_due_the_bucket_end(policies):
    record = rec("StrikeReport")                      # time 07:52:30, label.created_at 09:00:00
    assert record["time"] == datetime(2015, 11, 23, 7, 52, 30, tzinfo=UTC)
    decision, env = released(policies, "RUS", "StrikeReport", record)
    assert env.timestamp_ms == ms(datetime(2015, 11, 23, 7, tzinfo=UTC)) == ms(decision.released["time"])
    # held until the buckets of both bucketed times have ended: created_at 09:00 -> 10:00
    assert decision.released["label"]["created_at"] == datetime(2015, 11, 23, 9, tzinfo=UTC)
    assert env.due_ms == ms(datetime(2015, 11, 23, 10, tzinfo=UTC))
    # reported within the hour of the strike: due at the end of that hour
    same_hour = copy.deepcopy(record)
    same_hour["label"]["created_at"] = datetime(2015, 11, 23, 7, 58, 1, tzinfo=UTC)
    _, env = released(policies, "RUS", "StrikeReport", same_hour)
    assert env.timestamp_ms == ms(datetime(2015, 11, 23, 7, tzinfo=UTC))
    assert env.due_ms == ms(datetime(2015, 11, 23, 8, tzinfo=UTC))
    assert env.timestamp_ms % 3_600_000 == 0 and env.due_ms % 3_600_000 == 0


def test_usa_strike_and_tracks_carry_their_exact_time_and_are_not_held(policies):
    strike = rec("StrikeReport")
    _, env = released(policies, "USA", "StrikeReport", strike)
    assert (env.timestamp_ms, env.due_ms) == (ms(strike["time"]), None)
    for partner in ("RUS", "USA"):
        for type_name in ("AirTrack", "MaritimeTrack"):
            record = rec(type_name)
            _, env = released(policies, partner, type_name, record)
            assert (env.timestamp_ms, env.due_ms) == (ms(record["time"]), None)


def test_default_timestamps_of_plans_and_logistics(policies):
    plan = rec("AirMissionPlan")
    _, env = released(policies, "RUS", "AirMissionPlan", plan)
    assert (env.timestamp_ms, env.due_ms) == (ms(plan["label"]["created_at"]), None)
    logistics = rec("LogisticsObservation")
    _, env = released(policies, "USA", "LogisticsObservation", logistics)
    assert env.timestamp_ms == ms(logistics["time_bucket_start"])


def test_rus_foreign_fighter_report_to_the_day(policies):
    record = ffr(["RUS", "USA"])             # time 2015-11-22 06:00, created 2015-11-23 07:30
    _, rus = released(policies, "RUS", "ForeignFighterReport", record)
    # the rules take the record timestamp from label.created_at (weeks-old `time` would outlive retention)
    assert rus.timestamp_ms == ms(datetime(2015, 11, 23, tzinfo=UTC))
    assert rus.due_ms == ms(datetime(2015, 11, 24, tzinfo=UTC))
    _, usa = released(policies, "USA", "ForeignFighterReport", record)
    assert (usa.timestamp_ms, usa.due_ms) == (ms(record["label"]["created_at"]), None)


# --------------------------------------------------------------------------- timestamp: <path>

HEADER = """\
partner: RUS
classification_ceiling: SECRET
label:
  classification: keep
  created_at: {bucket: {seconds: 3600}}
"""


def compile_policy(tmp_path: Path, body: str):
    path = tmp_path / "RUS.yaml"
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return load_policy(path)


def test_a_rule_names_its_timestamp(tmp_path):
    policy = compile_policy(tmp_path, """\
        rules:
          StrikeReport:
            - id: strike
              timestamp: label.created_at
              fields: {strike_id: keep, time: {bucket: {seconds: 3600}}}
        """)
    record = rec("StrikeReport")
    decision = decide("StrikeReport", record, policy)
    env = envelope("StrikeReport", decision, policy)
    assert env.timestamp_ms == ms(datetime(2015, 11, 23, 9, tzinfo=UTC))
    assert env.due_ms == ms(datetime(2015, 11, 23, 10, tzinfo=UTC))
    assert policy.describe()[0]["timestamp"] == "label.created_at"


def test_without_the_default_the_first_released_time_earliest_in_an_array(tmp_path):
    policy = compile_policy(tmp_path, """\
        rules:
          AirMissionPlan:
            - id: plan
              fields: {label.created_at: drop, callsign: keep, route.eta: keep}
        """)
    plan = rec("AirMissionPlan")
    env = envelope("AirMissionPlan", decide("AirMissionPlan", plan, policy), policy)
    assert env.timestamp_ms == min(ms(w["eta"]) for w in plan["route"]) and env.due_ms is None


@pytest.mark.parametrize("timestamp, message", [
    ("time", "timestamp 'time' is not released by rule 'strike' (released times: label.created_at)"),
    ("strike_id", "the record timestamp needs a timestamp field, 'strike_id' is string"),
    ("tme", "unknown field 'tme' in StrikeReport"),
])
def test_the_timestamp_must_be_a_released_time(tmp_path, timestamp, message):
    text = HEADER + textwrap.dedent(f"""\
        rules:
          StrikeReport:
            - id: strike
              timestamp: {timestamp}
              fields: {{strike_id: keep, time: drop}}
        """)
    path = tmp_path / "RUS.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    line = next(i for i, x in enumerate(text.splitlines(), start=1) if "timestamp:" in x)
    assert info.value.line == line and info.value.path == "rules.StrikeReport.0.timestamp"
    assert message in info.value.message

"""Two partners cannot join their copies of one record through anything the forwarder gives them.

Over >= 10,000 simulated ForeignFighterReports (the intel component; every subject made both Russian and
American so that both partners' rules apply), decided for RUS and USA by the pipeline: for every record both
receive, nothing of RUS's partner record (value bytes, key, each header, record timestamp, each decoded field
value) that is also in USA's is unique to that record, counted over the whole run, except the fields
release.linkable_fields() lists as deliberate for the pair.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import fastavro
import pytest

from core.topics import PARTNER_PREFIX

from forwarder_support import Env, make_env, records_of, value_id
from producers.simulate import Simulator
from release import linkable_fields
from schemas.examples import BASE_TIME

pytestmark = pytest.mark.unit

TYPE = "ForeignFighterReport"
NOW = int((BASE_TIME + timedelta(days=30)).timestamp() * 1000)  # every bucket has ended: released at once


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    return make_env(tmp_path_factory.mktemp("secrets"))


def reports(n: int) -> list:
    sim = Simulator({"intel"}, seed=2024, start=BASE_TIME)
    out = []
    for _, m in sim.events(400.0, 1000.0):
        if type(m).__name__ != TYPE:
            continue
        subject = m.subject.model_copy(update={"nationality": sorted(set(m.subject.nationality) | {"RUS", "USA"})})
        out.append(m.model_copy(update={"subject": subject}))
        if len(out) == n:
            return out
    raise AssertionError("the simulator gave too few foreign-fighter reports")


def text(v) -> str:
    """One canonical text per value, whatever carries it: a time and a record timestamp of the same
    millisecond compare equal, as do a string in a field and the same bytes in a header."""
    if isinstance(v, datetime):
        return str(int(v.timestamp() * 1000))
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        try:
            return v.decode()
        except UnicodeDecodeError:
            return v.hex()
    return json.dumps(v) if not isinstance(v, (str, int)) else str(v)


def leaves(value, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, path)
    elif value is not None:
        yield path, value


def covered(path: str, deliberate: set[str]) -> bool:
    return any(path == d or path.startswith(d + ".") for d in deliberate)


def atoms(env: Env, out, deliberate: set[str]) -> set[str]:
    """Everything one partner record carries, as canonical texts (deliberately linkable fields left out)."""
    schema = fastavro.parse_schema(json.loads(env.registry.texts[value_id(out.value)]))
    view = fastavro.schemaless_reader(io.BytesIO(out.value[5:]), schema)
    found = {"bytes:" + out.value.hex(), text(out.key), text(out.timestamp)}
    found |= {text(v) for _, v in out.headers}
    found |= {text(v) for path, v in leaves(view) if not covered(path, deliberate)}
    return found


def test_no_value_unique_to_a_record_is_in_both_partners_copies(env):
    models = reports(10_000)
    batch = records_of(env, models)
    fields = linkable_fields(env.policies)[("RUS", "USA")].get(TYPE, {})
    deliberate = {path for path, f in fields.items() if f.deliberate}
    assert deliberate == {"subject.nationality", "subject.languages"}  # what the shipped policies acknowledge
    assert all(f.deliberate for f in fields.values())  # anything else is refused by load_policies

    copies: dict[tuple, dict[str, object]] = defaultdict(dict)
    for rec in batch:  # one record at a time: its partner records come before its audits
        result = env.pipeline().process([rec], NOW)
        assert result.holds == []
        for out in result.views:
            if out.topic.startswith(PARTNER_PREFIX):  # partners' copies: our components are our side
                copies[(rec.partition, rec.offset)][out.topic.split(".")[2].upper()] = out
    both = {k: v for k, v in copies.items() if len(v) == 2}
    assert len(batch) >= 10_000 and len(both) >= 2_000, (len(batch), len(both))

    records_with = Counter()  # canonical value -> how many records' partner copies carry it
    per_record = {}
    for k, by_partner in copies.items():
        got = {code: atoms(env, out, deliberate) for code, out in by_partner.items()}
        per_record[k] = got
        for value in set().union(*got.values()):
            records_with[value] += 1
    joins = []
    for k in both:
        shared = per_record[k]["RUS"] & per_record[k]["USA"]
        joins += [(k, value) for value in shared if records_with[value] == 1]
    assert joins == [], f"{len(joins)} record-unique value(s) in both copies, e.g. {joins[:5]}"
    # the check can see a join: USA's exact times are unique per record, and RUS gets none of them
    usa_unique = sum(1 for k in both for v in per_record[k]["USA"] if records_with[v] == 1)
    assert usa_unique >= len(both)

"""The ingress guard's pipeline on the compiled core (consumers/ingress/compiled.py, compiled/src/guard.rs) against
the same pipeline on the reference (the checks of consumers/ingress/checks.py): the same batches give the same
outputs, record for record (partner-origin records, seen ids, audits, quarantined records with their check and
reason), the same offsets, accepted ids and counts; on valid records of every type the partner sends, varied at
what the checks read (classification, releasable_to, caveats, originator, message id forms, times at the window's
edges, replays within the batch and against the seen ids) and with edge values planted at random (unicode, empty and
huge strings, numbers and times at their bounds, every enum symbol). And the core accepted the records it can."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.unit.test_compiled_million import _plant
from release import load_policies
from tests.unit.test_ingress_pipeline import EXCHANGED, NOW, POLICIES, Env

pytestmark = pytest.mark.unit


#: what the checks read, and values of it that pass or fail them (the first of each passes)
VARIATIONS = {
    "message_id": lambda mid: [mid, mid.upper(), "{" + mid + "}", mid.replace("-", ""), "urn:uuid:" + mid, " " + mid,
                               "", "not-a-uuid"],
    "classification": lambda _: ["RESTRICTED", "CONFIDENTIAL", "SECRET", "UNCLASSIFIED", "TOP_SECRET"],
    "releasable_to": lambda _: [["FRA", "RUS"], ["FRA"], ["RUS"], [], ["fra"], ["FRA", "USA", "RUS"]],
    "caveats": lambda _: [[], ["RUS EYES"], ["origin x"], ["ORIGIN RUS"], ["Øst"], ["ıorigin"], ["c"] * 15,
                          ["c"] * 16],
    "originator": lambda _: ["rus.air", "rus", "rus.vks.hmeimim", "usa.air", "", "partner.rus", "RUS", "rus-air"],
}
SHIFTS = [timedelta(days=-3), timedelta(hours=2), timedelta(minutes=-59), timedelta(minutes=4), timedelta(seconds=-1)]


def _variant(env: Env, type_name: str, rnd: random.Random) -> dict:
    """A valid record of ``type_name``; half of them changed in one thing a check reads, or with edge values."""
    record = env.record(type_name)
    what = rnd.choice(list(VARIATIONS) + ["created_at", "time", "edge"] + ["none"] * 8)
    if what in VARIATIONS:
        record["label"][what] = rnd.choice(VARIATIONS[what](record["label"]["message_id"]))
    elif what == "created_at":
        record["label"]["created_at"] += rnd.choice(SHIFTS)
    elif what == "time" and "time" in record:
        record["time"] += rnd.choice(SHIFTS + [timedelta(days=-30)])
    elif what == "edge":
        record = _plant(record, _schema(env, type_name), rnd, {})
    return record


def _schema(env: Env, type_name: str) -> dict:
    return next(p.schema for p in env.plans.values() if p.type_name == type_name)


def _batch(env: Env, rnd: random.Random, n: int):
    out, sent = [], []
    for _ in range(n):
        type_name = rnd.choice(EXCHANGED)
        if sent and rnd.random() < 0.05:  # the same record again: a replay within the batch
            out.append(env.rec(*sent[-1][:1], sent[-1][1]))
            continue
        try:
            value = env.value(type_name, _variant(env, type_name, rnd))
        except Exception:  # noqa: BLE001 - a planted value the Avro type cannot hold: not a record anyone can send
            continue
        sent.append((type_name, value))
        out.append(env.rec(type_name, value))
    return out


def _same(a, b):
    assert [(o.topic, o.key, o.value, o.headers, o.timestamp) for o in a.outputs] == \
        [(o.topic, o.key, o.value, o.headers, o.timestamp) for o in b.outputs]
    assert (a.offsets, a.pauses, a.stats, a.accepted_ids, a.decisions) == \
        (b.offsets, b.pauses, b.stats, b.accepted_ids, b.decisions)


def test_generated_batches_give_the_same_outputs_both_ways():
    policy = load_policies(POLICIES)["RUS"]
    reference, compiled = Env(policy), Env(policy, engine="compiled")
    assert compiled.core.refused == {} and set(compiled.core.cores) == set(compiled.plans)
    rnd = random.Random(5)
    seen: set[str] = set()
    total = accepted = 0
    for i in range(40):
        batch = _batch(reference, rnd, 150)  # the two environments register the same schemas under the same ids
        now = NOW + rnd.choice([0, 0, 1, -1, 3_600_000])
        a, b = reference.pipeline.process(batch, now, seen), compiled.pipeline.process(batch, now, seen)
        _same(a, b)
        total += len(batch)
        accepted += a.stats.accepted
        seen |= set(a.accepted_ids[: len(a.accepted_ids) // 2])  # some committed: replays of them next batches
    assert total > 5_000 and 0.1 * total < accepted < 0.9 * total, (accepted, total)
    # the core accepted most of what was accepted; what it left went to the reference
    assert compiled.core.accepted >= 0.8 * accepted, (compiled.core.accepted, accepted)

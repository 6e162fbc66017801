"""The forwarder's reciprocity follower: reads the ledger's changelog only when a policy asks for a pause, follows
it, evaluates at most every few seconds, and pauses nothing when the ledger cannot be read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from consumers.forwarder.reciprocity import EVALUATE_EVERY_S, ReciprocityPauses, wants_pauses
from operations.ledger.model import GIVEN, RECEIVED, BucketKey, Figures, encode_key, encode_value, hour_of
from release import load_policies

pytestmark = pytest.mark.unit

POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "policies"
NOW = 1_796_000_000_000


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class FakeLedgerConsumer:
    """What read_to_end and the follower ask of a consumer; records come from ``batches``."""

    def __init__(self, records):
        self.records = list(records)
        self.later: list = []

    def list_topics(self, topic, timeout=None):
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return 0, len(self.records)

    def assign(self, tps):
        pass

    def consume(self, n, timeout):
        out, self.records = self.records, []
        if not out:
            out, self.later = self.later, []
        return out

    def position(self, tps):
        return [SimpleNamespace(partition=0, offset=10**9)]

    def close(self):
        pass


def msg(key: BucketKey, fig: Figures | None, offset: int):
    return SimpleNamespace(error=lambda: None, topic=lambda: "liaison.ledger", partition=lambda: 0,
                           offset=lambda: offset, key=lambda: encode_key(key),
                           value=lambda: encode_value(fig) if fig is not None else None)


@pytest.fixture(scope="module")
def policies():
    return load_policies(POLICIES)


def quiet():
    events = []
    return SimpleNamespace(warning=lambda e, **k: events.append((e, k)), info=lambda e, **k: events.append((e, k)),
                           events=events)


def test_no_policy_pauses_nothing_is_read(policies):
    made = []
    no_pause = {c: p for c, p in policies.items() if not (p.spec.reciprocity if p.spec else None)}
    assert not wants_pauses(no_pause) and wants_pauses(policies)
    r = ReciprocityPauses(lambda: made.append(1), quiet())
    assert r.current(no_pause, NOW) == {} and made == []


def test_pauses_follow_the_changelog_and_are_evaluated_every_few_seconds(policies):
    hour = hour_of(NOW)
    given = BucketKey("RUS", "foreign_fighters", GIVEN, hour)
    received = BucketKey("RUS", "foreign_fighters", RECEIVED, hour)
    consumer = FakeLedgerConsumer([msg(given, Figures(100, 10_000), 0), msg(received, Figures(5, 500), 1)])
    clock, log = Clock(), quiet()
    r = ReciprocityPauses(lambda: consumer, log, clock)
    paused = r.current(policies, NOW)
    assert list(paused) == ["RUS"] and list(paused["RUS"]) == ["foreign_fighters"]
    assert "received 5 / given 100" in paused["RUS"]["foreign_fighters"]
    # RUS gives back: the next evaluation (not before EVALUATE_EVERY_S) lifts the pause
    consumer.later = [msg(received, Figures(60, 6_000), 2)]
    clock.t += EVALUATE_EVERY_S / 2
    assert r.current(policies, NOW) == paused
    clock.t += EVALUATE_EVERY_S
    assert r.current(policies, NOW) == {}
    assert [e for e, _ in log.events].count("reciprocity pauses") == 2


def test_an_unreadable_ledger_pauses_nothing_and_says_so(policies):
    def broken():
        raise RuntimeError("ledger topic not authorized")

    log = quiet()
    assert ReciprocityPauses(broken, log).current(policies, NOW) == {}
    assert log.events and log.events[0][0] == "reciprocity ledger unreadable: no category paused"
    assert "not authorized" in log.events[0][1]["error"]

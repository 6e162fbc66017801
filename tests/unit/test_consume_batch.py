"""core.kafka.consume_batch: a batch's first record waited for up to the poll timeout, the rest only for the
linger after it; behind, the batch fills at once. A fake consumer that honours librdkafka's consume(n, t)
contract (return n messages, or what arrived within t) with a clock it advances itself."""

from __future__ import annotations

import pytest

from core.kafka import consume_batch

pytestmark = pytest.mark.unit


class PacedConsumer:
    """Messages arriving at the given times (s); consume(n, t) returns when it has n or t has passed."""

    def __init__(self, arrivals: list[float]):
        self.arrivals = sorted(arrivals)
        self.now = 0.0
        self.calls: list[tuple[int, float]] = []

    def consume(self, n: int, timeout: float) -> list:
        self.calls.append((n, timeout))
        got = []
        deadline = self.now + timeout
        while self.arrivals and len(got) < n:
            at = self.arrivals[0]
            if at > deadline:
                break
            self.now = max(self.now, at)
            got.append(self.arrivals.pop(0))
        if len(got) < n:
            self.now = deadline
        return got


def test_a_paced_input_waits_only_the_linger_after_the_first_record_not_the_poll_timeout():
    # 100 records/s; the poll timeout is 0.5 s: a plain consume(1000, 0.5) would hold the first record 0.5 s
    c = PacedConsumer([0.1 + i / 100 for i in range(200)])
    batch = consume_batch(c, 1000, 0.5, linger=0.02)
    assert batch[0] == pytest.approx(0.1)
    assert c.now == pytest.approx(0.12)  # the batch ends 20 ms after its first record
    assert len(batch) == 3  # the records at 0.10, 0.11 and 0.12 s
    assert c.calls == [(1, 0.5), (999, 0.02)]


def test_behind_the_batch_fills_at_once_to_its_size():
    c = PacedConsumer([0.0] * 5000)
    batch = consume_batch(c, 2000, 0.5)
    assert len(batch) == 2000 and c.now == 0.0


def test_nothing_arriving_returns_empty_after_the_poll_timeout_and_asks_nothing_more():
    c = PacedConsumer([])
    assert consume_batch(c, 1000, 0.5) == [] and c.calls == [(1, 0.5)] and c.now == 0.5


def test_a_batch_of_one_is_one_call():
    c = PacedConsumer([0.0, 0.0])
    assert consume_batch(c, 1, 0.5) == [0.0] and c.calls == [(1, 0.5)]


"""The reciprocity pauses in force, for the pipeline: the ledger's changelog followed by a consumer of its own
(no group: every partition assigned, read_committed), evaluated with the policies' ``reciprocity:`` lists by
:func:`operations.ledger.evaluate.pauses`, at most every few seconds. Pure evaluation lives in operations.ledger;
this module only polls.

When no policy asks for a pause nothing is read (and the forwarder needs no READ on the ledger topic). When the
ledger topic cannot be read, no category is paused and the reason is logged: a pause is an agreement's lever, not
a safety control, and withholding everything because the ledger is away would stop the exchange itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from core.topics import LEDGER_TOPIC
from operations.ledger.changelog import apply_records, read_to_end
from operations.ledger.evaluate import LedgerState, pauses

__all__ = ["ReciprocityPauses", "wants_pauses"]

#: How often the pauses are evaluated again (the ledger counts per hour: seconds are plenty).
EVALUATE_EVERY_S = 5.0


def wants_pauses(policies: Mapping[str, object]) -> bool:
    return any(getattr(getattr(p, "spec", None), "reciprocity", None) for p in policies.values())


class ReciprocityPauses:
    """``current(policies, now_ms)`` -> recipient -> category -> reason. ``consumer_factory`` makes the ledger
    consumer (read_committed) the first time a policy asks for a pause."""

    def __init__(self, consumer_factory: Callable[[], object], log, clock: Callable[[], float] = time.monotonic):
        self._factory = consumer_factory
        self._log = log
        self._clock = clock
        self._consumer = None
        self.state = LedgerState()
        self._at = float("-inf")
        self._pauses: dict[str, dict[str, str]] = {}
        self.error: str | None = None

    def current(self, policies: Mapping[str, object], now_ms: int) -> dict[str, dict[str, str]]:
        if not wants_pauses(policies):
            return {}
        if self._clock() - self._at < EVALUATE_EVERY_S:
            return self._pauses
        self._at = self._clock()
        try:
            if self._consumer is None:
                consumer = self._factory()
                read_to_end(consumer, LEDGER_TOPIC, timeout=30.0, state=self.state)
                self._consumer = consumer
            else:
                apply_records(self.state, self._consumer.consume(10000, 0))
            self.error = None
        except Exception as e:  # noqa: BLE001 - no ledger: nothing paused, said once per evaluation
            self.error = f"{type(e).__name__}: {e}"[:300]
            self._log.warning("reciprocity ledger unreadable: no category paused", error=self.error)
            return {}
        before = self._pauses
        self._pauses = pauses(policies, self.state, now_ms)
        if self._pauses != before:
            self._log.info("reciprocity pauses", pauses=self._pauses)
        return self._pauses

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            finally:
                self._consumer = None

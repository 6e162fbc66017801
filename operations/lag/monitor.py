"""The sliding window: poll the collector every interval, keep the last snapshots and the table of end-offset
samples, judge them."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from core.logs import get_logger
from operations.lag.collect import Collector
from operations.lag.evaluate import Marks, Report, Thresholds, evaluate
from operations.lag.model import Snapshot
from operations.lag.samples import EndOffsetTable, apply_index, wants_of

log = get_logger("operations.lag")

#: rounds of time-index probes after the first one (each halves the bracket of an offset still too vague)
INDEX_REFINE_ROUNDS = 6


class Monitor:
    """Owns the window of snapshots and the `EndOffsetTable`; each poll records the snapshot's end offsets in
    the table, asks the broker's time index about offsets older than the table (when `time_index`), then
    evaluates. `marks`: an optional callable returning consumers' own figures (none exports them yet)."""

    def __init__(self, collector: Collector, thresholds: Thresholds | None = None, interval: float = 5.0,
                 table: EndOffsetTable | None = None, time_index: bool = True,
                 marks: Callable[[], Marks] | None = None):
        self.collector = collector
        self.thresholds = thresholds or Thresholds()
        self.interval = interval
        self.window: deque[Snapshot] = deque(maxlen=self.thresholds.window_for(interval))
        self.table = table if table is not None else EndOffsetTable()
        self.time_index = time_index
        self.marks = marks
        self.polls = 0
        self.failures = 0
        #: time-index requests sent so far, and the time they took (seconds)
        self.index_requests = 0
        self.index_seconds = 0.0
        self._report: Report = evaluate([], self.thresholds)
        self._lock = threading.Lock()

    @property
    def report(self) -> Report:
        with self._lock:
            return self._report

    def poll_once(self) -> Report:
        snap = self.collector.poll()
        if snap.error is None:
            for key in self.table.record_snapshot(snap):
                log.info("end-offset samples reset (end offset went back or topic re-created)", topic=key[0],
                         partition=key[1])
            if self.time_index and hasattr(self.collector, "offsets_for_times"):
                self._date_history(snap)
        marks = None
        if self.marks is not None:
            try:
                marks = self.marks()
            except Exception as e:  # noqa: BLE001 - an optional input; the table's figures stand alone
                log.warning("consumer figures unavailable", error=str(e))
        with self._lock:
            self.window.append(snap)
            self.polls += 1
            if snap.error is not None:
                self.failures += 1
            self._report = evaluate(list(self.window), self.thresholds, self.table, marks)
            report = self._report
        if snap.error is not None:
            log.warning("lag poll failed", error=snap.error)
        else:
            changed = {g.group: g.status for g in report.groups if g.status != "OK"}
            log.debug("lag poll", duration_s=round(snap.duration_s, 3), groups=len(report.groups), not_ok=changed)
        return report

    def _date_history(self, snap: Snapshot) -> None:
        """Committed offsets older than the oldest sample: ask the broker's time index once (since the last
        reset of that partition), then refine the brackets a few rounds."""
        t = time.monotonic()
        wants = wants_of(snap)
        requests = self.table.plan_history(wants, snap.taken_at)
        if not requests:
            return
        asked = {k for req in requests for k in req}
        try:
            apply_index(self.table, requests, self.collector.offsets_for_times(requests))
            self.index_requests += len(requests)
            for _ in range(INDEX_REFINE_ROUNDS):
                requests = self.table.plan_refine([w for w in wants if w[0] in asked], snap.taken_at)
                if not requests:
                    break
                apply_index(self.table, requests, self.collector.offsets_for_times(requests))
                self.index_requests += len(requests)
        except Exception as e:  # noqa: BLE001 - the table's own samples still give lower bounds
            log.warning("time index not available", error=str(e))
        self.index_seconds += time.monotonic() - t

    def run(self, stop: threading.Event, max_polls: int | None = None) -> None:
        """Poll at a fixed rate (a slow cycle delays the next one, never doubles up) until `stop` is set."""
        next_at = time.monotonic()
        while not stop.is_set():
            self.poll_once()
            if max_polls is not None and self.polls >= max_polls:
                return
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()
                delay = 0
            stop.wait(delay)

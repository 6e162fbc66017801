"""The sliding window: poll the collector every interval, keep the last snapshots, judge them."""

from __future__ import annotations

import threading
import time
from collections import deque

from operations.lag.collect import Collector
from operations.lag.evaluate import Report, Thresholds, evaluate
from operations.lag.model import Snapshot
from core.logs import get_logger

log = get_logger("operations.lag")


class Monitor:
    def __init__(self, collector: Collector, thresholds: Thresholds | None = None, interval: float = 5.0):
        self.collector = collector
        self.thresholds = thresholds or Thresholds()
        self.interval = interval
        self.window: deque[Snapshot] = deque(maxlen=self.thresholds.window_for(interval))
        self.polls = 0
        self.failures = 0
        self._report: Report = evaluate([], self.thresholds)
        self._lock = threading.Lock()

    @property
    def report(self) -> Report:
        with self._lock:
            return self._report

    def poll_once(self) -> Report:
        snap = self.collector.poll()
        with self._lock:
            self.window.append(snap)
            self.polls += 1
            if snap.error is not None:
                self.failures += 1
            self._report = evaluate(list(self.window), self.thresholds)
            report = self._report
        if snap.error is not None:
            log.warning("lag poll failed", error=snap.error)
        else:
            changed = {g.group: g.status for g in report.groups if g.status != "OK"}
            log.debug("lag poll", duration_s=round(snap.duration_s, 3), groups=len(report.groups), not_ok=changed)
        return report

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

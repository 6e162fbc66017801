"""operations.lag.render: the `liaison lag` table shows offsets and lag in seconds marked where estimated."""

from __future__ import annotations

import pytest
from rich.console import Console

from operations.lag.evaluate import evaluate
from operations.lag.model import GroupObs, PartitionObs, Snapshot
from operations.lag.render import print_report
from operations.lag.samples import EndOffsetTable

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0
TOPIC = "liaison.internal.air.track"


def test_table_marks_estimated_and_bounded_ages():
    table = EndOffsetTable()
    for ts, end in ((-60, 0), (-30, 300), (0, 600)):
        for p in (0, 1):
            table.record((TOPIC, p), T0 + ts, end)
    table.record((TOPIC, 2), T0, 10)
    parts = {(TOPIC, 0): PartitionObs(TOPIC, 0, 150, 600),  # dated between two samples: ~
             (TOPIC, 1): PartitionObs(TOPIC, 1, 600, 600),  # caught up: exact 0
             (TOPIC, 2): PartitionObs(TOPIC, 2, 3, 10)}  # older than the only sample: >=
    report = evaluate([Snapshot(T0, {"g": GroupObs("g", "STABLE", 1, parts)})], ends=table)
    console = Console(width=400, record=True)
    print_report(report, console)
    text = console.export_text()
    assert "lag_offsets" in text and "lag_s" in text and "end (LSO)" in text
    cells = [[c.strip() for c in line.split("│") if c.strip()] for line in text.splitlines() if TOPIC in line]
    rows = {c[1]: c for c in cells}
    assert rows["0"][3:6] == ["600", "450", "~44.9"]
    assert rows["1"][3:6] == ["600", "0", "0.0"]
    assert rows["2"][3:6] == ["10", "7", "≥0.0"]
    # a lower bound on one partition makes the group's oldest a lower bound too
    assert "lag=457 offsets, oldest unconsumed ≥44.9s" in text

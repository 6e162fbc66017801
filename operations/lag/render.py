"""Terminal tables for `liaison lag`."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from operations.lag.evaluate import Report

STYLE = {"OK": "green", "NO_COMMIT": "cyan", "WARNING": "yellow", "STALLED": "red", "STOPPED": "bold red",
         "ERROR": "bold magenta"}


def _n(v) -> str:
    return "-" if v is None else str(v)


def tables(report: Report) -> Group:
    parts = []
    when = (datetime.fromtimestamp(report.taken_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            if report.taken_at else "never")
    parts.append(Text(f"consumer lag read at {when} in {report.duration_s:.2f}s "
                      f"(statuses judged over {report.polls} poll(s)); lag = offsets up to the last stable offset "
                      "(transaction markers included); lag_s = how long the oldest unconsumed record has waited, "
                      "from end-offset samples: ~ interpolated, ≥ at least, ≤ at most (estimated)", style="dim"))
    if report.error:
        parts.append(Text(f"poll failed: {report.error}", style="bold red"))
    if not report.groups:
        parts.append(Text("no consumer groups"))
    for g in report.groups:
        head = Text.assemble((g.group, "bold"), "  ", (g.status, STYLE[g.status]),
                             f"  state={_n(g.state)} members={_n(g.members)} lag={g.lag_offsets} offsets, "
                             "oldest unconsumed " + ("unknown" if g.max_lag_seconds is None
                                                     else f"{g.max_lag_seconds_text}s"))
        parts.append(Text(""))
        parts.append(head)
        table = Table(caption=g.reason, caption_justify="left", expand=False)
        for col, just in (("topic", "left"), ("partition", "right"), ("committed", "right"),
                          ("end (LSO)", "right"), ("lag_offsets", "right"), ("lag_s", "right"), ("status", "left"),
                          ("note", "left")):
            table.add_column(col, justify=just, overflow="fold")
        for p in g.partitions:
            note = "" if p.status == "OK" and not p.clamped else p.reason
            if p.lag_seconds_note and not p.possible_marker:
                note = (note + "; " if note else "") + f"lag_s unknown: {p.lag_seconds_note}"
            if p.possible_marker:
                note = (note + "; " if note else "") + "possibly only a transaction marker"
            if p.high_watermark is not None and p.end_offset is not None and p.high_watermark != p.end_offset:
                note = (note + "; " if note else "") + f"high watermark {p.high_watermark}"
            table.add_row(p.topic, str(p.partition), _n(p.committed), _n(p.end_offset), _n(p.lag_offsets),
                          p.lag_seconds_text, Text(p.status, STYLE[p.status]), note)
        parts.append(table)
    return Group(*parts)


def print_report(report: Report, console: Console | None = None) -> None:
    if console is None:
        # piped or captured: wide lines rather than 80 folded columns
        console = Console() if sys.stdout.isatty() else Console(width=220, soft_wrap=False)
    console.print(tables(report))

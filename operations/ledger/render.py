"""Terminal tables of `liaison ledger`: one per partner, a line per category, day and week side by side."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from operations.ledger.evaluate import Row
from operations.ledger.model import WINDOW_HOURS, WINDOWS
from schemas.agreement import SAFETY_CATEGORIES


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _ratio_style(v: float | None) -> str:
    return "dim" if v is None else ("green" if v >= 1 else ("yellow" if v >= 0.5 else "red"))


def report_dict(rows: list[Row], now_ms: int) -> dict:
    """What `liaison ledger --json` prints."""
    return {"read_at_ms": now_ms, "window_hours": dict(WINDOW_HOURS), "rows": [r.to_dict() for r in rows]}


def tables(rows: list[Row], now_ms: int) -> Group:
    when = datetime.fromtimestamp(now_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [Text(f"reciprocity ledger at {when}: given = released to the partner, received = accepted from it "
                  "(records, bytes); ratio = received / given in records; day = this hour and the 23 before, "
                  "week = this hour and the 167 before", style="dim")]
    by_partner: dict[str, dict[tuple[str, str], Row]] = {}
    for r in rows:
        by_partner.setdefault(r.partner, {})[(r.category, r.window)] = r
    if not by_partner:
        parts.append(Text("nothing given or received yet"))
    for partner, cells in by_partner.items():
        parts.append(Text(""))
        parts.append(Text(partner, style="bold"))
        table = Table(expand=False)
        table.add_column("category", justify="left")
        for w in WINDOWS:
            for col in ("given", "bytes", "received", "bytes", "ratio"):
                table.add_column(f"{w} {col}", justify="right")
        categories = list(dict.fromkeys(c for c, _w in cells))
        for c in categories:
            line: list = [c + (" (safety)" if c in SAFETY_CATEGORIES else "")]
            for w in WINDOWS:
                r = cells[(c, w)]
                line += [f"{r.given.count:,}", f"{r.given.bytes:,}", f"{r.received.count:,}",
                         f"{r.received.bytes:,}", Text(_ratio(r.ratio), _ratio_style(r.ratio))]
            table.add_row(*line)
        parts.append(table)
    return Group(*parts)


def print_ledger(rows: list[Row], now_ms: int, console: Console | None = None) -> None:
    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=220, soft_wrap=False)
    console.print(tables(rows, now_ms))

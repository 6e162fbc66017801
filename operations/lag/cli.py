"""`liaison lag` (one reading, table or JSON) and `liaison lag serve` (Prometheus /metrics and JSON /lag)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import List, Optional

import typer

from operations.lag.collect import DEFAULT_EXCLUDE_PREFIXES
from operations.lag.evaluate import Thresholds

app = typer.Typer(invoke_without_command=True, add_completion=False,
                  help="Consumer lag per group, topic and partition: offsets, lag in offsets and seconds, status.")

GROUP_HELP = "consumer group to show (repeatable); default: every group except --exclude-prefix ones"
EXCLUDE_HELP = ("leave out groups starting with this (repeatable; replaces the default "
                f"{DEFAULT_EXCLUDE_PREFIXES[0]!r}, our own tools' groups; '' for none)")
D = Thresholds()


def _thresholds(stall_polls: int, stop_seconds: float, warn_polls: int, warn_lag_seconds: float,
                window: int, marker_offsets: int) -> Thresholds:
    try:
        return Thresholds(stall_polls=stall_polls, stop_seconds=stop_seconds, warn_polls=warn_polls,
                          warn_min_lag_seconds=warn_lag_seconds, window=window, marker_offsets=marker_offsets)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)


def _collector(groups, exclude_prefix, principal):
    from operations.lag.collect import Collector

    return Collector(groups=groups or None, exclude_prefixes=[p for p in exclude_prefix if p], principal=principal)


StallPolls = typer.Option(D.stall_polls, "--stall-polls", help="polls with lag > 0 and an unmoved commit => STALLED")
StopSeconds = typer.Option(D.stop_seconds, "--stop-seconds", help="stuck this long (or in a member-less group) => STOPPED")
WarnPolls = typer.Option(D.warn_polls, "--warn-polls", help="polls of never-decreasing, growing lag => WARNING")
WarnLagSeconds = typer.Option(D.warn_min_lag_seconds, "--warn-lag-seconds",
                              help="... when the oldest unconsumed record is at least this old")
Window = typer.Option(D.window, "--window", help="snapshots kept (raised to span --stop-seconds)")
MarkerOffsets = typer.Option(D.marker_offsets, "--marker-offsets",
                             help="offset lag up to this on an end offset unchanged since the commit is a possible "
                                  "transaction marker, not flagged (0: flag it)")
TimeIndex = typer.Option(True, "--time-index/--no-time-index",
                         help="date committed offsets older than the monitor's own samples with the broker's time "
                              "index (ListOffsets by timestamp); without it they show as lower bounds (≥)")
Principal = typer.Option(None, "--principal",
                         help="on secured servers, authenticate as this principal (default lag-monitor, whose ACLs "
                              "let it describe the groups of the forwarder, ingress guards, deconfliction, ledger, "
                              "officers and components and the topics they consume, and read no record; admin sees "
                              "every group)")


@app.callback(invoke_without_command=True)
def lag(ctx: typer.Context,
        group: Optional[List[str]] = typer.Option(None, "--group", "-g", help=GROUP_HELP),
        exclude_prefix: List[str] = typer.Option(list(DEFAULT_EXCLUDE_PREFIXES), "--exclude-prefix",
                                                 help=EXCLUDE_HELP),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
        polls: int = typer.Option(1, "--polls", min=1,
                                  help="read this many times, --interval apart, and judge the last reading "
                                       "against them (1: a single reading, STALLED needs two)"),
        interval: float = typer.Option(5.0, "--interval", help="seconds between polls (with --polls > 1)"),
        stall_polls: int = StallPolls, stop_seconds: float = StopSeconds, warn_polls: int = WarnPolls,
        warn_lag_seconds: float = WarnLagSeconds, window: int = Window, marker_offsets: int = MarkerOffsets,
        time_index: bool = TimeIndex, principal: str = Principal) -> None:
    """Print committed offset, end offset (last stable offset), lag in offsets and seconds and a status for
    every consumer group, topic and partition. `liaison lag serve` polls and serves Prometheus metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from operations.lag.monitor import Monitor
    from operations.lag.render import print_report

    th = _thresholds(stall_polls, stop_seconds, warn_polls, warn_lag_seconds, window, marker_offsets)
    with _collector(group, exclude_prefix, principal) as collector:
        monitor = Monitor(collector, th, interval, time_index=time_index)
        monitor.run(threading.Event(), max_polls=polls)
        report = monitor.report
    if report.error and not report.groups and monitor.failures == monitor.polls:
        from core.settings import get_settings

        typer.echo(f"error: cannot read consumer lag from Kafka at {get_settings().kafka_bootstrap()} "
                   f"({report.error}); start it with `liaison infra up` or set LIAISON_BOOTSTRAP_SERVERS", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report)


@app.command()
def serve(port: int = typer.Option(..., "--port", help="HTTP port for /metrics and /lag"),
          host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
          interval: float = typer.Option(5.0, "--interval", help="seconds between polls"),
          group: Optional[List[str]] = typer.Option(None, "--group", "-g", help=GROUP_HELP),
          exclude_prefix: List[str] = typer.Option(list(DEFAULT_EXCLUDE_PREFIXES), "--exclude-prefix",
                                                   help=EXCLUDE_HELP),
          stall_polls: int = StallPolls, stop_seconds: float = StopSeconds, warn_polls: int = WarnPolls,
          warn_lag_seconds: float = WarnLagSeconds, window: int = Window, marker_offsets: int = MarkerOffsets,
          time_index: bool = TimeIndex, principal: str = Principal) -> None:
    """Poll every --interval seconds; serve Prometheus text at /metrics and the latest report as JSON at /lag.
    The forwarder's counters are served by the forwarder itself: `liaison forward --metrics-port N`."""
    from operations.lag.monitor import Monitor
    from operations.lag.serve import serve as run_server

    th = _thresholds(stall_polls, stop_seconds, warn_polls, warn_lag_seconds, window, marker_offsets)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(addr):
        print(f"serving http://{addr[0]}:{addr[1]}/metrics and /lag, polling every {interval:g}s",
              file=sys.stderr, flush=True)

    with _collector(group, exclude_prefix, principal) as collector:
        try:
            run_server(Monitor(collector, th, interval, time_index=time_index), host, port, stop, on_ready=ready)
        except OSError as e:
            typer.echo(f"error: cannot listen on {host}:{port}: {e.strerror}", err=True)
            raise typer.Exit(2)

"""`liaison lag serve`: Prometheus text at /metrics and JSON at /lag, from the monitor's latest report.

The forwarder's own counters (released / withheld / dead-lettered per partner and type) are served by the
forwarder process itself (`liaison forward --metrics-port N`, consumers/metrics.py); scrape both targets.

Series (labels group, topic, partition unless said otherwise). A partition without a commit has no
committed/lag series (never NaN or 0) and status NO_COMMIT; an unknown lag in seconds has no series.

    liaison_lag_committed_offset          committed offset
    liaison_lag_end_offset                last stable offset (read_committed end), what lag counts against
    liaison_lag_high_watermark            high watermark (read_uncommitted end)
    liaison_lag_offsets                   last stable offset - committed offset (clamped >= 0): data records, plus
                                          transaction markers and aborted records in between on transactional topics
    liaison_lag_seconds                   how long the oldest unconsumed record has waited; labels estimated
                                          ("true" unless exact) and kind (exact, interpolated, at_least, at_most)
    liaison_lag_seconds_lower_bound       ... its certain lower bound
    liaison_lag_seconds_upper_bound       ... its certain upper bound (no series when unbounded: at_least)
    liaison_lag_possible_marker           1 where the lag may be only a transaction marker (not flagged), else 0
    liaison_lag_partition_status          1, with label status (OK, NO_COMMIT, WARNING, STALLED, STOPPED, ERROR)
    liaison_lag_group_status              state set per group: label liaison_lag_group_status=<status>, 1 for the
                                          current one, 0 for the others
    liaison_lag_group_severity            per group: 0 OK, 1 WARNING, 2 STALLED, 3 STOPPED, 4 ERROR
    liaison_lag_group_lag_offsets         per group: sum over partitions with a known lag
    liaison_lag_group_max_lag_seconds     per group: oldest unconsumed record (labels estimated, kind)
    liaison_lag_group_members             per group: active members
    liaison_lag_group_partitions          per group: partitions (label kind=all|without_commit)
    liaison_lag_poll_duration_seconds     last cycle
    liaison_lag_last_poll_timestamp_seconds   when the figures were read (their age = now - this)
    liaison_lag_up                        1 when the last cycle could read the cluster
    liaison_lag_polls_total, liaison_lag_poll_failures_total
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, StateSetMetricFamily

from core import http
from operations.lag.evaluate import GROUP_STATUSES, SEVERITY
from operations.lag.monitor import Monitor

P_LABELS = ["group", "topic", "partition"]
#: labels of lag-in-seconds series: estimated ("true"/"false") and kind (exact, interpolated, at_least, at_most)
S_LABELS = ["estimated", "kind"]


def _bool(v: bool) -> str:
    return "true" if v else "false"


class LagCollector:
    """A prometheus_client custom collector over the monitor's latest report."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor

    def describe(self):
        return []

    def collect(self):
        m = self.monitor
        report = m.report
        committed = GaugeMetricFamily("liaison_lag_committed_offset", "Committed offset of the group", labels=P_LABELS)
        end = GaugeMetricFamily("liaison_lag_end_offset", "Last stable offset (read_committed end offset)",
                                labels=P_LABELS)
        hwm = GaugeMetricFamily("liaison_lag_high_watermark", "High watermark (read_uncommitted end offset)",
                                labels=P_LABELS)
        lag = GaugeMetricFamily("liaison_lag_offsets", "Last stable offset - committed offset (transaction "
                                "markers and aborted records included)", labels=P_LABELS)
        lag_s = GaugeMetricFamily("liaison_lag_seconds", "How long the oldest unconsumed record has waited, seconds "
                                  "(estimated from end-offset samples unless exact)", labels=[*P_LABELS, *S_LABELS])
        lag_lo = GaugeMetricFamily("liaison_lag_seconds_lower_bound", "Certain lower bound of liaison_lag_seconds",
                                   labels=P_LABELS)
        lag_hi = GaugeMetricFamily("liaison_lag_seconds_upper_bound", "Certain upper bound of liaison_lag_seconds",
                                   labels=P_LABELS)
        marker = GaugeMetricFamily("liaison_lag_possible_marker", "1 where the lag may be only a transaction marker",
                                   labels=P_LABELS)
        p_status = GaugeMetricFamily("liaison_lag_partition_status", "Partition status (value 1, label status)",
                                     labels=[*P_LABELS, "status"])
        g_status = StateSetMetricFamily("liaison_lag_group_status", "Group status", labels=["group"])
        g_sev = GaugeMetricFamily("liaison_lag_group_severity",
                                  "Group status as a number: 0 OK, 1 WARNING, 2 STALLED, 3 STOPPED, 4 ERROR",
                                  labels=["group"])
        g_lag = GaugeMetricFamily("liaison_lag_group_lag_offsets", "Group lag in offsets (known partitions)",
                                  labels=["group"])
        g_lag_s = GaugeMetricFamily("liaison_lag_group_max_lag_seconds", "Oldest unconsumed record in the group",
                                    labels=["group", *S_LABELS])
        g_members = GaugeMetricFamily("liaison_lag_group_members", "Active members", labels=["group"])
        g_parts = GaugeMetricFamily("liaison_lag_group_partitions", "Partitions of the group",
                                    labels=["group", "kind"])
        for g in report.groups:
            g_status.add_metric([g.group], {s: s == g.status for s in GROUP_STATUSES})
            g_sev.add_metric([g.group], SEVERITY[g.status])
            if g.error is None:
                g_lag.add_metric([g.group], g.lag_offsets)
                g_parts.add_metric([g.group, "all"], len(g.partitions))
                g_parts.add_metric([g.group, "without_commit"], g.partitions_without_commit)
            if g.max_lag_seconds is not None:
                g_lag_s.add_metric([g.group, _bool(g.estimated), g.max_lag_seconds_kind], g.max_lag_seconds)
            if g.members is not None:
                g_members.add_metric([g.group], g.members)
            for p in g.partitions:
                labels = [g.group, p.topic, str(p.partition)]
                p_status.add_metric([*labels, p.status], 1)
                if p.committed is not None:
                    committed.add_metric(labels, p.committed)
                if p.end_offset is not None:
                    end.add_metric(labels, p.end_offset)
                if p.high_watermark is not None:
                    hwm.add_metric(labels, p.high_watermark)
                if p.lag_offsets is not None:
                    lag.add_metric(labels, p.lag_offsets)
                    marker.add_metric(labels, 1 if p.possible_marker else 0)
                if p.lag_seconds is not None:
                    lag_s.add_metric([*labels, _bool(p.estimated), p.lag_seconds_kind], p.lag_seconds)
                    lag_lo.add_metric(labels, p.lag_seconds_low)
                    if p.lag_seconds_high is not None:
                        lag_hi.add_metric(labels, p.lag_seconds_high)
        yield from (committed, end, hwm, lag, lag_s, lag_lo, lag_hi, marker, p_status, g_status, g_sev, g_lag, g_lag_s,
                    g_members, g_parts)
        yield GaugeMetricFamily("liaison_lag_poll_duration_seconds", "Duration of the last poll cycle",
                                value=report.duration_s)
        if report.taken_at is not None:
            yield GaugeMetricFamily("liaison_lag_last_poll_timestamp_seconds",
                                    "When the figures were read (epoch seconds)", value=report.taken_at)
        yield GaugeMetricFamily("liaison_lag_up", "1 when the last poll could read the cluster",
                                value=1 if report.taken_at is not None and report.error is None else 0)
        yield CounterMetricFamily("liaison_lag_polls", "Poll cycles", value=m.polls)
        yield CounterMetricFamily("liaison_lag_poll_failures", "Poll cycles that could not read the cluster",
                                  value=m.failures)


def make_server(monitor: Monitor, host: str, port: int) -> ThreadingHTTPServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LagCollector(monitor))
    return http.make_server({
        "/metrics": http.metrics_route(registry),
        "/lag": lambda: http.json_reply(monitor.report.to_dict(), indent=2),
        "/": lambda: (200, http.TEXT, b"liaison lag monitor: /metrics (Prometheus), /lag (JSON)\n"),
    }, host, port)


def serve(monitor: Monitor, host: str, port: int, stop: threading.Event, on_ready=None) -> None:
    """Poll in a thread, serve HTTP until `stop` is set."""
    server = make_server(monitor, host, port)
    poller = threading.Thread(target=monitor.run, args=(stop,), name="lag-poller", daemon=True)
    poller.start()
    http.serve_in_thread(server, "lag-http")
    if on_ready:
        on_ready(server.server_address)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        poller.join(timeout=monitor.interval + 30)

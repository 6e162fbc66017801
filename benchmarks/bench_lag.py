"""Lag monitor poll cycle at scale: 50 consumer groups x 20 partitions = 1,000 group-partitions, target <= 1 s.

    .venv/bin/python benchmarks/bench_lag.py [--cycles 15] [--topics 10] [--partitions 20] [--groups-per-topic 5]

Runs against LIAISON_BOOTSTRAP_SERVERS + LIAISON_SCHEMA_REGISTRY_URL, or a private set of servers it starts
in .state/bench (benchmarks/_servers.py) and stops afterwards. It creates topics `bench.lag.<i>` (10 x 20 partitions) and
groups `bench-lag-<i>-<k>` (5 per topic, each committed at a different offset of every partition, all with
lag > 0), produces records so that every group-partition lags, then times whole poll cycles of the monitor
(Monitor.poll_once: list groups, describe, committed offsets, LSO + high watermark + topic ids, the samples
table, the evaluation). The monitor reads no record. Two figures: "cold" is a fresh monitor every cycle (an
empty samples table: every committed offset is dated with the broker's time index, a first round of
requests then refinement rounds; five groups per topic is the hard case, a ListOffsets request asks one
question per partition, so refinements of five offsets per partition take five requests), "warm" one monitor
polled again and again (steady state: offsets dated from its own samples, no time-index request).
Topics and groups are deleted at the end unless --keep. On secured servers the monitor runs as LIAISON_PRINCIPAL
(default admin), since the lag-monitor principal's ACLs cover only the project's groups and topics. The figure
is printed whether or not the target is met; the exit status is 0 unless the servers cannot be reached.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import NewTopic, OffsetSpec

from core import kafka
from core.settings import get_settings
from operations.lag.collect import Collector
from operations.lag.monitor import Monitor

TARGET_S = 1.0


def setup(topics: list[str], partitions: int, per_topic: int, records: int) -> list[str]:
    admin = kafka.admin()
    existing = admin.list_topics(timeout=15).topics
    new = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
    if new:
        for f in admin.create_topics(new, operation_timeout=30).values():
            f.result()
        time.sleep(1.0)  # leaders elected and metadata propagated
    p = kafka.producer({"linger.ms": 20})
    value = b"x" * 200
    for t in topics:
        for part in range(partitions):
            for i in range(records):
                p.produce(t, value=value, key=str(i).encode(), partition=part)
            p.poll(0)
    assert p.flush(60) == 0, "records not delivered"
    ends = {}
    for t in topics:
        lo = admin.list_offsets({TopicPartition(t, i): OffsetSpec.latest() for i in range(partitions)})
        for tp, f in lo.items():
            ends[(tp.topic, tp.partition)] = f.result().offset
    groups = []
    futs = []
    for ti, t in enumerate(topics):
        for k in range(per_topic):
            g = f"bench-lag-{ti}-{k}"
            groups.append(g)
            # group k sits (k + 1) * records / (per_topic + 1) records before the end: every one lags
            behind = max(1, (k + 1) * records // (per_topic + 1))
            tps = [TopicPartition(t, i, max(0, ends[(t, i)] - behind)) for i in range(partitions)]
            futs += list(admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(g, tps)]).values())
    for f in futs:
        f.result()
    return groups


def teardown(topics: list[str], groups: list[str]) -> None:
    admin = kafka.admin()
    for f in admin.delete_consumer_groups(groups, request_timeout=30).values():
        try:
            f.result()
        except Exception:  # noqa: BLE001
            pass
    for f in admin.delete_topics(topics, operation_timeout=30).values():
        try:
            f.result()
        except Exception:  # noqa: BLE001
            pass


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def wait_visible(collector: Collector, groups: set[str], timeout: float = 60.0) -> None:
    """Group listings lag behind offset commits on a fresh broker: wait (untimed) until every group shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = collector.poll()
        if not snap.error and groups <= set(snap.groups):
            return
        time.sleep(1.0)
    raise SystemExit(f"not every benchmark group became visible within {timeout:.0f}s")


def timed_cycles(collector: Collector, cycles: int, cold: bool, groups: set[str]) -> tuple[list[float], dict]:
    wait_visible(collector, groups)
    times, stages = [], {}
    monitor = Monitor(collector, interval=5.0)
    monitor.poll_once()  # warm: the table has its first samples (and its time-index history) before timing
    for _ in range(cycles):
        if cold:
            monitor = Monitor(collector, interval=5.0)
        requests = monitor.index_requests
        collector.timings = {}
        t = time.perf_counter()
        report = monitor.poll_once()
        times.append(time.perf_counter() - t)
        if report.error:
            raise SystemExit(f"poll failed: {report.error}")
        mine = [g for g in report.groups if g.group in groups]
        assert len(mine) == len(groups), f"only {len(mine)} of {len(groups)} groups seen"
        dated = sum(1 for g in mine for p in g.partitions if p.lag_seconds is not None)
        for k, v in {**collector.timings, "time_index_requests": float(monitor.index_requests - requests),
                     "dated": float(dated),
                     "interpolated": float(sum(1 for g in mine for p in g.partitions
                                               if p.lag_seconds_kind == "interpolated"))}.items():
            stages.setdefault(k, []).append(v)
    return times, {k: statistics.median(v) for k, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=15, help="timed poll cycles per mode")
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--groups-per-topic", type=int, default=5)
    parser.add_argument("--records", type=int, default=60, help="records produced per partition")
    parser.add_argument("--keep", action="store_true", help="keep the topics and groups")
    args = parser.parse_args()

    bootstrap = get_settings().kafka_bootstrap()
    try:
        kafka.admin().list_topics(timeout=10)
    except Exception as e:  # noqa: BLE001
        print(f"error: cannot reach Kafka at {bootstrap} ({e}); start the servers with `.venv/bin/liaison infra up` "
              f"or set LIAISON_BOOTSTRAP_SERVERS", file=sys.stderr)
        raise SystemExit(2)
    topics = [f"bench.lag.{i}" for i in range(args.topics)]
    t = time.perf_counter()
    groups = setup(topics, args.partitions, args.groups_per_topic, args.records)
    n_gp = len(groups) * args.partitions
    print(f"kafka {bootstrap}: {len(groups)} groups x {args.partitions} partitions = {n_gp} group-partitions "
          f"on {len(topics)} topics x {args.partitions} partitions, all lagging (setup {time.perf_counter() - t:.1f}s)")
    try:
        # as LIAISON_PRINCIPAL (default admin): the lag-monitor principal may only see liaison* groups and topics
        with Collector(exclude_prefixes=("liaison-readback-",), principal=get_settings().principal) as collector:
            collector.poll()  # connect, metadata: not part of a steady-state cycle
            snap = collector.poll()
            total = sum(len(g.partitions) for g in snap.groups.values())
            print(f"each cycle reads every group on the cluster: {len(snap.groups)} groups, {total} group-partitions")
            results = {}
            for mode, cold in (("cold", True), ("warm", False)):
                times, stages = timed_cycles(collector, args.cycles, cold, set(groups))
                results[mode] = times
                med, p95 = statistics.median(times), pct(times, 0.95)
                detail = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in stages.items()
                                   if k in ("list_groups", "describe_and_offsets", "end_offsets", "time_index"))
                print(f"{mode:5} ({'fresh monitor every cycle' if cold else 'one monitor, steady state'}): "
                      f"median {med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms over {len(times)} cycles; "
                      f"ratio to the {TARGET_S:g} s target: {med / TARGET_S:.2f} (median), {p95 / TARGET_S:.2f} (p95)"
                      f"\n      stages (median): {detail}; time-index requests {stages['time_index_requests']:.0f}, "
                      f"group-partitions dated {stages['dated']:.0f} ({stages['interpolated']:.0f} interpolated)")
            verdict = "met" if pct(results["cold"], 0.95) <= TARGET_S else "NOT met"
            print(f"target (one cycle over {n_gp} group-partitions <= {TARGET_S:g} s, cold p95): {verdict}")
    finally:
        if not args.keep:
            teardown(topics, groups)


if __name__ == "__main__":
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _servers import bench_servers

    with bench_servers():  # the environment's servers, or a private set in .state/bench
        main()

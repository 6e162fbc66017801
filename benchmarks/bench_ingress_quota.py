"""Partner isolation under load: USA's inbound latency, unloaded and while RUS floods far above its quota.

    .venv/bin/python benchmarks/bench_ingress_quota.py [--seconds 20] [--rate 50] [--flood-record 16384]

Runs against LIAISON_BOOTSTRAP_SERVERS + LIAISON_SCHEMA_REGISTRY_URL, or a private set of servers it starts in
.state/bench (benchmarks/_servers.py) and stops afterwards; applies deploy/quotas.yaml (idempotent: `infra up`
has normally done it) and prints the partners' quotas as the broker holds them.

The probe: partner-usa produces a 1 KB record every 1/rate s (acks=all, linger 0) to its inbound topic
liaison.inbound.usa.air.track, and a consumer as the ingress guard's principal (read_committed, assigned at the
end) reads them back; latency = consume time - send time (one process, one clock). Measured three times for
--seconds each, after 2 s of warm-up: unloaded, then while a second process floods liaison.inbound.rus.air.track as
partner-rus with --flood-record bytes per record, as fast as its client may (batches up to 100 KB: inbound
topics take 128 KiB). The broker lets an idle principal send about 10 s worth of its quota at once (its rate
window is padded to 10 s), so the flooded run starts at the flood's first throttle (KIP-219 throttle_time_ms,
seen by librdkafka's throttle_cb): what is measured is the throttled steady state; then unloaded again (the
noise of the machine between runs). Prints p50/p99 of the
runs, their ratios (target: flooded within 2x of unloaded), and RUS's rates: its burst before the first
throttle (how far above the quota it pushes) and its acknowledged rate after it, against producer_byte_rate.

The records are probes (not Avro): on servers where an ingress guard runs, it quarantines them. The figures are
printed whether or not the target is met; the exit status is 0 unless the servers cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import bench_servers  # noqa: E402

MIB = 1 << 20
TARGET_RATIO = 2.0
WARMUP_S = 2.0


# ----------------------------------------------------------------------------------------- the flood (own process)


def flood(principal: str, topic: str, record: int) -> None:
    """Produce to ``topic`` as fast as the client may until SIGTERM; JSON lines on stdout: "started", "throttled"
    at the first throttle, then "done" with the figures."""
    from core import kafka

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    acks: list[tuple[float, int]] = []
    throttles: list[tuple[float, float]] = []

    def say(**kv):
        print(json.dumps(kv), flush=True)

    def on_throttle(e):
        if e.throttle_time > 0:
            if not throttles:
                say(event="throttled", after_s=time.monotonic() - t0, throttle_s=e.throttle_time)
            throttles.append((time.monotonic(), e.throttle_time))

    p = kafka.producer({"compression.type": "none", "linger.ms": 5, "batch.size": 100_000, "acks": "all",
                        # a small queue: a throttled client then waits in produce(), it does not buffer a gigabyte
                        "queue.buffering.max.kbytes": 4096, "throttle_cb": on_throttle}, principal=principal)
    value = os.urandom(record)
    t0 = time.monotonic()
    say(event="started")
    while not stop.is_set():
        try:
            p.produce(topic, value, key=uuid.uuid4().bytes,
                      on_delivery=lambda err, msg: err is None and acks.append((time.monotonic(), len(msg.value()))))
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    end = time.monotonic()
    p.purge()
    p.flush(10)
    acked = [(t, n) for t, n in acks if t <= end]
    first = throttles[0][0] if throttles else None
    before = sum(n for t, n in acked if first is None or t <= first)
    after = [(t, n) for t, n in acked if first is not None and t > first]
    say(event="done", seconds=end - t0, bytes=sum(n for _, n in acked), throttles=len(throttles),
        max_throttle_s=max((x for _, x in throttles), default=0.0),
        first_throttle_s=None if first is None else first - t0,
        burst_rate=before / ((first or end) - t0),
        steady_rate=sum(n for _, n in after) / (end - first) if first is not None and end > first else None)


# ----------------------------------------------------------------------------------------- the probe


def probe(topic: str, seconds: float, rate: float) -> list[float]:
    """USA's produce -> consume latencies (ms) on its inbound topic, one record every 1/rate s."""
    from confluent_kafka import OFFSET_END, TopicPartition

    from core import kafka

    c = kafka.consumer(f"liaison-ingress-bench-{uuid.uuid4().hex[:8]}",
                       {"fetch.wait.max.ms": 50, "enable.partition.eof": False}, principal="ingress")
    parts = c.list_topics(topic, timeout=15).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
    p = kafka.producer({"linger.ms": 0, "acks": "all", "compression.type": "none"}, principal="partner-usa")
    value = os.urandom(1000)
    run = uuid.uuid4().hex.encode()
    lat: list[float] = []
    # the assignment at the end is resolved on the first fetches: consume until they answered
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(tp.offset < 0 for tp in c.position(c.assignment())):
        c.poll(0.1)
    t_start = time.monotonic()
    t_end = t_start + WARMUP_S + seconds
    next_send = t_start
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if now >= next_send:
            p.produce(topic, value, key=uuid.uuid4().bytes,
                      headers=[("bench-run", run), ("sent-ns", str(time.monotonic_ns()).encode())])
            p.poll(0)
            next_send += 1.0 / rate
        for m in c.consume(100, max(0.0, min(next_send, t_end) - time.monotonic())):
            if m.error() is not None:
                continue
            h = dict(m.headers() or [])
            if h.get("bench-run") != run:
                continue
            sent = int(h["sent-ns"])
            if (sent / 1e9) - t_start >= WARMUP_S:
                lat.append((time.monotonic_ns() - sent) / 1e6)
        p.poll(0)
    p.flush(30)
    c.close()
    return lat


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (after 2 s warm-up)")
    ap.add_argument("--rate", type=float, default=50.0, help="USA probe records per second")
    ap.add_argument("--flood-record", type=int, default=16384, help="bytes per RUS flood record")
    ap.add_argument("--flood-as", help=argparse.SUPPRESS)  # the flood process
    ap.add_argument("--flood-topic", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.flood_as:
        flood(args.flood_as, args.flood_topic, args.flood_record)
        return
    with bench_servers():
        run(args.seconds, args.rate, args.flood_record)


def _next_event(proc: subprocess.Popen, want: str, timeout: float) -> dict:
    """The next JSON line of the flood process whose event is ``want`` (waits for the line, bounded)."""
    out: dict = {}

    def read():
        for line in proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == want:
                out.update(ev)
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if not out:
        raise SystemExit(f"the flood process did not report {want!r} within {timeout:.0f}s "
                         f"(exit {proc.poll()}): {proc.stderr.read() if proc.poll() is not None else ''}")
    return out


def run(seconds: float, rate: float, flood_record: int) -> None:
    from core.topics import inbound_topic
    from deploy import topics
    from deploy.quotas import admin_tool, apply_quotas, fmt, load_quotas

    topics.apply_topics(topics.load_topics())
    tool = admin_tool()
    declared = load_quotas()
    apply_quotas(declared, tool)
    held = tool.describe()
    quota = held["partner-rus"]["producer_byte_rate"]
    for principal in ("partner-rus", "partner-usa"):
        print(f"# quotas of {principal} on the broker: "
              + ", ".join(f"{k}={fmt(v)}" for k, v in sorted(held.get(principal, {}).items())))
    usa_topic, rus_topic = inbound_topic("USA", "AirTrack"), inbound_topic("RUS", "AirTrack")

    print(f"# unloaded: {usa_topic}, {rate:.0f} records/s for {seconds:.0f}s")
    unloaded = probe(usa_topic, seconds, rate)

    print(f"# flooded: partner-rus floods {rus_topic} ({flood_record} B records); measuring from its first throttle")
    proc = subprocess.Popen([sys.executable, __file__, "--flood-as", "partner-rus", "--flood-topic", rus_topic,
                             "--flood-record", str(flood_record)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ)
    try:
        _next_event(proc, "started", 60)
        throttled = _next_event(proc, "throttled", 120)
        print(f"# first throttle {throttled['after_s']:.1f}s into the flood ({throttled['throttle_s']:.2f}s)")
        flooded = probe(usa_topic, seconds, rate)
    finally:
        proc.send_signal(signal.SIGTERM)
    done = _next_event(proc, "done", 60)
    proc.wait(30)
    print("# unloaded again, after the flood (the machine's own noise between runs)")
    after = probe(usa_topic, seconds, rate)

    rows = [("unloaded", unloaded), ("RUS flooding", flooded), ("unloaded after", after)]
    print(f"USA inbound latency, produce -> consume ({rate:.0f} records/s, {seconds:.0f}s each, acks=all):")
    for name, xs in rows:
        print(f"  {name:14s}: p50 {pct(xs, 0.5):7.1f} ms   p99 {pct(xs, 0.99):7.1f} ms   ({len(xs)} records)")
    r50, r99 = pct(flooded, 0.5) / pct(unloaded, 0.5), pct(flooded, 0.99) / pct(unloaded, 0.99)
    print(f"  ratio flooded/unloaded: p50 {r50:.2f}x   p99 {r99:.2f}x   (target <= {TARGET_RATIO:.0f}x: "
          f"{'met' if max(r50, r99) <= TARGET_RATIO else 'NOT met'}; against the run after: p50 "
          f"{pct(flooded, 0.5) / pct(after, 0.5):.2f}x, p99 {pct(flooded, 0.99) / pct(after, 0.99):.2f}x)")
    print(f"RUS flood (producer_byte_rate {quota / MIB:.2f} MiB/s):")
    print(f"  burst before its first throttle: {done['burst_rate'] / MIB:7.2f} MiB/s "
          f"({done['burst_rate'] / quota:.1f}x the quota, for {done['first_throttle_s'] or 0:.1f}s)")
    steady = done["steady_rate"] or 0.0
    print(f"  acknowledged after it          : {steady / MIB:7.2f} MiB/s ({steady / quota:.2f}x the quota; "
          f"{done['throttles']} throttles, up to {done['max_throttle_s']:.2f}s)")
    print(f"  overall                        : {done['bytes'] / MIB:.1f} MiB in {done['seconds']:.1f}s = "
          f"{done['bytes'] / done['seconds'] / MIB:.2f} MiB/s")


if __name__ == "__main__":
    main()

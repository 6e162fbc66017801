"""Deconfliction under load (issue 12, acceptance 4): 500 active sorties per side and 2,000 track updates per second.
Not a test: it prints the figures, whether or not the target (p99 <= 1 s from the triggering record to its alert) is
met.

    .venv/bin/python benchmarks/bench_deconfliction.py [--seconds 30] [--batch-ms 100] [--sorties 500] [--rate 2000]
    .venv/bin/python benchmarks/bench_deconfliction.py --broker [--seconds 30]       # through the real service

The scenario (deterministic for --seed): ``--sorties`` planned sorties per side (ours, RUS) over Syria (lat 33-37,
lon 36-41), routes of 4-6 waypoints in altitude bands from FL050 to FL400, all airborne during the run; each flies
its route and reports a track every ``2 * sorties / rate`` seconds (500 + 500 tracks at 2 Hz = 2,000 updates/s).

Engine mode (default): the pure engine (:meth:`State.step`) is driven directly, in batches of ``--batch-ms`` of
event time, the clock at each batch's end. CPU per update = process CPU time of the steps / updates. Latency from a
record to its alert = time from the record to the end of its batch (the wait for the batch, at most batch-ms) plus
the step's wall time; p50/p99 over the records of batches that emitted an alert (the triggering record is one of
them), and over every batch.

Broker mode (``--broker``): on servers of its own (benchmarks/_servers.py, or the environment's), the plans and the
track stream are published at the rate (ours on the internal topics, RUS's as partner-origin records written as
admin with the origin schema), `liaison deconflict` runs as a subprocess on a fresh group, and probe encounters
(head-on track pairs at FL450 with callsigns PROBE <n>, whose second report raises the conflict) are timed from
that report's acknowledgment to its NEW alert read back (read_committed) from the alert topic. Its CPU per update
is the subprocess's CPU time (/proc) over the updates it consumed.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.deconfliction import State, geometry as geo  # noqa: E402
from consumers.deconfliction.params import Params  # noqa: E402

KT = 420.0
V_MS = KT * geo.KT_MS
BANDS = [(fl * 100, fl * 100 + 1000) for fl in range(50, 400, 10)]
LAT, LON = (32.0, 38.0), (35.0, 43.0)


def _dt(ms: float) -> datetime:
    return datetime.fromtimestamp(round(ms) / 1000, tz=timezone.utc)


def _label(ms: float, rel=("FRA", "RUS")) -> dict:
    return {"classification": "CONFIDENTIAL", "releasable_to": list(rel), "caveats": [], "originator": "bench",
            "created_at": _dt(ms), "message_id": str(uuid.uuid4())}


class Sortie:
    """A planned route flown at constant speed: plan record, and the track report at any time."""

    def __init__(self, side: str | None, n: int, rng: random.Random, t0_ms: int, run_s: float):
        self.side, self.n = side, n
        self.sortie_id = f"{side or 'FRA'}-{n:04d}"
        self.callsign = f"{'RAFALE' if side is None else 'SOKOL'} {n:03d}"
        self.track_id = f"{side or 'FR'}T{n:04d}"
        # long enough to be airborne over the whole run: from takeoff before t0 to after t0 + run
        pts = [(rng.uniform(*LAT), rng.uniform(*LON))]
        dist = 0.0
        lead_s = rng.uniform(60, 900)
        need = V_MS * (lead_s + run_s + 120)
        heading = rng.uniform(0, 360)
        while dist < need or len(pts) < 4:
            heading = (heading + rng.uniform(-60, 60)) % 360
            p = geo.destination(pts[-1], heading, rng.uniform(40_000, 80_000))
            p = (min(max(p[0], LAT[0]), LAT[1]), min(max(p[1], LON[0]), LON[1]))
            dist += geo.distance_m(pts[-1], p)
            pts.append(p)
        self.points = pts
        band = rng.choice(BANDS)
        self.bands = [band if rng.random() < 0.8 else rng.choice(BANDS) for _ in pts]
        start = t0_ms - lead_s * 1000
        self.etas = [start]
        for a, b in zip(pts, pts[1:]):
            self.etas.append(self.etas[-1] + geo.distance_m(a, b) / V_MS * 1000)
        self.etas = [round(e) for e in self.etas]

    def plan(self, created_ms: float) -> dict:
        rec = {"label": _label(created_ms), "sortie_id": self.sortie_id, "callsign": self.callsign,
               "aircraft_type": "T", "aircraft_count": 2, "status": "ACTIVE",
               "time_windows": [{"start": _dt(self.etas[0]), "end": _dt(self.etas[-1])}],
               "route": [{"name": f"WP{i}", "position": {"lat": p[0], "lon": p[1]},
                          "altitude_band": {"floor_ft": b[0], "ceiling_ft": b[1]}, "eta": _dt(e)}
                         for i, (p, b, e) in enumerate(zip(self.points, self.bands, self.etas))]}
        return rec

    def track(self, t_ms: float) -> dict:
        i = max(0, min(len(self.etas) - 2, next((k for k in range(len(self.etas) - 1) if self.etas[k + 1] >= t_ms),
                                                len(self.etas) - 2)))
        a, b = self.points[i], self.points[i + 1]
        f = (t_ms - self.etas[i]) / max(1, self.etas[i + 1] - self.etas[i])
        f = min(max(f, 0.0), 1.0)
        pos = geo.destination(a, geo.bearing_deg(a, b), geo.distance_m(a, b) * f)
        band = self.bands[i]
        return {"label": _label(t_ms), "track_id": self.track_id, "callsign": self.callsign, "time": _dt(t_ms),
                "position": {"lat": pos[0], "lon": pos[1]}, "altitude_ft": (band[0] + band[1]) // 2,
                "heading_deg": geo.bearing_deg(pos, b), "speed_kt": KT, "sortie_id": self.sortie_id}

    @property
    def source(self) -> str:
        return "AirTrack" if self.side is None else f"{self.side}/AirTrack"

    @property
    def plan_source(self) -> str:
        return "AirMissionPlan" if self.side is None else f"{self.side}/AirMissionPlan"


def scenario(sorties: int, run_s: float, t0_ms: int, seed: int) -> list[Sortie]:
    rng = random.Random(seed)
    return [Sortie(side, n, rng, t0_ms, run_s) for side in (None, "RUS") for n in range(sorties)]


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


# ---------------------------------------------------------------------------------------------- engine mode


def engine_bench(args) -> None:
    t0 = 1_800_000_000_000
    world = scenario(args.sorties, args.seconds, t0, args.seed)
    period_ms = 1000 * len(world) / args.rate  # each track reports this often
    phase = {s: random.Random(s.n).uniform(0, period_ms) for s in world}
    state = State(Params())
    c0, w0 = time.process_time(), time.perf_counter()
    r = state.step([(s.plan_source, s.plan(t0 - 1000)) for s in world], t0)
    load_cpu, load_wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"# plans loaded: {len(world)} ({args.sorties} per side) in {load_wall:.2f} s wall / {load_cpu:.2f} s CPU; "
          f"{len(r.emissions)} plan alerts NEW; objects {len(state.picture.objects)}")
    statuses: Counter = Counter(e.status for e in r.emissions)
    kinds: Counter = Counter(e.alert.conflict.kind for e in r.emissions)
    # every report of the run in time order
    end = t0 + args.seconds * 1000
    warm = t0 + args.warmup * 1000
    reports = sorted((t0 + phase[s] + k * period_ms, i) for i, s in enumerate(world)
                     for k in range(int((end - t0) / period_ms) + 1) if t0 + phase[s] + k * period_ms < end)
    # One consumer, as the service: a batch is what has arrived when the previous step is done (at least
    # --batch-ms of input, at most --max-batch records), stepped with the clock at its cut; the engine's wall time
    # is real, the arrival times are the event times (so a CPU share above 1 shows as a growing backlog).
    steps_cpu, step_wall, lat_all, lat_alert, sizes = 0.0, [], [], [], []
    updates, i, free, cut = 0, 0, float(t0), float(t0)
    while i < len(reports):
        cut = max(free, cut + args.batch_ms)
        j = i
        while j < len(reports) and reports[j][0] < cut and j - i < args.max_batch:
            j += 1
        if j == i:
            continue
        if j - i == args.max_batch:
            cut = max(reports[j - 1][0], free)
        chunk = reports[i:j]
        i = j
        batch = [(world[k].source, world[k].track(at)) for at, k in chunk]
        c, w = time.process_time(), time.perf_counter()
        res = state.step(batch, round(cut))
        cpu, wall = time.process_time() - c, time.perf_counter() - w
        free = cut + (cpu if args.step_time == "cpu" else wall) * 1000
        if chunk[0][0] >= warm:
            steps_cpu += cpu
            updates += len(batch)
            step_wall.append(wall)
            sizes.append(len(batch))
            lats = [(free - at) / 1000 for at, _k in chunk]
            lat_all += lats
            if res.emissions:
                lat_alert += lats
            statuses.update(e.status for e in res.emissions)
            kinds.update(e.alert.conflict.kind for e in res.emissions)
    measured_s = (end - warm) / 1000
    print(f"# engine: {updates} track updates over {measured_s:.0f} s of event time ({updates / measured_s:.0f}/s); "
          f"batches: what arrived while the last step ran, >= {args.batch_ms} ms, <= {args.max_batch} records "
          f"(p50 {pct(sizes, 50)}, max {max(sizes)} records); a step lasts its {args.step_time} time")
    print(f"cpu_per_update_us        {steps_cpu / max(1, updates) * 1e6:10.1f}")
    print(f"cpu_share_of_one_core    {steps_cpu / measured_s:10.3f}   (CPU seconds per second of input; > 1: the "
          f"backlog grows)")
    print(f"step_wall_ms p50/p99/max {pct(step_wall, 50) * 1000:8.1f} {pct(step_wall, 99) * 1000:8.1f} "
          f"{max(step_wall) * 1000:8.1f}")
    print(f"latency_s all p50/p99    {pct(lat_all, 50):8.3f} {pct(lat_all, 99):8.3f}   (record -> end of its step)")
    print(f"latency_s alert p50/p99  {pct(lat_alert, 50):8.3f} {pct(lat_alert, 99):8.3f}   "
          f"(records of steps that emitted; target p99 <= 1 s: {'met' if pct(lat_alert, 99) <= 1 else 'NOT met'})")
    print(f"alerts                   {dict(statuses)} by kind {dict(kinds)}; open {len(state.alerts)}")


# ---------------------------------------------------------------------------------------------- broker mode


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _batches(log_lines: list[str], since: datetime) -> list[tuple[float, int]]:
    """(commit time in s, records) of the service's "batch committed" events from ``since``."""
    import json

    out = []
    for line in log_lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "batch committed":
            at = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
            if at >= since:
                out.append((at.timestamp(), int(e.get("records", 0))))
    return out


def broker_bench(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _servers import bench_servers

    with bench_servers():
        _broker_run(args)


def _broker_run(args) -> None:
    import subprocess
    import threading

    from confluent_kafka import TopicPartition
    from confluent_kafka.serialization import MessageField, SerializationContext

    from core import kafka, serde
    from core.readback import committed_offsets, end_offsets, seed_group
    from core.topics import origin_topic, topic_for
    from schemas.examples import example
    from schemas.models import to_avro
    from tests.integration.test_deconfliction import INPUTS, LIAISON, Writer

    writer = Writer()
    base = {t: to_avro(example(t)) for t in ("AirMissionPlan", "AirTrack")}
    topic_of = {"AirMissionPlan": topic_for("AirMissionPlan"), "AirTrack": topic_for("AirTrack"),
                "RUS/AirMissionPlan": origin_topic("RUS", "AirMissionPlan"),
                "RUS/AirTrack": origin_topic("RUS", "AirTrack")}

    def send(source: str, key: str, rec: dict) -> None:
        while True:
            try:
                writer.send(topic_of[source], key, {**base[source.rsplit("/", 1)[-1]], **rec})
                return
            except BufferError:
                writer.producer.poll(0.01)

    tag = uuid.uuid4().hex[:6]
    group = f"liaison-deconflict-bench-{tag}"
    alert_topic = topic_for("DeconflictionAlert")
    seed_group(group, end_offsets(INPUTS))
    alerts_from = end_offsets([alert_topic])
    t0 = round(time.time() * 1000)
    world = scenario(args.sorties, args.seconds + 120, t0, args.seed)
    for s in world:
        send(s.plan_source, s.sortie_id, s.plan(t0 - 1000))
    writer.flush()
    print(f"# {len(world)} plans published ({args.sorties} per side); starting liaison deconflict (group {group})")
    proc = subprocess.Popen([LIAISON, "deconflict", "--group", group, "--instance", f"bench-{tag}",
                             "--max-idle", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=os.environ)
    err_lines: list[str] = []
    threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()

    # the alerts, read back as the air component's feed is: read_committed, from the alert topic's end
    deser = serde.avro_deserializer()
    seen: dict[str, float] = {}
    counts: Counter = Counter()
    stop = threading.Event()

    def receive() -> None:
        c = kafka.consumer(f"bench-alerts-{tag}", {"isolation.level": "read_committed", "fetch.wait.max.ms": 10})
        c.assign([TopicPartition(t, q, o) for (t, q), o in alerts_from.items()])
        while not stop.is_set():
            for m in c.consume(1000, 0.05):
                if m.error() is not None:
                    continue
                r = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
                counts[(r["status"], r["kind"])] += 1
                cs = r["ours"]["callsign"]
                if cs.startswith("PROBE") and r["status"] == "NEW":
                    seen.setdefault(cs, time.perf_counter())
        c.close()

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    deadline = time.monotonic() + 300
    plans_end = end_offsets(INPUTS)
    while committed_offsets(group, INPUTS) != plans_end:   # the plans are in its picture
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"deconflict did not take the plans in: {''.join(err_lines)[-3000:]}")
        time.sleep(0.5)
    load_cpu = _proc_cpu_s(proc.pid)
    track_phase_from = datetime.now(timezone.utc)
    print(f"# plans taken in; service CPU so far {load_cpu:.1f} s; {dict(counts)} alerts")

    # the track stream at the rate, each sortie reporting every len(world) / rate seconds, and a probe every
    # --probe-every seconds: a head-on pair (ours, then RUS's) at FL450, above every sortie; RUS's report raises it
    period = len(world) / args.rate
    sent: dict[str, float] = {}
    start = time.perf_counter()
    spy = None
    if args.profile:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid),
                                "--format", "raw", "--output", args.profile, "--rate", "50", "--duration",
                                str(round(args.seconds))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu0, k, updates, probes = _proc_cpu_s(proc.pid), 0, 0, 0
    rng = random.Random(args.seed)
    next_probe = start + 1.0
    while (now := time.perf_counter()) < start + args.seconds:
        due = int((now - start) / period * len(world))   # reports due by now, round robin over the world
        while k < due:
            s = world[k % len(world)]
            send(s.source, s.track_id, s.track(time.time() * 1000))
            k += 1
            updates += 1
        if now >= next_probe:
            probes += 1
            centre = (rng.uniform(*LAT), rng.uniform(*LON))
            cs = f"PROBE {probes:03d}"
            t_ms = time.time() * 1000
            for side, bearing, tid in ((None, 270.0, f"PR{probes}"), ("RUS", 90.0, f"RPR{probes}")):
                pos = geo.destination(centre, bearing, 20_000)
                rec = {"label": _label(t_ms), "track_id": tid, "callsign": cs, "time": _dt(t_ms),
                       "position": {"lat": pos[0], "lon": pos[1]}, "altitude_ft": 45_000,
                       "heading_deg": (bearing + 180) % 360, "speed_kt": KT, "sortie_id": None}
                send("AirTrack" if side is None else "RUS/AirTrack", tid, rec)
                writer.producer.flush(10)
            sent[cs] = time.perf_counter()   # RUS's report (the trigger) is acknowledged: the clock starts
            updates += 2
            next_probe += args.probe_every
        writer.producer.poll(0)
        time.sleep(0.001)
    writer.flush()
    published_s = time.perf_counter() - start
    ends = end_offsets(INPUTS)
    deadline = time.monotonic() + 600
    while committed_offsets(group, INPUTS) != ends:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"deconflict did not catch up: {''.join(err_lines)[-3000:]}")
        time.sleep(0.2)
    caught_up_s = time.perf_counter() - start
    cpu = _proc_cpu_s(proc.pid) - cpu0
    wait_until = time.monotonic() + 30
    while len(seen) < len(sent) and time.monotonic() < wait_until:
        time.sleep(0.1)
    if spy is not None:
        spy.wait(60)
        print(f"# py-spy profile of the service over the track stream: {args.profile} (raw, collapsed stacks)")
    stop.set()
    rx.join(10)
    proc.terminate()
    proc.wait(60)
    lat = [seen[cs] - t for cs, t in sent.items() if cs in seen]
    batches = _batches(err_lines, track_phase_from)
    print(f"# broker: {updates} track updates published in {published_s:.1f} s ({updates / published_s:.0f}/s), "
          f"all consumed and committed {caught_up_s:.1f} s after the start; {len(sent)} probes, {len(lat)} alerted")
    print(f"cpu_per_update_us        {cpu / max(1, updates) * 1e6:10.1f}   (the service process, /proc)")
    print(f"cpu_share_of_one_core    {cpu / published_s:10.3f}")
    print(f"latency_s probe p50/p99  {pct(lat, 50):8.3f} {pct(lat, 99):8.3f}   (trigger acknowledged -> its NEW "
          f"alert read back, read_committed; target p99 <= 1 s: {'met' if lat and pct(lat, 99) <= 1 else 'NOT met'})")
    print(f"alerts                   {dict(counts)}")
    if batches:
        sizes, gaps = [b[1] for b in batches], [b2[0] - b1[0] for b1, b2 in zip(batches, batches[1:])]
        print(f"batches                  {len(batches)} committed over the track stream; records p50/p99 "
              f"{pct(sizes, 50)} {pct(sizes, 99)}; seconds between commits p50/p99 {pct(gaps, 50):.3f} "
              f"{pct(gaps, 99):.3f}")
    if len(lat) < len(sent):
        raise SystemExit(f"{len(sent) - len(lat)} probe(s) raised no alert")


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sorties", type=int, default=500, help="active sorties per side")
    ap.add_argument("--rate", type=float, default=2000.0, help="track updates per second, both sides")
    ap.add_argument("--seconds", type=float, default=30.0, help="event time measured (after the warm-up)")
    ap.add_argument("--warmup", type=float, default=5.0, help="event seconds not measured")
    ap.add_argument("--batch-ms", type=int, default=100, help="engine mode: least event time per step")
    ap.add_argument("--max-batch", type=int, default=5000, help="engine mode: most records per step (the "
                    "service's --batch-size)")
    ap.add_argument("--step-time", choices=("wall", "cpu"), default="wall", help="engine mode: a step lasts its "
                    "wall time (this machine as loaded now) or its CPU time (an unshared core)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--broker", action="store_true", help="through `liaison deconflict` on the real broker")
    ap.add_argument("--profile", metavar="FILE", help="broker mode: py-spy the service over the track stream into "
                    "FILE (collapsed stacks)")
    ap.add_argument("--probe-every", type=float, default=1.0, help="broker mode: seconds between probe encounters")
    args = ap.parse_args()
    args.seconds += args.warmup
    if args.broker:
        broker_bench(args)
    else:
        engine_bench(args)


if __name__ == "__main__":
    main()

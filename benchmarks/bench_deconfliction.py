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
(head-on track pairs with callsigns PROBE <n>, whose second report raises the conflict) are timed from that report's
produce call to the alert read back (read_committed) from the alert topic. Its CPU per update is the subprocess's
CPU time (/proc) over the updates it consumed.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
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


def broker_bench(args) -> None:
    raise SystemExit("--broker: not measured yet (engine mode only)")


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
    args = ap.parse_args()
    args.seconds += args.warmup
    if args.broker:
        broker_bench(args)
    else:
        engine_bench(args)


if __name__ == "__main__":
    main()

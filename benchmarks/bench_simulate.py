"""Throughput of the simulator: records per second generated (no Kafka, no servers).

    .venv/bin/python benchmarks/bench_simulate.py [--rate 1000] [--duration 20] [--repeat 3]

Runs ``Simulator("all", seed=1).events(rate, duration)`` and prints the best of ``--repeat`` runs in
records/s, overall and with sentinels; the numbers are for orientation only (no test asserts on
timing; ~50,000 records/s on a laptop).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from producers.simulate import Simulator

START = datetime(2015, 11, 23, 6, 0, tzinfo=timezone.utc)


def records_per_second(rate: float, duration: float, repeat: int, *, components: str = "all",
                       sentinels: bool = False) -> tuple[int, float]:
    """(records per run, best records/s of ``repeat`` runs)."""
    best = 0.0
    n = 0
    for _ in range(repeat):
        started = time.perf_counter()
        n = sum(1 for _ in Simulator(components, seed=1, start=START, sentinels=sentinels).events(rate, duration))
        best = max(best, n / (time.perf_counter() - started))
    return n, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second of event time")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of event time per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is reported)")
    args = parser.parse_args()

    print(f"{'case':28} {'records':>8} {'records/s':>10}")
    for case, components, sentinels in (("all components", "all", False), ("all, with sentinels", "all", True),
                                        ("naval", "naval", False), ("air", "air", False), ("intel", "intel", False)):
        n, rps = records_per_second(args.rate, args.duration, args.repeat, components=components, sentinels=sentinels)
        print(f"{case:28} {n:8d} {rps:10.0f}")


if __name__ == "__main__":
    main()

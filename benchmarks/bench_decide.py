"""Micro-benchmark of the release decision: microseconds per decide() call, per partner and type.

    .venv/bin/python benchmarks/bench_decide.py [--number N] [--types AirTrack,StrikeReport]

Uses the demo policies (deploy/policies) with in-memory keys and the example records; the numbers
are for orientation only (no test asserts on timing).
"""

from __future__ import annotations

import argparse
import copy
import timeit
from pathlib import Path

from release import SecretStore, decide, load_policies
from schemas.examples import example
from schemas.models import to_avro

REPO = Path(__file__).resolve().parent.parent


def bench(type_name: str, record: dict, policy, number: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs, in microseconds per decision."""
    timer = timeit.Timer(lambda: decide(type_name, record, policy))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=50_000, help="decisions per timing run")
    parser.add_argument("--types", default="AirTrack,StrikeReport", help="comma-separated message types")
    parser.add_argument("--policies", type=Path, default=REPO / "deploy" / "policies")
    args = parser.parse_args()

    keys = {"RUS": bytes(range(32)), "USA": bytes(range(32, 64))}
    policies = load_policies(args.policies, SecretStore.in_memory(keys))
    print(f"{'partner':8} {'type':22} {'case':28} {'us/decision':>12}")
    for type_name in args.types.split(","):
        record = to_avro(example(type_name))
        cases = [("example", record)]
        if "group_id" in record:
            cases.append(("non-designated group", {**record, "group_id": "hts"}))
        above = copy.deepcopy(record)
        above["label"]["classification"] = "TOP_SECRET"
        cases.append(("above ceiling", above))
        for partner, policy in policies.items():
            for case, value in cases:
                decision = decide(type_name, value, policy)
                micros = bench(type_name, value, policy, args.number)
                print(f"{partner:8} {type_name:22} {case + ' -> ' + decision.decision:28} {micros:12.2f}")


if __name__ == "__main__":
    main()

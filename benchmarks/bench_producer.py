"""Producer benchmark: typed model -> Avro -> Kafka (acks=all) vs raw produce of the same pre-encoded bytes.

    .venv/bin/python benchmarks/bench_producer.py [--records 100000] [--rounds 3] [--profile]

Both paths use the same idempotent acks=all producer configuration, topic, keys and headers; the baseline
is measured in the same run, twice: through one producer, and through the typed path's own producers (one per
component principal). Rounds alternate the three; the medians are reported. Prints records/s of each and the
ratios (target >= 0.5, issue 13). --profile prints the top functions of the typed path's first round (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import bench_servers  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of typed, raw, raw (medians reported)")
    args = ap.parse_args()
    with bench_servers():
        run(args.records, args.profile, args.rounds)


def run(n: int, profile: bool, rounds: int) -> None:
    import schemas
    from core.topics import topic_for
    from core import kafka
    from producers.publisher import Publisher, component_of, producer_principal_of
    from producers.simulate import sample
    from schemas.models import model_name, to_avro

    print(f"# generating {n} simulated models (not timed)")
    models = sample(n, seed=11, rate=2000.0)
    # The benchmark holds every model in memory at once, which a real producer never does; without this the
    # cyclic GC rescans them all again and again and dominates the typed path. Freeze them (both paths).
    gc.collect()
    gc.freeze()

    warm = sample(2_000, seed=12, rate=2000.0)  # every type, every component: connections up before timing

    pub = Publisher()
    for name in schemas.MESSAGE_TYPES:  # registry lookups once, outside the timing
        pub.encoder(name)
    for m in warm:  # its producers (one per component principal) connected, partitions' leaders known
        pub.publish(m)
    pub.flush()

    def typed_rate(prof=None) -> float:
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        for m in models:
            pub.publish(m)
        pub.flush()
        if prof:
            prof.disable()
        return n / (time.perf_counter() - t0)

    # raw path: the same bytes, keys and headers, encoded beforehand
    encoded = []
    for m in models:
        name = model_name(m)
        enc = pub.encoder(name)
        encoded.append((topic_for(name), schemas.key_of(name, m).encode(), enc.encode(to_avro(m)),
                        [("message_id", str(m.label.message_id).encode()), ("type", name.encode()),
                         ("originator", m.label.originator.encode()), ("schema_id", str(enc.schema_id).encode())]))

    def raw_rate(producers: dict) -> float:
        t0 = time.perf_counter()
        for topic, key, value, headers in encoded:
            p = producers[topic]
            while True:
                try:
                    p.produce(topic, value=value, key=key, headers=headers)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        assert all(p.flush(60) == 0 for p in set(producers.values()))
        return n / (time.perf_counter() - t0)

    topics = sorted({t for t, *_ in encoded})
    one = kafka.producer()  # raw through one producer (the bench's own principal)
    # raw through the producers the typed path uses: one per component principal (least privilege), the same
    # connections and batching, so that the ratio is what typing and encoding cost
    per_component = {c: kafka.producer(principal=producer_principal_of(c)) for c in {component_of(t) for t in topics}}
    raw_one = {t: one for t in topics}
    raw_same = {t: per_component[component_of(t)] for t in topics}
    for producers in (raw_one, raw_same):  # the same warm-up
        for m in warm:
            name = model_name(m)
            producers[topic_for(name)].produce(topic_for(name), value=pub.encoder(name).encode(to_avro(m)),
                                               key=schemas.key_of(name, m).encode())
        for p in set(producers.values()):
            p.flush(60)

    # rounds alternate the three, so that none is measured alone on a colder broker (its JIT, new segments)
    rates: dict[str, list[float]] = {"typed": [], "raw_one": [], "raw_same": []}
    prof = cProfile.Profile() if profile else None
    for r in range(rounds):
        rates["typed"].append(typed_rate(prof if r == 0 else None))
        rates["raw_one"].append(raw_rate(raw_one))
        rates["raw_same"].append(raw_rate(raw_same))
        print(f"# round {r + 1}: typed {rates['typed'][-1]:.0f}, raw (one producer) {rates['raw_one'][-1]:.0f}, "
              f"raw (the typed path's producers) {rates['raw_same'][-1]:.0f} records/s")
    typed, raw, raw_same_rate = (statistics.median(rates[k]) for k in ("typed", "raw_one", "raw_same"))

    print(f"records: {n} per round, {rounds} rounds (medians), acks=all, idempotent, lz4")
    print(f"typed model -> Avro -> Kafka        : {typed:10.0f} records/s  ({len(per_component)} producers, one per "
          f"component principal)")
    print(f"raw pre-encoded bytes, one producer : {raw:10.0f} records/s")
    print(f"raw, the typed path's producers     : {raw_same_rate:10.0f} records/s")
    print(f"ratio typed/raw (one producer)      : {typed / raw:10.2f}  (target >= 0.50)")
    print(f"ratio typed/raw (same producers)    : {typed / raw_same_rate:10.2f}  (target >= 0.50)")
    if prof:
        print("# typed path profile (cumulative time, top 15)")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()

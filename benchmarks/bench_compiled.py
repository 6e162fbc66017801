"""The compiled decision against the reference, on one core, no Kafka (issue 13, on the way to acceptance 2).

    .venv/bin/python benchmarks/bench_compiled.py [--seconds 100] [--recipients RUS,USA]

The simulator's records (sentinels planted), encoded as the publisher writes them, are decided for the recipients
(default: the two partners) in one process, both ways, in the same run:

* reference: fastavro decode (uuids as text) + ``release.decide`` per recipient + fastavro encode of each release
  with its derived schema + ``release.envelope``;
* compiled: ``liaison_compiled.Router.decide`` (one decode, every recipient's decision, released bytes and
  envelope).

Printed: records/s of each and their ratio. Not in these figures (the forwarder has them, the compiled path does not
have them yet): framing, validation against the models, the audit records, produce calls.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastavro  # noqa: E402

import liaison_compiled as lc  # noqa: E402
import schemas  # noqa: E402
from consumers.ingress.registry import plain_uuids  # noqa: E402
from release import decide, envelope  # noqa: E402
from release.program import program_of  # noqa: E402
from schemas.models import to_avro  # noqa: E402
from tests.unit.forwarder_support import make_env, simulated  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=100.0, help="simulated seconds at 200 records/s")
    ap.add_argument("--recipients", default="RUS,USA")
    args = ap.parse_args()
    env = make_env(Path(tempfile.mkdtemp()))
    codes = args.recipients.split(",")
    records = []
    for m in simulated(args.seconds, seed=3):
        name = type(m).__name__
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schemas.parsed_schema(name), to_avro(m))
        records.append((name, buf.getvalue()))
    routers, encoders = {}, {}
    readers = {t: fastavro.parse_schema(plain_uuids(schemas.load_schema(t))) for t in schemas.MESSAGE_TYPES}
    for t in schemas.MESSAGE_TYPES:
        items = []
        for c in codes:
            p = env.policies[c]
            derived = p.derived_schema(t) if t in p.plans else None
            encoders[(c, t)] = derived and fastavro.parse_schema(derived)
            items.append((c, json.dumps(program_of(p, t, schemas.load_schema(t))), derived and json.dumps(derived),
                          env.secrets.get(c) if p.pseudonymises else None))
        routers[t] = lc.Router(schemas.schema_str(t), items)

    def reference() -> int:
        released = 0
        for name, data in records:
            rec = fastavro.schemaless_reader(io.BytesIO(data), readers[name], None)
            for c in codes:
                d = decide(name, rec, env.policies[c])
                if d.released is not None:
                    out = io.BytesIO()
                    fastavro.schemaless_writer(out, encoders[(c, name)], d.released)
                    envelope(name, d, env.policies[c])
                    released += 1
        return released

    def compiled() -> int:
        released = 0
        for name, data in records:
            for row in routers[name].decide(data):
                released += row[4] is not None
        return released

    results = {}
    for label, fn in (("reference", reference), ("compiled", compiled)):
        t = time.perf_counter()
        n = fn()
        results[label] = (len(records) / (time.perf_counter() - t), n)
    assert results["reference"][1] == results["compiled"][1], results
    ref, comp = results["reference"][0], results["compiled"][0]
    print(f"# {len(records)} simulated records, recipients {', '.join(codes)}, {results['compiled'][1]} releases")
    print(f"reference records/s {ref:10.0f}   (fastavro decode + decide + encode + envelope)")
    print(f"compiled  records/s {comp:10.0f}   (Router.decide: one decode, every recipient)")
    print(f"ratio compiled/reference {comp / ref:6.1f}")


if __name__ == "__main__":
    main()

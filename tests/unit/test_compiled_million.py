"""Issue 13, acceptance 1: the forwarder's pipeline on the compiled core (its routes and its audit encoder, as the
service runs it) and on the reference give identical outputs
(every partner and component record, held record, audit and dead letter: topic, key, value bytes, headers,
timestamp; so every decision, rule and reason, which the audits carry), offsets and counts, on more than 1,000,000
records per run:

* the simulator's stream (our records, every type) and, for each partner, its release of them sent back to us as
  partner-origin records (what the ingress guard writes), in two worker processes (this machine has two cores);
* edge values planted at random in about one record in eight (unicode, empty and 100,000-character strings, ints
  and longs at their bounds, times at the ends of what Python holds and before 1970, grid lines and bucket edges,
  negative coordinates, every enum symbol, nulls, empty and long lists): valid ones are decided, invalid ones
  dead-lettered, both ways alike;
* batches decided with every bucket ended, and with the simulated hour's buckets still open (holds), with and
  without reciprocity pauses;
* and, with hypothesis, batches of edge records it generates and shrinks (``test_hypothesis_edge_batches``).

Each worker also counts what the compiled core routed itself: a comparison where everything fell back to the
reference would prove nothing."""

from __future__ import annotations

import math
import multiprocessing
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import schemas
from consumers.forwarder.compiled import CompiledRoutes, compiled_audit
from consumers.forwarder.pipeline import Pipeline
from consumers.shell.codec import InputDecoder
from consumers.shell.records import InRecord
from core import serde
from core.topics import origin_source, origin_topic, topic_for
from producers.simulate import sample
from release import decide
from release.exchange import origin_schemas
from schemas.agreement import CATEGORY_OF
from schemas.examples import BASE_TIME
from schemas.models import model_name, to_avro
from tests.unit.forwarder_support import FORWARDER, make_env
from tests.unit.test_compiled_encoder import EDGE_DATE, EDGE_DOUBLE, EDGE_INT, EDGE_LONG, EDGE_STR, EDGE_TIME

pytestmark = pytest.mark.unit

#: records compared per run, all workers together (the simulator's, the partners' and the edge records)
TOTAL = 1_010_000
WORKERS = 2
BATCH = 2_000
AFTER = 1_900_000_000_000          # every simulated bucket has ended: releases go out at once
DURING = int(BASE_TIME.timestamp() * 1000) + 20_000   # the simulated hour's buckets are open: holds
EDGE_SHARE = 8                      # one record in EDGE_SHARE gets edge values planted
GRID = [0.0, 0.5, -0.5, 0.25, 1.0, -1.0, 33.0, 35.5, 34.999999, 35.000001, -33.75, 179.75, -179.75, 89.5, -89.5]


class World:
    """The pipelines both ways over one environment (fake registry, shipped policies, fresh keys) and what frames
    the input records."""

    def __init__(self, tmp):
        self.env = env = make_env(tmp)
        self.reference = Pipeline(InputDecoder(env.registry), env.audit, env.plans, FORWARDER, group="g")
        decoder = InputDecoder(env.registry)
        self.routes = CompiledRoutes(env.plans, env.secrets, decoder)
        self.compiled = Pipeline(decoder, compiled_audit(env.audit), env.plans, FORWARDER, group="g",
                                 compiled=self.routes)
        self.encoders = {t: serde.Encoder(env.registry.register(serde.value_subject(topic_for(t)),
                                                                schemas.schema_str(t)), schemas.load_schema(t))
                         for t in schemas.MESSAGE_TYPES}
        self.origin = {}   # source -> (topic, Encoder of the partner-origin schema)
        for source, schema in origin_schemas(p.policy for p in env.plans.values()).items():
            partner, _, type_name = source.partition("/")
            topic = origin_topic(partner, type_name)
            self.origin[source] = (topic, serde.Encoder(env.registry.register(serde.value_subject(topic), schema),
                                                        schema))
        self.partners = sorted({s.partition("/")[0] for s in self.origin})
        self.schemas = {t: schemas.load_schema(t) for t in schemas.MESSAGE_TYPES}

    def compare(self, batch: list[InRecord], now_ms: int, paused) -> Counter:
        a = self.reference.process(batch, now_ms, paused=paused)
        b = self.compiled.process(batch, now_ms, paused=paused)
        assert len(a.outputs) == len(b.outputs)
        for i, (x, y) in enumerate(zip(a.outputs, b.outputs)):
            assert (x.topic, x.key, x.value, x.headers, x.timestamp) == (y.topic, y.key, y.value, y.headers,
                                                                         y.timestamp), (a.source_of(i), x, y)
        assert (a.offsets, a.pauses, a.stats) == (b.offsets, b.pauses, b.stats)
        out = Counter(records=len(batch), dead_lettered=a.stats.dead_lettered)
        for (_code, _type, decision), n in a.stats.counts.items():
            out[decision] += n
        return out


# ------------------------------------------------------------------------------------------ edge values


def _plant(value, t, rnd, named, logical=None):
    """``value`` (as to_avro has it) of Avro type ``t`` with edge values planted at random leaves."""
    if isinstance(t, list):
        other = next(b for b in t if b != "null")
        if value is None:
            return None
        return None if rnd.random() < 0.1 else _plant(value, other, rnd, named)
    if isinstance(t, str):
        if t in named:
            return _plant(value, named[t], rnd, named)
        if rnd.random() < 0.7:
            return value
        if t == "string":
            return value if logical == "uuid" else rnd.choice(EDGE_STR)
        if t in ("double", "float"):
            return rnd.choice(GRID + EDGE_DOUBLE) if rnd.random() < 0.8 else -value
        if t == "int":
            return rnd.choice(EDGE_DATE if logical == "date" else EDGE_INT)
        if t == "long":
            if logical == "timestamp-millis":   # bucket edges: whole minutes, hours and days, and a ms either side
                edge = (value.timestamp() * 1000 if hasattr(value, "timestamp") else value) // 3_600_000 * 3_600_000
                return rnd.choice(EDGE_TIME + [int(edge), int(edge) - 1, int(edge) + 1, int(edge) + 60_000])
            return rnd.choice(EDGE_LONG)
        if t == "boolean":
            return not value
        return value
    kind = t["type"]
    if isinstance(kind, (dict, list)):
        return _plant(value, kind, rnd, named)
    if kind == "record":
        named[t["name"]] = t
        return {f["name"]: _plant(value[f["name"]], f["type"], rnd, named) for f in t["fields"]}
    if kind == "enum":
        named[t["name"]] = t
        return rnd.choice(t["symbols"])
    if kind == "array":
        items = [_plant(v, t["items"], rnd, named) for v in value]
        return rnd.choice([items, items, [], items * 20])
    return _plant(value, kind, rnd, named, t.get("logicalType"))


def _encodes(encoder, record) -> bytes | None:
    try:
        return encoder.encode_model(record)
    except Exception:  # noqa: BLE001 - an edge value its own type cannot hold (fastavro refuses it too)
        return None


# ------------------------------------------------------------------------------------------ the stream


def _records(world: World, models, rnd: random.Random, offsets: dict, edge_share: int = EDGE_SHARE) -> list[InRecord]:
    """Our records of ``models`` (some with edge values) and, now and then, a partner's release of one sent back
    as a partner-origin record."""
    out = []

    def add(topic, value):
        part = rnd.randrange(6)
        off = offsets[(topic, part)] = offsets.get((topic, part), 0) + 1 + (rnd.random() < 0.2)
        out.append(InRecord(topic, part, off, b"k", value, [], 1_700_000_000_000))

    for m in models:
        name = model_name(m)
        enc = world.encoders[name]
        if rnd.randrange(edge_share) == 0:
            value = _encodes(enc, _plant(to_avro(m), world.schemas[name], rnd, {}))
            if value is not None:
                add(topic_for(name), value)
                continue
        add(topic_for(name), enc.encode_model(m))
        if rnd.randrange(10) == 0:   # a partner's copy comes back through the guard
            partner = rnd.choice(world.partners)
            source = origin_source(partner, name)
            if source in world.origin:
                record = to_avro(m)
                view = decide(name, record, world.env.policies[partner]).released
                if view is not None:
                    view["label"] = {**record["label"], "releasable_to": rnd.choice([["FRA"], ["FRA", partner],
                                                                                    ["FRA", "USA", "RUS"]])}
                    topic, origin_enc = world.origin[source]
                    value = _encodes(origin_enc, view)
                    if value is not None:
                        add(topic, value)
    return out


def _pauses(rnd: random.Random):
    if rnd.random() < 0.8:
        return None
    categories = sorted(set(CATEGORY_OF.values()))
    return {p: {c: f"reciprocity: {c} paused (test)" for c in rnd.sample(categories, 2)} for p in ("RUS", "USA")}


def _worker(args) -> tuple[Counter, int, int]:
    seed, n, tmp = args
    world = World(tmp)
    rnd = random.Random(seed)
    totals: Counter = Counter()
    offsets: dict = {}
    done = 0
    while done < n:
        models = sample(BATCH, seed=seed * 1_000 + done // BATCH, rate=2000.0, start=BASE_TIME)
        batch = _records(world, models, rnd, offsets)[:n - done]
        rnd.shuffle(batch)
        totals += world.compare(batch, DURING if rnd.random() < 0.15 else AFTER, _pauses(rnd))
        done += len(batch)
    return totals, world.routes.routed, world.routes.fallbacks


def test_a_million_records_give_the_same_outputs_both_ways(tmp_path):
    per = math.ceil(TOTAL / WORKERS)
    jobs = [(7 + i, per, tmp_path / f"w{i}") for i in range(WORKERS)]
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        results = pool.map(_worker, jobs)
    totals = sum((r[0] for r in results), Counter())
    routed, fallbacks = sum(r[1] for r in results), sum(r[2] for r in results)
    print(f"\ncompared {totals['records']:,} records: {dict(totals)}; compiled core routed {routed:,}, "
          f"reference {fallbacks:,}")
    assert totals["records"] >= 1_000_000
    # every kind of outcome occurred, both ways alike
    assert min(totals["RELEASE"], totals["WITHHOLD"], totals["HELD"], totals["dead_lettered"]) > 100, totals
    # the compiled core decided most of them itself (the rest: invalid edge records, told by the reference)
    assert routed >= 0.8 * totals["records"], (routed, fallbacks)


# ------------------------------------------------------------------------------------------ hypothesis


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("hyp"))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), edge=st.sampled_from([1, 2, 4]), during=st.booleans(),
       paused=st.booleans())
def test_hypothesis_edge_batches(world, seed, edge, during, paused):
    rnd = random.Random(seed)
    models = sample(40, seed=seed % 100_000, rate=2000.0, start=BASE_TIME)
    batch = _records(world, models, rnd, {}, edge_share=edge)
    world.compare(batch, DURING if during else AFTER, _pauses(random.Random(seed)) if paused else None)

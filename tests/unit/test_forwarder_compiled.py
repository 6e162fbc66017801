"""The forwarder's pipeline on the compiled core against the same pipeline on the reference (issue 13): the same
batches give the same outputs, record for record (topic, key, value bytes, headers, timestamp: partner records,
held records, audits, dead letters), the same offsets and the same counts; with reciprocity pauses, holds, poison
pills and invalid records among them. And the compiled core took the records it can take."""

from __future__ import annotations

import random

import pytest

from consumers.forwarder.compiled import CompiledRoutes, compiled_audit
from consumers.forwarder.pipeline import Pipeline
from consumers.shell.codec import InputDecoder
from consumers.shell.records import InRecord
from core import serde
from core.topics import topic_for
from schemas.agreement import CATEGORY_OF
from schemas.examples import BASE_TIME, example
from schemas.models import to_avro
from tests.unit.forwarder_support import FORWARDER, make_env, records_of, simulated

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("secrets"))


def pipelines(env):
    reference = Pipeline(InputDecoder(env.registry), env.audit, env.plans, FORWARDER, group="g")
    decoder = InputDecoder(env.registry)
    compiled = Pipeline(decoder, compiled_audit(env.audit), env.plans, FORWARDER, group="g",
                        compiled=CompiledRoutes(env.plans, env.secrets, decoder))
    return reference, compiled


def _same(a, b):
    assert [(o.topic, o.key, o.value, o.headers, o.timestamp) for o in a.outputs] == \
        [(o.topic, o.key, o.value, o.headers, o.timestamp) for o in b.outputs]
    assert (a.offsets, a.pauses, a.stats) == (b.offsets, b.pauses, b.stats)


def _pills(env) -> list[InRecord]:
    air = to_avro(example("AirTrack"))
    bad = [env.frame("AirTrack", {**air, "altitude_ft": 200_000}),                      # invalid: validation
           env.frame("AirTrack", {**air, "callsign": "   "}),                           # blank
           env.frame("AirTrack", {**air, "label": {**air["label"], "releasable_to": []}}),
           b"\x00\x00\x01", None, env.frame("AirTrack", air)[:-3], env.frame("AirTrack", air) + b"\x00",
           serde.frame(987654, b"\x02")]
    return [InRecord(topic_for("AirTrack"), 5, 100 + i, b"pill", v, [], NOW) for i, v in enumerate(bad)]


def test_the_simulators_stream_gives_the_same_outputs_both_ways(env):
    reference, compiled = pipelines(env)
    models = simulated(30.0, seed=12)
    batch = records_of(env, models) + _pills(env)
    random.Random(1).shuffle(batch)
    routed = sum(compiled.compiled.route(r.topic, r.value, None) is not None for r in batch)
    assert routed >= len(models) * 0.95 and compiled.compiled.refused == {}
    for start in range(0, len(batch), 500):
        part = batch[start:start + 500]
        _same(reference.process(part, NOW), compiled.process(part, NOW))


def test_pauses_and_holds_give_the_same_outputs(env):
    reference, compiled = pipelines(env)
    batch = records_of(env, simulated(20.0, seed=5))
    paused = {"RUS": {CATEGORY_OF["StrikeReport"]: "reciprocity: strike_results paused (test)"},
              "USA": {CATEGORY_OF["AirTrack"]: "reciprocity: air paused (test)"}}
    now = int(BASE_TIME.timestamp() * 1000) + 20_000   # while the simulated hour's buckets are open: holds
    a, b = reference.process(batch, now, paused=paused), compiled.process(batch, now, paused=paused)
    _same(a, b)
    assert a.holds and any(k[2] == "WITHHOLD" for k in a.stats.counts)


def test_a_reload_without_new_routes_falls_back_to_the_reference(env):
    """The routes were built for other plans: the pipeline does not use them (nothing is decided twice or by the
    plans of before)."""
    reference, compiled = pipelines(env)
    compiled.plans = dict(env.plans)        # a reload: new plans, the routes not rebuilt
    batch = records_of(env, simulated(5.0, seed=9))
    _same(reference.process(batch, NOW), compiled.process(batch, NOW))

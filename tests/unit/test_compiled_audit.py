"""The compiled core's DecisionAudit encoder (liaison_compiled.AuditEncoder, used by the forwarder on the compiled
engine) against the Python one (consumers.shell.codec.AuditEncoder, the reference, itself checked byte for byte
against fastavro by tests/unit/test_codec.py): the same bytes for the same call, on generated inputs (unicode and
empty strings, every outcome, offsets and times at the ends of a long, none to many decisions)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

import liaison_compiled as lc
from consumers.forwarder.compiled import compiled_audit
from consumers.shell.codec import AuditEncoder, audit_schema

pytestmark = pytest.mark.unit

SCHEMA = audit_schema()
PY = AuditEncoder(77, SCHEMA)
RS = compiled_audit(PY)
OUTCOMES = next(f for f in SCHEMA["fields"] if f["name"] == "decision")["type"][1]["symbols"]
LONG = st.integers(-2**63, 2**63 - 1)
TEXT = st.text(max_size=300)
DECISION = st.tuples(TEXT, st.sampled_from(OUTCOMES), TEXT, TEXT, TEXT, st.none() | TEXT, st.none() | LONG,
                     st.none() | LONG)


@settings(max_examples=2_000, deadline=None)
@given(TEXT, st.integers(-2**31, 2**31 - 1), LONG, st.none() | TEXT, st.none() | TEXT, LONG, TEXT,
       st.lists(DECISION, max_size=7))
def test_the_same_bytes_as_the_python_encoder(topic, partition, offset, mid, mtype, at, forwarder, decisions):
    assert RS.encode(topic, partition, offset, mid, mtype, at, forwarder, decisions) == \
        PY.encode(topic, partition, offset, mid, mtype, at, forwarder, decisions)


def test_same_schema_id_and_refusals():
    assert RS.schema_id == PY.schema_id == 77
    with pytest.raises(ValueError, match="not an Outcome"):
        RS.encode("t", 0, 0, None, None, 0, "f", [("RUS", "MAYBE", "r", "x", "v", None, None, None)])
    changed = {**SCHEMA, "fields": [{"name": "extra", "type": "string"}] + SCHEMA["fields"]}
    with pytest.raises(ValueError, match="changed"):
        lc.AuditEncoder(json.dumps(changed), 1)

import io
import json

import fastavro
import pytest

from consumers.forwarder.codec import AuditEncoder, _zigzag, audit_schema
from core import serde


@pytest.mark.parametrize("n", [0, 1, -1, 63, 64, -65, 2**31 - 1, -(2**31), 2**40, 2**62])
def test_zigzag_matches_fastavro(n):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema({"type": "long"}), n)
    assert _zigzag(n) == buf.getvalue()


def test_audit_encoder_is_byte_identical_to_fastavro():
    schema = audit_schema()
    parsed = fastavro.parse_schema(schema)
    enc = AuditEncoder(42, schema)
    records = [
        dict(input_topic="liaison.internal.air.track", input_partition=3, input_offset=123456789,
             message_id="5b1f3c1e-0000-4000-8000-000000000001", message_type="AirTrack", partner="RUS",
             decision="RELEASE", rule="rus-air-track", reason="released by rus-air-track", policy_version="abc123",
             output_topic="liaison.partner.rus.air.track", decided_at=1795454354805, forwarder="liaison-forwarder-a"),
        dict(input_topic="liaison.internal.intel.group-location", input_partition=0, input_offset=0,
             message_id=None, message_type=None, partner="USA", decision="DEAD_LETTER", rule="dead-letter",
             reason="framing: magic byte is 0x07 — ünïcode", policy_version="v", output_topic=None,
             decided_at=0, forwarder="f"),
    ]
    for _ in range(2):  # second pass exercises the caches
        for r in records:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, r)
            assert enc.encode(*r.values()) == serde.frame(42, buf.getvalue())
            back = fastavro.schemaless_reader(io.BytesIO(enc.encode(*r.values())[5:]), parsed)
            assert int(back.pop("decided_at").timestamp() * 1000) == r["decided_at"]
            assert back == {k: v for k, v in r.items() if k != "decided_at"}


def test_audit_encoder_refuses_a_changed_schema():
    schema = json.loads(json.dumps(audit_schema()))
    schema["fields"].insert(0, {"name": "extra", "type": "string"})
    with pytest.raises(ValueError, match="changed"):
        AuditEncoder(1, schema)

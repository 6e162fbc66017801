import io
import json

import fastavro
import pytest

from consumers.shell.codec import AuditEncoder, _zigzag, audit_schema
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
             output_topic="liaison.partner.rus.air.track", decided_at=1795454354805, forwarder="liaison-forwarder-a",
             due_at=None, bytes=312),
        dict(input_topic="liaison.internal.intel.group-location", input_partition=0, input_offset=0,
             message_id=None, message_type=None, partner="USA", decision="DEAD_LETTER", rule="dead-letter",
             reason="framing: magic byte is 0x07 — ünïcode", policy_version="v", output_topic=None,
             decided_at=0, forwarder="f", due_at=None, bytes=None),
        dict(input_topic="liaison.internal.air.strike-report", input_partition=2, input_offset=77,
             message_id="5b1f3c1e-0000-4000-8000-000000000002", message_type="StrikeReport", partner="RUS",
             decision="HELD", rule="rus-strike-designated", reason="held", policy_version="abc123",
             output_topic="liaison.partner.rus.air.strike-report", decided_at=1795454354805,
             forwarder="liaison-forwarder-a", due_at=1795456800000, bytes=2**40),
        dict(input_topic="liaison.internal.air.strike-report", input_partition=2, input_offset=77,
             message_id="5b1f3c1e-0000-4000-8000-000000000002", message_type="StrikeReport", partner="RUS",
             decision="RELEASED", rule="rus-strike-designated", reason="released", policy_version="abc123",
             output_topic="liaison.partner.rus.air.strike-report", decided_at=1795456800412,
             forwarder="liaison-forwarder-b", due_at=1795456800000, bytes=0),
    ]
    for _ in range(2):  # second pass exercises the caches
        for r in records:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, r)
            assert enc.encode(*r.values()) == serde.frame(42, buf.getvalue())
            back = fastavro.schemaless_reader(io.BytesIO(enc.encode(*r.values())[5:]), parsed)
            assert int(back.pop("decided_at").timestamp() * 1000) == r["decided_at"]
            due = back.pop("due_at")
            assert (None if due is None else int(due.timestamp() * 1000)) == r["due_at"]
            assert back == {k: v for k, v in r.items() if k not in ("decided_at", "due_at")}
    # the defaulted arguments: no due time, no size
    r = records[1]
    assert enc.encode(*list(r.values())[:-2]) == enc.encode(*r.values())


def test_audit_schema_reads_every_released_version():
    """BACKWARD_TRANSITIVE, as the audit subject is registered: the working-tree schema reads records written
    with each released version (schemas/released/liaison.audit.decisions-value/v<N>.avsc, `liaison schemas
    release`; `liaison schemas check` asks the registry the same)."""
    import schemas

    reader = fastavro.parse_schema(audit_schema())
    released = sorted((schemas.SCHEMA_DIR / "released" / "liaison.audit.decisions-value").glob("v*.avsc"))
    assert released
    for path in released:
        old = json.loads(path.read_text())
        writer = fastavro.parse_schema(old)
        symbols = next(f for f in old["fields"] if f["name"] == "decision")["type"]["symbols"]
        record = dict(input_topic="t", input_partition=1, input_offset=2, message_id=None, message_type=None,
                      partner="RUS", decision=symbols[0], rule="r", reason="x", policy_version="v", output_topic=None,
                      decided_at=5, forwarder="f", due_at=None, bytes=None)
        record = {f["name"]: record[f["name"]] for f in old["fields"]}
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, record)
        back = fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), writer, reader)
        assert back["decision"] == symbols[0] and back.get("due_at") is None, path


def test_audit_encoder_refuses_a_changed_schema():
    schema = json.loads(json.dumps(audit_schema()))
    schema["fields"].insert(0, {"name": "extra", "type": "string"})
    with pytest.raises(ValueError, match="changed"):
        AuditEncoder(1, schema)

import io
import json

import fastavro
import pytest

from consumers.shell.codec import AuditEncoder, _zigzag, audit_schema
from core import serde
from core.audit import decisions_of


@pytest.mark.parametrize("n", [0, 1, -1, 63, 64, -65, 2**31 - 1, -(2**31), 2**40, 2**62])
def test_zigzag_matches_fastavro(n):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema({"type": "long"}), n)
    assert _zigzag(n) == buf.getvalue()


LEGACY = dict(partner=None, decision=None, rule=None, reason=None, policy_version=None, output_topic=None,
              due_at=None, bytes=None)


def _ms(t):
    return None if t is None else int(t.timestamp() * 1000)


def test_audit_encoder_is_byte_identical_to_fastavro():
    schema = audit_schema()
    parsed = fastavro.parse_schema(schema)
    enc = AuditEncoder(42, schema)
    inputs = [
        (dict(input_topic="liaison.internal.air.track", input_partition=3, input_offset=123456789,
              message_id="5b1f3c1e-0000-4000-8000-000000000001", message_type="AirTrack", decided_at=1795454354805,
              forwarder="liaison-forwarder-a"),
         [dict(partner="RUS", decision="RELEASE", rule="rus-air-track", reason="released by rus-air-track",
               policy_version="abc123", output_topic="liaison.partner.rus.air.track", due_at=None, bytes=312),
          dict(partner="USA", decision="WITHHOLD", rule="default-deny", reason="no rule", policy_version="def",
               output_topic=None, due_at=None, bytes=None)]),
        (dict(input_topic="liaison.internal.intel.group-location", input_partition=0, input_offset=0,
              message_id=None, message_type=None, decided_at=0, forwarder="f"),
         [dict(partner=p, decision="DEAD_LETTER", rule="dead-letter", reason="framing: magic byte is 0x07 — ünïcode",
               policy_version="v", output_topic="liaison.deadletter", due_at=None, bytes=None)
          for p in ("RUS", "USA", "air", "intel", "naval")]),
        (dict(input_topic="liaison.internal.air.strike-report", input_partition=2, input_offset=77,
              message_id="5b1f3c1e-0000-4000-8000-000000000002", message_type="StrikeReport",
              decided_at=1795454354805, forwarder="liaison-forwarder-a"),
         [dict(partner="RUS", decision="HELD", rule="rus-strike-designated", reason="held", policy_version="abc123",
               output_topic="liaison.partner.rus.air.strike-report", due_at=1795456800000, bytes=2**40)]),
        (dict(input_topic="liaison.internal.air.strike-report", input_partition=2, input_offset=77,
              message_id="5b1f3c1e-0000-4000-8000-000000000002", message_type="StrikeReport",
              decided_at=1795456800412, forwarder="liaison-forwarder-b"),
         [dict(partner="RUS", decision="RELEASED", rule="rus-strike-designated", reason="released",
               policy_version="abc123", output_topic="liaison.partner.rus.air.strike-report", due_at=1795456800000,
               bytes=0)]),
        (dict(input_topic="t", input_partition=1, input_offset=2, message_id="m", message_type="AirTrack",
              decided_at=3, forwarder="f"), []),
    ]
    for _ in range(2):  # second pass exercises the caches
        for base, decisions in inputs:
            record = {**base, **LEGACY, "decisions": decisions}
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, parsed, record)
            value = enc.encode(*base.values(), [tuple(d.values()) for d in decisions])
            assert value == serde.frame(42, buf.getvalue())
            back = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed)
            back["decided_at"] = _ms(back["decided_at"])
            for d in back["decisions"]:
                d["due_at"] = _ms(d["due_at"])
            assert back == record
            assert decisions_of(back) == [{**base, **d} for d in decisions]


def test_audit_schema_reads_every_released_version():
    """BACKWARD_TRANSITIVE, as the audit subject is registered: the working-tree schema reads records written
    with each released version (schemas/released/liaison.audit.decisions-value/v<N>.avsc, `liaison schemas
    release`; `liaison schemas check` asks the registry the same), and decisions_of gives each record's decisions
    the same rows whatever version wrote it."""
    import schemas

    reader = fastavro.parse_schema(audit_schema())
    released = sorted((schemas.SCHEMA_DIR / "released" / "liaison.audit.decisions-value").glob("v*.avsc"))
    assert len(released) >= 4
    for path in released:
        old = json.loads(path.read_text())
        writer = fastavro.parse_schema(old)
        names = [f["name"] for f in old["fields"]]
        base = dict(input_topic="t", input_partition=1, input_offset=2, message_id=None, message_type="AirTrack",
                    decided_at=5, forwarder="f")
        one = dict(partner="RUS", decision="WITHHOLD", rule="r", reason="x", policy_version="v", output_topic=None,
                   due_at=None, bytes=None)
        if "decisions" in names:
            record = {**base, **LEGACY, "decisions": [one, {**one, "partner": "USA", "decision": "RELEASE"}]}
            want = [{**base, **one}, {**base, **one, "partner": "USA", "decision": "RELEASE"}]
        else:
            record = {**base, **one}
            want = [{**base, **{k: (v if k in names else None) for k, v in one.items()}}]
        record = {k: record[k] for k in names}
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, record)
        back = fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), writer, reader)
        back["decided_at"] = _ms(back["decided_at"])
        assert decisions_of(back) == want, path


def test_audit_encoder_refuses_a_changed_schema():
    schema = json.loads(json.dumps(audit_schema()))
    schema["fields"].insert(0, {"name": "extra", "type": "string"})
    with pytest.raises(ValueError, match="changed"):
        AuditEncoder(1, schema)

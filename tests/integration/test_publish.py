"""Producer library on the real broker and registry: every type round-trips with equality."""

import uuid

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

import schemas
from liaison import kafka, serde
from producers.publisher import Publisher
from schemas.examples import example
from schemas.models import from_avro, to_avro


def read_new(topic, start_offsets, count, timeout=30):
    """Read `count` records of `topic` from the given per-partition offsets."""
    import time

    c = kafka.consumer(f"test-{uuid.uuid4().hex[:8]}")
    c.assign([TopicPartition(topic, p, o) for p, o in start_offsets.items()])
    out, deadline = [], time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and msg.error() is None:
            out.append(msg)
    c.close()
    return out


def end_offsets(topic):
    c = kafka.consumer(f"test-{uuid.uuid4().hex[:8]}")
    md = c.list_topics(topic, timeout=10).topics[topic]
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in md.partitions}
    c.close()
    return ends


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_every_type_roundtrips_model_avro_kafka_avro_model(bus, name):
    topic = schemas.topic_for(name)
    model = example(name)
    model.label.message_id = uuid.uuid4()
    before = end_offsets(topic)
    with Publisher() as pub:
        pub.publish(model)
    assert pub.delivered[name] == 1
    msgs = read_new(topic, before, 1)
    assert len(msgs) == 1
    msg = msgs[0]
    client = serde.registry_client()
    subject = serde.value_subject(topic)
    assert int.from_bytes(msg.value()[1:5], "big") == client.get_latest_version(subject).schema_id
    decoded = serde.avro_deserializer(client)(msg.value(), SerializationContext(topic, MessageField.VALUE))
    assert from_avro(name, decoded) == model
    assert msg.key().decode() == schemas.key_of(name, model)
    headers = dict(msg.headers())
    assert headers["message_id"].decode() == str(model.label.message_id)
    assert headers["type"].decode() == name
    # our encoder writes exactly the bytes confluent-kafka's AvroSerializer writes
    ser = serde.avro_serializer(schemas.schema_str(name), client)
    assert ser(to_avro(model), SerializationContext(topic, MessageField.VALUE)) == msg.value()


def test_delivery_failure_is_surfaced(bus):
    from producers.publisher import PublishError

    pub = Publisher(producer_conf={"message.timeout.ms": 2000})
    model = example("AirTrack")
    pub.produce_raw("liaison.no-such-topic", "k", b"x", [], "AirTrack", str(model.label.message_id))
    with pytest.raises(PublishError, match="liaison.no-such-topic"):
        pub.flush(15)

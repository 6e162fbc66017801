"""Producer library on the real broker and registry: every type round-trips with equality."""

import uuid

import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

import schemas

from core.topics import topic_for
from core import serde
from core.readback import end_offsets, read_between
from producers.publisher import Publisher
from schemas.examples import example
from schemas.models import from_avro, to_avro


@pytest.mark.parametrize("name", schemas.MESSAGE_TYPES)
def test_every_type_roundtrips_model_avro_kafka_avro_model(bus, name):
    topic = topic_for(name)
    model = example(name)
    model.label.message_id = uuid.uuid4()
    before = end_offsets([topic])
    with Publisher() as pub:
        pub.publish(model)
    assert pub.delivered[name] == 1
    msgs = read_between(before, end_offsets([topic]))
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

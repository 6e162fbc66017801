"""A record produced with AvroSerializer through the real registry reads back, framed with the registry's id."""

import uuid

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema
from confluent_kafka.serialization import MessageField, SerializationContext

from core import kafka, serde

SCHEMA = """{"type": "record", "name": "Ping", "namespace": "liaison.test",
  "doc": "round-trip probe", "fields": [{"name": "n", "type": "long", "doc": "counter"},
  {"name": "text", "type": "string", "doc": "payload"}]}"""


def _topic(admin, name):
    admin.create_topics([NewTopic(name, 1, 1)])[name].result()


def test_avro_roundtrip_through_registry_and_broker(settings):
    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = kafka.admin()
    _topic(admin, topic)
    client = serde.registry_client()
    subject = serde.value_subject(topic)
    registered_id = client.register_schema(subject, Schema(SCHEMA, "AVRO"))

    ser = serde.avro_serializer(SCHEMA, client)
    value = ser({"n": 42, "text": "hello"}, SerializationContext(topic, MessageField.VALUE))
    p = kafka.producer()
    p.produce(topic, value=value, key=b"k")
    assert p.flush(30) == 0

    c = kafka.consumer(f"test-{uuid.uuid4().hex[:6]}")
    c.assign([TopicPartition(topic, 0, 0)])
    msg = c.poll(30)
    c.close()
    assert msg is not None and msg.error() is None
    raw = msg.value()
    assert raw[0] == 0
    assert int.from_bytes(raw[1:5], "big") == registered_id
    assert client.get_latest_version(subject).schema_id == registered_id
    decoded = serde.avro_deserializer(client)(raw, SerializationContext(topic, MessageField.VALUE))
    assert decoded == {"n": 42, "text": "hello"}

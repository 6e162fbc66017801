"""The need-to-know forwarder: a pure pipeline (:mod:`.pipeline`, no Kafka client) inside a thin Kafka
service (:mod:`.service`: clients, the transaction, signals, reload)."""

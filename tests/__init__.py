"""The test suite: unit/ (pure logic, no servers) and integration/ (the real Kafka broker and registry)."""

"""Consumer lag monitor: collect (Kafka I/O), evaluate (pure status rules), serve (Prometheus + JSON), cli."""

"""What operations run to watch the bus: the consumer-lag monitor (:mod:`operations.lag`)."""

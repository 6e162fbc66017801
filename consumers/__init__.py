"""Consumers of the liaison bus: services that read the internal topics (the release forwarder)."""

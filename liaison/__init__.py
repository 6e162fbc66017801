"""Liaison bus: shared core (settings, logging, Kafka clients, serdes, CLI, infrastructure)."""

from pathlib import Path

#: Root of the source tree (where deploy/, schemas/ live).
REPO_ROOT = Path(__file__).resolve().parent.parent

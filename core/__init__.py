"""The shared core every service imports: settings, Kafka client construction, serdes, logging, errors and
every topic name. It imports no service (a unit test walks the imports to keep it so)."""

from pathlib import Path

#: Root of the source tree (where deploy/, schemas/ live).
REPO_ROOT = Path(__file__).resolve().parent.parent

"""What the forwarder knows of the registry, kept on disk so that it can start while the registry is away.

One JSON file per instance, ``<state>/forwarder-cache/<instance>.json`` (mode 0600, written whole: a temporary
file renamed into place):

    registry     the registry URL the entries came from (a cache of another registry is ignored: ids differ)
    schemas      writer schema id -> schema text, as the registry returned it (every id the decoder looked up)
    registered   subject -> {canonical schema text -> id}: what this instance registered (audit, partner views)

Entries are only ever learnt from the registry; a start with the registry reachable re-checks them (ids of a
wiped registry are dropped, see :meth:`consumers.shell.codec.InputDecoder.verify`). No Kafka, no network.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from core.logs import get_logger

__all__ = ["SchemaCache", "canonical", "default_cache_path"]

log = get_logger("liaison.forwarder")


def canonical(schema: dict | str) -> str:
    """A schema's text with keys sorted and no spaces: the same schema gives the same key."""
    doc = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def default_cache_path(state_dir: Path, instance: str) -> Path:
    return Path(state_dir) / "forwarder-cache" / f"{instance}.json"


class SchemaCache:
    """Schemas by id and registered subject ids, for one registry URL; ``path=None``: in memory only."""

    def __init__(self, path: Path | None, registry: str):
        self.path = Path(path) if path is not None else None
        self.registry = registry
        self.schemas: dict[int, str] = {}
        self.registered: dict[str, dict[str, int]] = {}
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("registry") != self.registry:
                log.warning("forwarder schema cache ignored: written for another registry", path=str(self.path),
                            cached_for=doc.get("registry"), registry=self.registry)
                return
            self.schemas = {int(k): str(v) for k, v in doc.get("schemas", {}).items()}
            self.registered = {str(s): {str(c): int(i) for c, i in m.items()}
                               for s, m in doc.get("registered", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError) as e:
            log.warning("forwarder schema cache unreadable, starting without it", path=str(self.path), error=str(e))
            self.schemas, self.registered = {}, {}

    # ------------------------------------------------------------------ entries

    def schema_learnt(self, schema_id: int, text: str) -> None:
        if self.schemas.get(schema_id) != text:
            self.schemas[schema_id] = text
            self.save()

    def schema_dropped(self, schema_id: int) -> None:
        if self.schemas.pop(schema_id, None) is not None:
            self.save()

    def registered_id(self, subject: str, schema: dict | str) -> int | None:
        return self.registered.get(subject, {}).get(canonical(schema))

    def registration_learnt(self, subject: str, schema: dict | str, schema_id: int) -> None:
        key = canonical(schema)
        if self.registered.get(subject, {}).get(key) != schema_id:
            self.registered.setdefault(subject, {})[key] = schema_id
            self.save()

    def known_ids(self) -> set[int]:
        return set(self.schemas) | {i for m in self.registered.values() for i in m.values()}

    # ------------------------------------------------------------------ file

    def save(self) -> None:
        if self.path is None:
            return
        doc = {"registry": self.registry, "schemas": {str(k): v for k, v in sorted(self.schemas.items())},
               "registered": self.registered}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(doc, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as e:  # a cache that cannot be written costs a start while the registry is away, no more
            log.warning("forwarder schema cache not written", path=str(self.path), error=str(e))

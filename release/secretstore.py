"""Per-partner pseudonymisation keys.

One key per partner, ``<directory>/<PARTNER>.key``: 32 random bytes written as 64 hex digits. A
different key per partner makes the same internal reference pseudonymise to values that cannot
be joined across partners. Losing a key changes every pseudonym of that partner; every forwarder
instance of a partner must read the same file (so keys are never created implicitly by loading
a policy: only :meth:`SecretStore.ensure` creates one).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Mapping

from release.errors import MissingSecret

__all__ = ["SecretStore", "KEY_BYTES", "default_secrets_dir"]

KEY_BYTES = 32
_PARTNER = re.compile(r"^[A-Z]{3}$")


def default_secrets_dir() -> Path:
    """``<state_dir>/secrets`` of the liaison settings."""
    from core.settings import get_settings

    return get_settings().state_dir / "secrets"


def _check_partner(partner: str) -> str:
    if not isinstance(partner, str) or not _PARTNER.match(partner):
        raise ValueError(f"partner must be an ISO 3166-1 alpha-3 code such as RUS, got {partner!r}")
    return partner


class SecretStore:
    """Pseudonymisation keys by partner, in files of ``directory`` (default ``<state_dir>/secrets``)."""

    def __init__(self, directory: Path | str | None = None):
        self.directory: Path | None = Path(directory) if directory is not None else default_secrets_dir()
        self._memory: dict[str, bytes] | None = None

    @classmethod
    def in_memory(cls, keys: Mapping[str, bytes]) -> SecretStore:
        """A store holding ``keys`` in memory only (tests); :meth:`ensure` adds random keys in memory."""
        store = cls.__new__(cls)
        store.directory = None
        store._memory = {}
        for partner, key in keys.items():
            _check_partner(partner)
            if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
                raise ValueError(f"key of {partner} must be at least 16 bytes")
            store._memory[partner] = bytes(key)
        return store

    def __repr__(self) -> str:
        where = "memory" if self._memory is not None else str(self.directory)
        return f"SecretStore({where})"

    def path(self, partner: str) -> Path:
        if self.directory is None:
            raise ValueError("an in-memory secret store has no files")
        return self.directory / f"{_check_partner(partner)}.key"

    def get(self, partner: str) -> bytes | None:
        """The key of ``partner``, or None when there is none."""
        _check_partner(partner)
        if self._memory is not None:
            return self._memory.get(partner)
        path = self.path(partner)
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{path}: not a hex-encoded key") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"{path}: key has {len(key)} bytes, expected {KEY_BYTES}")
        return key

    def key(self, partner: str) -> bytes:
        """The key of ``partner``; raises :class:`MissingSecret` when there is none."""
        key = self.get(partner)
        if key is None:
            where = "the in-memory store" if self._memory is not None else str(self.path(partner))
            raise MissingSecret(f"no pseudonymisation key for {partner} in {where} "
                                f"(create it with SecretStore.ensure or `liaison policy explain`)")
        return key

    def ensure(self, partner: str) -> bytes:
        """The key of ``partner``, created (32 random bytes, file mode 0600) when missing."""
        existing = self.get(partner)
        if existing is not None:
            return existing
        key = secrets.token_bytes(KEY_BYTES)
        if self._memory is not None:
            self._memory[partner] = key
            return key
        path = self.path(partner)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Write a private temporary file, then link it into place: the key file appears complete
        # or not at all, and a concurrent ensure() that linked first wins (we then use its key).
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(key.hex() + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                return self.key(partner)
        finally:
            tmp.unlink(missing_ok=True)
        return key

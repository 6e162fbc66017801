"""The gateway's users: salted scrypt hashes of the principals' passwords, in one 0600 file written at setup.

The gateway never sees a plaintext password on disk: ``users.json`` holds, per principal, a random salt and
``hashlib.scrypt(password, salt, n=2**14, r=8, p=1)``. Checking a password costs one scrypt (~0.1 s here), so
a verified (user, password) pair is remembered in memory under an HMAC with a per-process random key (never the
password itself) for a few minutes: a client's repeated requests cost one scrypt, a guesser pays it every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from pathlib import Path

__all__ = ["SCRYPT", "hash_password", "write_users", "load_users", "Verifier"]

#: scrypt cost: 16 MiB, ~0.1 s per hash on this machine (the interactive-login parameters of RFC 7914).
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
_MAXMEM = 64 * 1024 * 1024


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str, salt: bytes | None = None, params: dict | None = None) -> dict:
    params = params or SCRYPT
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=params["n"], r=params["r"], p=params["p"],
                            dklen=params["dklen"], maxmem=_MAXMEM)
    return {"salt": _b64(salt), "hash": _b64(digest)}


def write_users(path: Path, passwords: dict[str, str], write_private) -> None:
    """users.json (0600, through ``write_private``): {"scrypt": params, "users": {name: {salt, hash}}}."""
    data = {"scrypt": SCRYPT, "users": {u: hash_password(pw) for u, pw in sorted(passwords.items())}}
    write_private(path, json.dumps(data, indent=2) + "\n")


def load_users(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    if not isinstance(data.get("users"), dict) or not isinstance(data.get("scrypt"), dict):
        raise ValueError(f"{path} is not a gateway users file")
    return data


class Verifier:
    """Checks (user, password) against the hashes; thread-safe; remembers successes for ``ttl`` seconds."""

    def __init__(self, data: dict, ttl: float = 300.0):
        self._params = data["scrypt"]
        self._users = {u: (base64.b64decode(e["salt"]), base64.b64decode(e["hash"])) for u, e in data["users"].items()}
        self._dummy = (secrets.token_bytes(16), secrets.token_bytes(self._params["dklen"]))
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._ok: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def users(self) -> list[str]:
        return sorted(self._users)

    def _tag(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, user.encode() + b"\0" + password.encode(), hashlib.sha256).digest()

    def remembered(self, user: str, password: str) -> bool:
        """True when this pair was verified less than ``ttl`` seconds ago (no scrypt)."""
        tag = self._tag(user, password)
        with self._lock:
            hit = self._ok.get(tag)
            if hit and hit[1] > time.monotonic():
                return True
            if hit:
                del self._ok[tag]
        return False

    def verify(self, user: str, password: str) -> bool:
        if self.remembered(user, password):
            return True
        salt, want = self._users.get(user, self._dummy)  # unknown user: the same work, then no
        p = self._params
        got = hashlib.scrypt(password.encode(), salt=salt, n=p["n"], r=p["r"], p=p["p"], dklen=p["dklen"],
                             maxmem=_MAXMEM)
        ok = hmac.compare_digest(got, want) and user in self._users
        if ok:
            with self._lock:
                if len(self._ok) > 10_000:
                    self._ok.clear()
                self._ok[self._tag(user, password)] = (user, time.monotonic() + self._ttl)
        return ok

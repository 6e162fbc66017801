"""The state file of one running set of servers, ``<state_dir>/infra.json``: shape, processes, client addresses
(Kafka bootstrap, the registry gateway's URL) and client security (Kafka SASL/TLS, the registry's basic auth);
and the lock (``<state_dir>/infra.lock``) that lets one `up`, `restart` or `down` at a time act on them."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from deploy.infra.client_env import Security
from deploy.infra.errors import InfraError
from deploy.infra.plan import Plan
from deploy.infra.process import Proc

__all__ = ["infra_file", "read_state", "write_state", "state_lock", "LOCK_WAIT"]

#: Seconds a command waits for another one acting on the same state directory (a cluster start under load
#: takes minutes: every wait of `up` is bounded by the start timeout, 90 s, and there are several).
LOCK_WAIT = 900.0

_locks: dict[Path, threading.RLock] = {}  # state dir -> the lock of this process's threads
_depth: dict[Path, int] = {}  # state dir -> how deep the holding thread is (up's cleanup calls down)
_guard = threading.Lock()


@contextmanager
def state_lock(state: Path, what: str, log=print, wait: float = LOCK_WAIT):
    """Hold ``<state>/infra.lock`` (flock, exclusive) while ``what`` (up, restart, down) acts on the servers of
    ``state``. Two commands at once on one state directory would each start the servers the other has not
    recorded yet (a second registry and gateway on the same ports, a new token key the first registry does not
    know) or stop them as strays; the second one waits for the first (saying so), then sees what it left.
    Re-entrant within a thread; fails with one line after ``wait`` seconds naming the holder."""
    state = Path(state).resolve()
    with _guard:
        local = _locks.setdefault(state, threading.RLock())
    with local:
        if _depth.get(state):
            _depth[state] += 1
            try:
                yield
            finally:
                _depth[state] -= 1
            return
        state.mkdir(parents=True, exist_ok=True)
        path = state / "infra.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline, said = time.monotonic() + wait, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    if time.monotonic() >= deadline:
                        raise InfraError(f"{what}: {path} is still held by {holder} after {wait:.0f}s; "
                                         f"another `liaison infra` command acts on these servers") from None
                    if not said:
                        log(f"{what}: waiting for {holder}, which acts on the servers of {state}")
                        said = True
                    time.sleep(0.5)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({what})".encode(), 0)
            _depth[state] = 1
            try:
                yield
            finally:
                _depth.pop(state, None)
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # releases the flock


def infra_file(state: Path) -> Path:
    return state / "infra.json"


def read_state(state: Path) -> dict | None:
    try:
        return json.loads(infra_file(state).read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_state(plan: Plan, procs: list[Proc], sec: Security | None = None) -> dict:
    data = {
        "shape": plan.shape,
        "bootstrap_servers": plan.bootstrap,
        "schema_registry_url": plan.registry_url,
        "registry_storage": plan.registry_storage,
        "processes": [asdict(p) for p in procs],
    }
    if sec is not None:
        data["security"] = sec.state()
        # how clients reach the registry (the gateway): basic auth with their principal's credentials, over TLS
        # with this CA; `upstream` and `token_key` are for the servers' own health checks, not for clients
        data["registry"] = {"auth": "basic", "ssl_ca_location": str(sec.tls.ca_pem),
                            "upstream": plan.registry_api_url,
                            "token_key": str(plan.gateway_dir / "token-key.pem")}
    plan.state.mkdir(parents=True, exist_ok=True)
    tmp = infra_file(plan.state).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(infra_file(plan.state))
    return data

"""The console's part of `liaison demo`: free ports for the services' health endpoints, `liaison console` started
beside them with those endpoints, its URL and how to sign in printed.

The console runs without credentials of its own: whoever opens the URL signs in with a principal's password
(the demo's servers generated them, one file per principal under the credentials folder)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from core import REPO_ROOT

__all__ = ["free_port", "start_console", "CONSOLE_PRINCIPALS"]

#: who to sign in as, and what each sees
CONSOLE_PRINCIPALS = {"partner-rus": "the RUS liaison officer's map and feed",
                      "partner-usa": "the USA liaison officer's map and feed",
                      "component-naval": "the naval component's picture",
                      "operations": "lag, decisions, quarantine, the ledger and the services' health"}


def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free on ``host``, else any free port."""
    for port in ((preferred, 0) if preferred else (0,)):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on " + host)


def start_console(log: Path, policies: Path, health: dict[str, int], port: int, timeout: float = 60.0
                  ) -> tuple[subprocess.Popen, str]:
    """`liaison console` on ``port`` (or any free one) showing the health of ``health`` (name -> metrics port);
    returns the process and its URL, once it serves (raises RuntimeError if it exits first)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    targets = ",".join(f"{name}=http://127.0.0.1:{p}" for name, p in health.items())
    start = log.stat().st_size if log.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "liaison", "console", "--port", str(free_port(port)),
                             "--policies", str(policies), "--health", targets],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(start)
            for line in f.read().decode("utf-8", "replace").splitlines():
                if line.startswith("console: "):
                    return proc, line[len("console: "):].strip()
        if proc.poll() is not None:
            raise RuntimeError(f"the console exited with {proc.returncode}; see {log}")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the console did not start within {timeout:.0f}s; see {log}")

"""Server processes: spawning them, recognising ours by their marker, health waits and stopping them."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy.infra.errors import InfraError

__all__ = ["Proc", "server_marker", "is_ours", "stray_pids", "port_in_use", "tcp_open", "spawn", "java_cmd",
           "pid_alive", "reap", "log_tail", "wait_healthy", "stop_pids", "stop_procs", "http_status", "http_get"]


@dataclass
class Proc:
    name: str
    kind: str  # kafka | registry | registry-gateway
    pid: int
    ports: dict[str, int]
    log: str
    started_at: float = field(default_factory=time.time)


def server_marker(state: Path, name: str) -> str:
    """The JVM argument that marks a server process as ``name`` of the servers in ``state``."""
    return f"-Dliaison.server={name}@{state}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(pid: int, state: Path, name: str) -> bool:
    """The pid is alive and is the server we started (not a recycled pid)."""
    return (server_marker(state, name) + " ") in (_cmdline(pid) + " ")


def stray_pids(state: Path) -> list[int]:
    """Every live process whose command line carries this state directory's marker."""
    marker = re.compile(r"-Dliaison\.server=[\w.-]+@" + re.escape(str(state)) + r"(\s|$)")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if "-Dliaison.server=" in cmd and marker.search(cmd):
                found.append(int(entry.name))
    return found


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 3.0, ca: str | None = None, headers: dict | None = None) -> int | None:
    """The HTTP status of GET `url` (HTTPS verified against `ca` when given), or None when nothing answers."""
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def http_get(url: str, timeout: float = 3.0, ca: str | None = None,
             headers: dict | None = None) -> tuple[int | None, bytes]:
    """(status, body) of GET `url` (HTTPS verified against `ca` when given); (None, b"") when nothing answers."""
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except OSError:
            body = b""
        return e.code, body
    except (urllib.error.URLError, OSError, ValueError):
        return None, b""


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    return p.pid


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def log_tail(log: str | Path, lines: int = 5) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def java_cmd(java: str, heap: str, marker: str, extra: list[str] | None = None) -> list[str]:
    """The java command line of a server: heap, GC settings and its marker, then ``extra``."""
    return [
        java, "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", marker, *(extra or []),
    ]


def wait_healthy(proc: Proc, check, timeout: float, what: str, started: bool = True) -> float:
    """Poll ``check()`` until true; fail when the process exits or ``timeout`` passes (``what``: the check, in
    words). ``check`` may return ``(ok, why)``: the last ``why`` goes in the error. ``started=False``: a server
    this call did not start (found running, not answering): the error says it was left running. Returns the
    seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    why = ""
    while True:
        if not pid_alive(proc.pid):
            reap(proc.pid)
            if started:
                raise InfraError(f"{proc.name} exited during start-up; see {proc.log}\n{log_tail(proc.log)}")
            raise InfraError(f"{proc.name} (pid {proc.pid}) exited while `up` waited for it; see {proc.log}")
        res = check()
        ok, why = res if isinstance(res, tuple) else (bool(res), why)
        if ok:
            return time.monotonic() - t0
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    because = f": {why}" if why else ""
    if started:
        raise InfraError(f"{proc.name} did not become healthy ({what}) within {timeout:.0f}s{because}; see {proc.log}")
    raise InfraError(f"{proc.name} (pid {proc.pid}) runs but has not passed its check ({what}) in {timeout:.0f}s"
                     f"{because}; "
                     f"left running (hung?): `liaison infra restart {proc.name}` restarts it; see {proc.log}")


def _signal(pid: int, sig: int) -> None:
    """Signal the process group of ``pid`` (every server is a session leader), or the pid alone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], deadline: float) -> list[int]:
    remaining = list(pids)
    while remaining:
        for pid in remaining:
            reap(pid)
        remaining = [p for p in remaining if pid_alive(p)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return remaining


#: Seconds a SIGKILLed process may take to be gone (its sockets closed) before stop_procs gives up on it.
KILL_WAIT = 10.0


def stop_procs(bounds: dict[int, float]) -> dict[int, float]:
    """Stop processes in parallel: SIGTERM every one at once, SIGKILL each still running after its own bound
    (``bounds``: pid -> seconds), then wait until the killed ones are gone (their ports free again).
    Returns pid -> seconds since the SIGTERM for the processes that had to be killed."""
    t0 = time.monotonic()
    for pid in bounds:
        _signal(pid, signal.SIGTERM)
    remaining = list(bounds)
    killed: dict[int, float] = {}
    for pid, bound in sorted(bounds.items(), key=lambda kv: kv[1]):
        if pid not in remaining:
            continue
        remaining = _wait_gone(remaining, t0 + bound)
        if pid in remaining:
            _signal(pid, signal.SIGKILL)
            killed[pid] = time.monotonic() - t0
    _wait_gone(list(killed), time.monotonic() + KILL_WAIT)  # a process still there now is stuck in the kernel
    return killed


def stop_pids(pids: list[int], timeout: float) -> list[int]:
    """SIGTERM each process (group), SIGKILL what still runs after ``timeout``; returns the pids killed."""
    return list(stop_procs({pid: timeout for pid in pids}))

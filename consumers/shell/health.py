"""Health, readiness and the metrics server shared by the consumer services (forwarder, ingress guard,
deconfliction): each has the attributes :func:`status` reads (``loop_at``, ``assigned``, ``decoder``,
``registry_paused``, ``last_commit``, ``last_progress``, ``fault``; the forwarder also ``paused``, its hold
partitions) and its own collector and per-batch counters.

    /healthz   200 while the process loop turns (a batch or a retry may hold it, at most LIVE_BOUND_S) and no
               final error (fenced) stopped it; a supervised restart in progress is healthy
    /readyz    200 when partitions are assigned, the registry answers and the last commit is recent (or there
               was nothing to commit): JSON of every check either way, 503 when one fails
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry

from core import http

__all__ = ["Current", "LIVE_BOUND_S", "READY_BOUND_S", "serve_service_metrics", "status"]

#: seconds one loop turn may take before the process counts as stuck (a transaction's retries and abort are
#: bounded by 45 s + 120 s, a registry lookup by about 11 s)
LIVE_BOUND_S = 180.0
#: seconds since the last commit (or the last poll that found nothing to do) before the service is not ready
READY_BOUND_S = 120.0


class Current:
    """What a supervised service command runs now: the service (``fwd``; None while one is being built), its
    state, restarts, and the client errors of every instance it ran."""

    def __init__(self):
        self.fwd = None
        self.state = "starting"  # starting | running | restarting | stopped | failed
        self.restarts = 0
        self.last_error: str | None = None
        self.errors: Tally = Tally()  # (client, kind) -> n
        self.listeners: list = []  # batch listeners attached to every instance

    def attach(self, fwd) -> None:
        self.fwd = fwd
        fwd.listeners.extend(self.listeners)
        fwd.error_listeners.append(lambda client, kind, err: self.errors.update([(client, kind)]))


def status(current: Current, now: float | None = None) -> tuple[bool, bool, dict]:
    """(healthy, ready, checks)."""
    now = time.monotonic() if now is None else now
    fwd = current.fwd
    body: dict = {"state": current.state, "restarts": current.restarts, "last_error": current.last_error}
    healthy = current.state not in ("failed", "stopped")
    if fwd is None or current.state != "running":
        return healthy, False, body
    loop_age = now - fwd.loop_at
    body.update(loop_age_s=round(loop_age, 1), assigned_partitions=len(fwd.assigned),
                registry_available=fwd.decoder.available, registry_error=fwd.decoder.last_error,
                registry_paused_partitions=len(fwd.registry_paused),
                last_commit_age_s=None if fwd.last_commit is None else round(now - fwd.last_commit, 1),
                progress_age_s=round(now - fwd.last_progress, 1),
                fault=None if fwd.fault is None else str(fwd.fault))
    if hasattr(fwd, "paused"):
        body["hold_paused_partitions"] = len(fwd.paused)
    healthy = healthy and loop_age < LIVE_BOUND_S and (fwd.fault is None or fwd.fault.recoverable)
    ready = (healthy and fwd.fault is None and bool(fwd.assigned) and fwd.decoder.available
             and now - fwd.last_progress < READY_BOUND_S)
    return healthy, ready, body


def serve_service_metrics(current: Current, port: int, collector, on_batch: Callable, name: str,
                          addr: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY):
    """Serve /metrics (``collector`` and the counters ``on_batch`` updates, attached to every instance),
    /healthz and /readyz for ``current`` on a daemon thread called ``name``; returns the server."""
    current.listeners.append(on_batch)
    registry.register(collector)

    def check(readiness: bool) -> http.Reply:
        healthy, ready, body = status(current)
        body.update(healthy=healthy, ready=ready)
        return http.json_reply(body, ready if readiness else healthy)

    routes = {"/metrics": http.metrics_route(registry), "/healthz": lambda: check(False),
              "/readyz": lambda: check(True)}
    return http.serve_in_thread(http.make_server(routes, addr, port), name)

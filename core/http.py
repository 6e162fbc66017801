"""One small HTTP server for a service's operator endpoints (/metrics, /healthz, /readyz, a JSON view): routes
are functions returning (status, content type, body), served by the standard library's threading server, quiet
(Prometheus scrapes every few seconds). Used by the forwarder, the ingress guard, deconfliction, the ledger and
the lag monitor, each with its own routes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["JSON", "Reply", "Route", "json_reply", "make_server", "metrics_route", "serve_in_thread"]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
#: (HTTP status, content type, body)
Reply = tuple[int, str, bytes]
Route = Callable[[], Reply]


def json_reply(body, ok: bool = True, indent: int | None = None) -> Reply:
    """200 (or 503 when not ``ok``) with ``body`` as JSON."""
    return (200 if ok else 503), JSON, json.dumps(body, default=str, indent=indent).encode()


def metrics_route(registry: CollectorRegistry) -> Route:
    """/metrics: the Prometheus text exposition of ``registry``."""
    return lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))


def make_server(routes: Mapping[str, Route], host: str, port: int) -> ThreadingHTTPServer:
    """A server answering GET on each of ``routes`` (the query string ignored), 404 naming the routes otherwise;
    port 0 picks a free one (``server.server_port``)."""
    known = " or ".join(sorted(routes))
    missing = f"not found: try {known}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            route = routes.get(self.path.split("?", 1)[0])
            code, ctype, body = route() if route is not None else (404, TEXT, missing)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):  # quiet: scrapes every few seconds
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer, name: str) -> ThreadingHTTPServer:
    """Serve ``server`` on a daemon thread called ``name``; returns it (``shutdown()`` stops it)."""
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name=name).start()
    return server

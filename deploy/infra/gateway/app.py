"""The registry gateway service: HTTP basic authentication, the authorisation of :mod:`.policy`, and a proxy to
Apicurio's Confluent-compatible API (over TLS, with the gateway's bearer token).

Run by `liaison infra up` as ``python -m deploy.infra.gateway --config <gateway.json> -Dliaison.server=...``;
the config names the listening address, the TLS certificate it serves, the upstream (Apicurio), the CA that
signed both, the users file and the token key. One JSON log line per refusal (event ``registry.refused``:
principal, method, path, status, reason) on stderr, which the server's log file collects.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.logs import configure_logging, get_logger
from deploy.infra.gateway import policy
from deploy.infra.gateway.token import TokenSource
from deploy.infra.gateway.users import Verifier, load_users

__all__ = ["GatewayConfig", "make_app", "main"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
CHALLENGE = 'Basic realm="liaison-registry", charset="UTF-8"'
#: request headers passed on to Apicurio (authorization is replaced by the gateway's token)
FORWARD_REQUEST = ("content-type", "accept")
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

log = get_logger("registry-gateway")


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    port: int
    #: Apicurio's origin, e.g. https://127.0.0.1:8081 (the API lives under policy.API_PREFIX)
    upstream: str
    ca: str
    users_file: str
    token_key_file: str
    certfile: str = ""
    keyfile: str = ""

    @classmethod
    def load(cls, path: Path) -> "GatewayConfig":
        return cls(**json.loads(Path(path).read_text()))


def _error(status: int, code: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers,
                        media_type=CONTENT_TYPE)


def _basic(request: Request) -> tuple[str, str] | None:
    value = request.headers.get("authorization", "")
    scheme, _, b64 = value.partition(" ")
    if scheme.lower() != "basic" or not b64:
        return None
    try:
        user, sep, password = base64.b64decode(b64.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user else None


def make_app(cfg: GatewayConfig, *, verifier: Verifier | None = None, tokens: TokenSource | None = None,
             transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    verifier = verifier or Verifier(load_users(Path(cfg.users_file)))
    tokens = tokens or TokenSource(Path(cfg.token_key_file))
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cfg.ca) if cfg.ca else True
    upstream = httpx.AsyncClient(base_url=cfg.upstream, verify=verify, timeout=30.0, transport=transport)

    async def _upstream(method: str, raw_path: str, query: bytes = b"", headers: dict | None = None,
                        body: bytes = b"") -> httpx.Response:
        url = raw_path + ("?" + query.decode("latin-1") if query else "")
        return await upstream.request(method, url, content=body or None,
                                      headers={**(headers or {}), "authorization": tokens.header()})

    def _refuse(principal: str | None, request: Request, raw_path: str, status: int, reason: str) -> JSONResponse:
        log.warning("registry.refused", principal=principal, method=request.method, path=raw_path,
                    status=status, reason=reason)
        if status == 401:
            return _error(401, 40101, f"authentication required: {reason}", {"WWW-Authenticate": CHALLENGE})
        return _error(403, 40301, f"forbidden: {reason}")

    async def health(request: Request) -> Response:
        try:
            r = await _upstream("GET", f"{policy.API_PREFIX}/schemas/types")
        except httpx.HTTPError as e:
            return JSONResponse({"status": "DOWN", "reason": f"registry unreachable: {type(e).__name__}"}, 503)
        if r.status_code != 200:
            return JSONResponse({"status": "DOWN", "reason": f"registry answered {r.status_code}"}, 503)
        return JSONResponse({"status": "UP"})

    async def proxy(request: Request) -> Response:
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?", 1)[0]
        creds = _basic(request)
        if creds is None:
            return _refuse(None, request, raw_path, 401, "HTTP basic credentials of a principal")
        user, password = creds
        ok = verifier.remembered(user, password) or await run_in_threadpool(verifier.verify, user, password)
        if not ok:
            return _refuse(user, request, raw_path, 401, "unknown principal or wrong password")
        query = request.scope.get("query_string", b"")
        keys = [k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
        decision = policy.authorize(user, request.method, raw_path, keys)
        if not decision.allow:
            return _refuse(user, request, raw_path, 403, decision.reason)
        try:
            if decision.schema_id is not None and policy.is_restricted(user):
                r = await _upstream("GET", f"{policy.API_PREFIX}/schemas/ids/{decision.schema_id}/versions")
                if r.status_code != 200 or not policy.owns_schema(user, r.json()):
                    return _refuse(user, request, raw_path, 403,
                                   f"schema id {decision.schema_id} is not registered under a subject of {user}")
            headers = {k: v for k in FORWARD_REQUEST if (v := request.headers.get(k))}
            r = await _upstream(request.method, raw_path, query, headers, await request.body())
        except httpx.HTTPError as e:
            log.error("registry.unreachable", principal=user, method=request.method, path=raw_path,
                      error=f"{type(e).__name__}: {e}")
            return _error(502, 50201, "the schema registry behind the gateway is unreachable")
        content_type = r.headers.get("content-type", CONTENT_TYPE)
        body = r.content
        if decision.filter and r.status_code == 200 and policy.is_restricted(user):
            body = json.dumps(policy.filter_response(user, decision.filter, r.json())).encode()
        log.debug("registry.request", principal=user, method=request.method, path=raw_path, status=r.status_code)
        return Response(body, status_code=r.status_code, media_type=None, headers={"content-type": content_type})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await upstream.aclose()

    routes = [Route("/health", health, methods=["GET"]),
              Route("/{path:path}", proxy, methods=METHODS)]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.infra.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="gateway.json written by `liaison infra up`")
    parser.add_argument("--log-level", default="INFO")
    # the last argument, -Dliaison.server=<name>@<state dir>, only marks the process (deploy.infra.process)
    args, extra = parser.parse_known_args(argv)
    if any(not a.startswith("-Dliaison.server=") for a in extra):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    configure_logging(args.log_level)
    import uvicorn

    cfg = GatewayConfig.load(args.config)
    app = make_app(cfg)
    log.info("registry.gateway.starting", host=cfg.host, port=cfg.port, upstream=cfg.upstream,
             tls=bool(cfg.certfile))
    uvicorn.run(app, host=cfg.host, port=cfg.port, ssl_certfile=cfg.certfile or None,
                ssl_keyfile=cfg.keyfile or None, log_level="warning", access_log=False, server_header=False,
                date_header=False, lifespan="on")

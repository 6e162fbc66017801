"""The console's web application (Starlette): sign-in, the pages, JSON and server-sent events.

    GET  /                    the sign-in page (or the view, when signed in)
    POST /login               username + password -> the broker decides (console.sessions.sign_in)
    POST /logout
    GET  /view                the officer's / component's map and feed, or the operations view
    GET  /api/me              who this session is
    GET  /api/items?after=N   the session's items after number N (JSON)
    GET  /api/stream?after=N  the same as server-sent events, live (``item`` events; Last-Event-ID resumes)
    GET  /api/operations      operations only: outcomes, ledger, lag, health (JSON)
    GET  /api/operations/stream   operations only: the same every ``ops_interval_s`` (server-sent events)
    GET  /static/..., /vendor/... the pages' scripts and style, Leaflet and the world map (web/node_modules)

A session is a random token in an HttpOnly, SameSite=Strict cookie, mapped in this process to the principal and
its reader; the reader reads with that principal's credentials. A request that names a principal other than its
session's (``?principal=partner-usa`` from a RUS session) is refused with 403, one without a session with 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.logs import get_logger
from core.settings import Settings
from console.operations import OperationsReader
from console.principals import OPERATIONS, Principal, SignInRefused, principal_of
from console.precision import Grids
from console.sessions import FeedReader, SignInFailed, sign_in

__all__ = ["ConsoleConfig", "Sessions", "create_app", "WEB_DIR"]

log = get_logger("console")
WEB_DIR = Path(__file__).resolve().parent / "web"
COOKIE = "liaison_console"


@dataclass
class ConsoleConfig:
    settings: Settings
    partners: frozenset[str]
    components: frozenset[str]
    #: recipient (partner code or component name) -> the grids of its own policy
    grids: dict[str, Grids]
    since_s: float = 3600.0
    capacity: int = 5000
    health: dict[str, str] = field(default_factory=dict)
    ops_interval_s: float = 2.0
    idle_timeout_s: float = 8 * 3600.0
    web_dir: Path = WEB_DIR


@dataclass
class Session:
    token: str
    principal: Principal
    reader: Any
    created: float
    seen: float


def _start_reader(signed, config: ConsoleConfig):
    principal = signed.principal
    if principal.kind == OPERATIONS:
        return OperationsReader(signed, config.since_s, config.health).start()
    return FeedReader(signed, config.grids.get(principal.recipient, {}), config.since_s, config.capacity).start()


class Sessions:
    """Token -> session; each session owns its reader (closed on sign-out, idle timeout and shutdown)."""

    def __init__(self, config: ConsoleConfig, clock: Callable[[], float] = time.time,
                 signer: Callable = sign_in, reader_of: Callable | None = None):
        self.config = config
        self.clock = clock
        self.signer = signer
        #: (signed-in principal, config) -> its started reader
        self.reader_of = reader_of or _start_reader
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, username: str, password: str) -> Session:
        """Raises SignInRefused (a user the console does not serve) or SignInFailed (the broker said no)."""
        principal = principal_of(username, self.config.partners, self.config.components)
        signed = self.signer(self.config.settings, principal, password)
        reader = self.reader_of(signed, self.config)
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), principal, reader, now, now)
        with self._lock:
            self._by_token[session.token] = session
        log.info("console session opened", principal=principal.name)
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self.clock()
        with self._lock:
            session = self._by_token.get(token)
            if session is not None and now - session.seen > self.config.idle_timeout_s:
                del self._by_token[token]
                expired, session = session, None
            else:
                expired = None
                if session is not None:
                    session.seen = now
        if expired is not None:
            expired.reader.close()
        return session

    def close(self, token: str | None) -> None:
        with self._lock:
            session = self._by_token.pop(token or "", None)
        if session is not None:
            session.reader.close()
            log.info("console session closed", principal=session.principal.name)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._by_token = list(self._by_token.values()), {}
        for s in sessions:
            s.reader.close()

    def __len__(self) -> int:
        return len(self._by_token)


def _page(config: ConsoleConfig, name: str, status: int = 200, **subst: str) -> HTMLResponse:
    text = (config.web_dir / name).read_text(encoding="utf-8")
    for k, v in subst.items():
        text = text.replace("{{" + k + "}}", v)
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def create_app(config: ConsoleConfig, sessions: Sessions | None = None) -> Starlette:
    sessions = Sessions(config) if sessions is None else sessions  # (an empty Sessions is falsy: len 0)

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    def guarded(request: Request, operations: bool | None = None) -> Session | Response:
        """The request's session, or the response refusing it: 401 without a session, 403 for another
        principal's data (a ``principal`` parameter naming someone else, or the wrong kind of view)."""
        session = session_of(request)
        if session is None:
            return JSONResponse({"error": "not signed in"}, status_code=401)
        asked = request.query_params.get("principal")
        if asked is not None and asked != session.principal.name:
            log.warning("console request for another principal refused", principal=session.principal.name,
                        asked=asked, path=request.url.path)
            return JSONResponse({"error": f"a session of {session.principal.name} reads its own stream only, "
                                          f"not {asked}'s"}, status_code=403)
        if operations is not None and (session.principal.kind == OPERATIONS) != operations:
            return JSONResponse({"error": f"{session.principal.name} has no access to this view"}, status_code=403)
        return session

    async def index(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/view", status_code=303)
        return _page(config, "login.html", message="")

    async def login(request: Request) -> Response:
        # the sign-in form is application/x-www-form-urlencoded: the standard library reads it
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        username, password = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
        try:
            session = await run_in_threadpool(sessions.open, username, password)
        except (SignInRefused, SignInFailed) as e:
            log.warning("console sign-in refused", principal=username[:64], error=str(e))
            return _page(config, "login.html", status=401,
                         message=f'<p class="error" id="sign-in-error">Sign-in refused: {_escape(str(e))}</p>')
        response = RedirectResponse("/view", status_code=303)
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/")
        return response

    async def logout(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def view(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/", status_code=303)
        page = "operations.html" if session.principal.kind == OPERATIONS else "officer.html"
        return _page(config, page, principal=_escape(session.principal.name), title=_escape(session.principal.title))

    async def me(request: Request) -> Response:
        s = guarded(request)
        if isinstance(s, Response):
            return s
        return JSONResponse({"principal": s.principal.name, "kind": s.principal.kind,
                             "recipient": s.principal.recipient, "title": s.principal.title})

    def _after(request: Request) -> int:
        raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        try:
            return max(0, int(raw))
        except ValueError:
            return 0

    async def items(request: Request) -> Response:
        s = guarded(request, operations=False)
        if isinstance(s, Response):
            return s
        got = s.reader.buffer.after(_after(request), limit=2000)
        return JSONResponse({"items": [{"seq": n, **it} for n, it in got], "last": s.reader.buffer.last,
                             "error": s.reader.error, "topics": sorted(s.reader.topics)})

    def live(request: Request, operations: bool, events: Callable) -> Response:
        """Server-sent events of ``events(session)`` while the session lasts, then ``signed-out``."""
        s = guarded(request, operations=operations)
        if isinstance(s, Response):
            return s

        async def until_signed_out():
            async for event in events(s, lambda: sessions.get(s.token) is s):
                yield event
            yield {"event": "signed-out", "data": "{}"}

        return EventSourceResponse(until_signed_out(), ping=10)

    async def stream(request: Request) -> Response:
        async def items_of(s: Session, alive: Callable[[], bool]):
            seq = _after(request)
            while alive():
                got = s.reader.buffer.after(seq)
                for n, it in got:
                    seq = n
                    yield {"event": "item", "id": str(n), "data": json.dumps({"seq": n, **it})}
                if not got:
                    await asyncio.sleep(0.2)

        return live(request, False, items_of)

    async def operations_json(request: Request) -> Response:
        s = guarded(request, operations=True)
        if isinstance(s, Response):
            return s
        return JSONResponse(s.reader.snapshot())

    async def operations_stream(request: Request) -> Response:
        async def snapshots(s: Session, alive: Callable[[], bool]):
            n = 0
            while alive():
                n += 1
                yield {"event": "snapshot", "id": str(n), "data": json.dumps(s.reader.snapshot())}
                await asyncio.sleep(config.ops_interval_s)

        return live(request, True, snapshots)

    async def favicon(request: Request) -> Response:
        return FileResponse(config.web_dir / "static" / "favicon.svg", media_type="image/svg+xml")

    modules = config.web_dir / "node_modules"
    routes = [Route("/", index), Route("/login", login, methods=["POST"]), Route("/logout", logout, methods=["POST"]),
              Route("/view", view), Route("/api/me", me), Route("/api/items", items), Route("/api/stream", stream),
              Route("/api/operations", operations_json), Route("/api/operations/stream", operations_stream),
              Route("/favicon.ico", favicon),
              Mount("/static", StaticFiles(directory=config.web_dir / "static"), name="static"),
              Mount("/vendor/leaflet", StaticFiles(directory=modules / "leaflet" / "dist", check_dir=False)),
              Mount("/vendor/topojson-client", StaticFiles(directory=modules / "topojson-client" / "dist",
                                                           check_dir=False)),
              Mount("/vendor/world-atlas", StaticFiles(directory=modules / "world-atlas", check_dir=False))]
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        sessions.close_all()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sessions = sessions
    return app

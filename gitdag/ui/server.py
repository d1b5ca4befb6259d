"""`gitdag ui`'s web app: Starlette routes over the store, a token guard, and server-sent events.

One thread owns the store (as in the supervisor): every read and every steering commit runs on a
single-worker executor, so the store, its parse cache and its sqlite connection are only ever
touched from that thread. A watcher reads the `dagain/state` ref every 0.2 s on that thread and
pushes each new head, with the transitions since the last one, to every open event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from gitdag.errors import GitdagError, InputError, RemoteError
from gitdag.graph_remote import LOCAL
from gitdag.store.state import StateStore
from gitdag.ui import data, steer
from gitdag.ui.remote_source import RemoteSource

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_HEADER = "X-Gitdag-Token"
WATCH_INTERVAL_S = 0.2
KEEPALIVE_S = 15.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8737
T = TypeVar("T")


@dataclass
class UIServer:
    """The state behind one `gitdag ui`: the repository, the token, the store's thread."""

    root: Path
    host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="gitdag-ui-store")
    )
    store: StateStore | None = None
    titles: data.Titles = field(default_factory=data.Titles)
    head: str | None = None
    listeners: set[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=set)
    loop: asyncio.AbstractEventLoop | None = None
    source: RemoteSource | None = None  # the graph's remote, when the page shows its graph

    def host_allowed(self, header: str) -> bool:
        """Tell whether a Host header names this server (loopback names, or the --host given).

        A page on another site that reaches this server through DNS rebinding sends its own
        name; it is refused. Listening on every address (0.0.0.0, ::) accepts any name.
        """
        if self.host in ("0.0.0.0", "::"):
            return True
        try:
            name = urlsplit("//" + header).hostname
        except ValueError:
            return False
        return name is not None and name in {*LOOPBACK, self.host.strip("[]").lower()}

    @property
    def reads_need_token(self) -> bool:
        """Reads need the token too unless the server listens on loopback only."""
        return self.host not in LOOPBACK

    def open(self) -> None:
        """Open the store on its own thread (raises the store's errors at once, before serving)."""
        self.store = self.executor.submit(StateStore.open, self.root).result()
        if self.source is not None:
            self.executor.submit(self.source.open_view).result()
        # Reading the graph now fails early on a repository without dagain/state (and warms up).
        self.head = self.executor.submit(lambda: self._store().snapshot().head).result()

    def close(self) -> None:
        """Close the store on its thread and stop the thread."""
        if self.source is not None:
            self.executor.submit(self.source.close_view).result()
            self.source.close()
        if self.store is not None:
            self.executor.submit(self.store.close).result()
            self.store = None
        self.executor.shutdown(wait=True)

    def _store(self) -> StateStore:
        assert self.store is not None, "UIServer.open() first"
        return self.source.pick(self.store) if self.source is not None else self.store

    def source_info(self) -> dict[str, Any]:
        """Which graph the page shows (the remote's, or this clone's) and what to say about it."""
        return self.source.info if self.source is not None else LOCAL

    def publish(self, event: dict[str, Any]) -> None:
        """Send an event to every open stream (`event`: its name, default `head`)."""
        for queue in list(self.listeners):
            queue.put_nowait(event)

    async def call(self, fn: Callable[[StateStore], T]) -> T:
        """Run `fn(store)` on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, self._store())

    # --- live updates ----------------------------------------------------------------------

    def _moved(self, store: StateStore) -> dict[str, Any] | None:
        head = store.head()
        if head == self.head or head is None:
            return None
        old, self.head = self.head, head
        entries = data.log_entries(store, stop=old, limit=500)
        change = data.moved(store, old, head)
        # `complete`: the entries reach back to `previous` (the page may prepend them to its log).
        complete = bool(entries) and entries[-1].parents[:1] == ((old,) if old else ())
        return {"head": head, "previous": old, "complete": complete, **change,
                "entries": [data.entry_data(e) for e in entries]}  # fmt: skip

    def end_streams(self) -> None:
        """Close every open event stream (the server is stopping; thread-safe)."""
        loop = self.loop
        if loop is None:
            return
        for queue in list(self.listeners):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    async def watch(self) -> None:
        """Push every new head of `dagain/state` to the open streams (a ref read per 0.2 s)."""
        self.loop = asyncio.get_running_loop()
        while True:
            try:
                event = await self.call(self._moved)
            except GitdagError:
                event = None
            if event is not None:
                self.publish(event)
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def events(self, request: Request) -> AsyncIterator[str]:
        """One client's stream: the current head first, then each move, with keep-alives."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.listeners.add(queue)
        try:
            yield f"event: hello\ndata: {json.dumps({'head': self.head})}\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    return
                name = event.get("event", "head")
                yield f"event: {name}\ndata: {json.dumps(event, default=str)}\n\n"
        finally:
            self.listeners.discard(queue)


class TokenGuard:
    """Every request that changes something needs the token in a header; reads too off loopback.

    And every request must name this server in its Host header (see `UIServer.host_allowed`).

    A plain ASGI middleware (event streams pass through untouched). A refused request gets 403
    before any handler runs, so nothing is changed.
    """

    def __init__(self, app: ASGIApp, ui: UIServer) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a guarded request without the token; pass everything else through."""
        if scope["type"] == "http":
            request = Request(scope)
            if not self.ui.host_allowed(request.headers.get("host", "")):
                await PlainTextResponse("Invalid host header", 400)(scope, receive, send)
                return
            mutating = request.method not in ("GET", "HEAD")
            reading_api = self.ui.reads_need_token and request.url.path.startswith("/api/")
            if mutating or reading_api:
                given = request.headers.get(TOKEN_HEADER, "")
                if not secrets.compare_digest(given.encode(), self.ui.token.encode()):
                    refused = JSONResponse(
                        {"error": f"missing or wrong {TOKEN_HEADER} header"}, 403
                    )
                    await refused(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _error(exc: Exception) -> JSONResponse:
    status = (400 if isinstance(exc, InputError) else 502 if isinstance(exc, RemoteError)
              else 409 if isinstance(exc, GitdagError) else 500)  # fmt: skip
    return JSONResponse({"error": str(exc)}, status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InputError("request body: not JSON") from None
    if not isinstance(body, dict):
        raise InputError("request body: expected a JSON object")
    return body


def build_app(ui: UIServer) -> Starlette:
    """Return the Starlette app serving `ui`."""

    async def run(fn: Callable[[StateStore], Any]) -> Response:
        try:
            return JSONResponse(await ui.call(fn))
        except GitdagError as exc:
            return _error(exc)

    async def steering(fn: Callable[[StateStore], Any]) -> Response:
        # With a remote, an action is one compare-and-swap push to it (remote_source.py).
        if ui.source is None:
            return await run(fn)
        try:
            return JSONResponse({**await ui.source.steer(fn), "remote": ui.source.remote})
        except GitdagError as exc:
            return _error(exc)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def config(request: Request) -> Response:
        return JSONResponse({"mode": "live", "root": str(ui.root), "head": ui.head,
                             "source": ui.source_info()})  # fmt: skip

    async def graph(request: Request) -> Response:
        at = request.query_params.get("at")
        with_titles = request.query_params.get("titles", "1") != "0"
        named = ui.titles if with_titles else None
        return await run(lambda s: {**data.graph_data(s, data.snapshot_at(s, at), named),
                                    "source": ui.source_info()})  # fmt: skip

    async def statuses(request: Request) -> Response:
        at = request.query_params.get("at")
        return await run(lambda s: data.statuses(data.snapshot_at(s, at)))

    async def log(request: Request) -> Response:
        return await run(lambda s: [data.entry_data(e) for e in data.log_entries(s)])

    async def node(request: Request) -> Response:
        nid = request.path_params["node_id"]
        at = request.query_params.get("at")
        return await run(
            lambda s: data.node_data(s, data.snapshot_at(s, at), nid, data.log_entries(s))
        )

    async def run_file(request: Request) -> Response:
        p = request.path_params
        offset = int(request.query_params.get("offset", "0") or 0)
        return await run(lambda s: data.run_file(s, p["node_id"], p["attempt"], p["name"], offset))

    async def diff(request: Request) -> Response:
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            return _error(InputError("diff: give both revisions, ?a=REV&b=REV"))
        return await run(lambda s: data.diff_data(s, a, b))

    async def timeline(request: Request) -> Response:
        return await run(lambda s: data.with_run_times(s, data.timeline(data.log_entries(s))))

    async def queue(request: Request) -> Response:
        return await run(lambda s: data.merge_queue(s, data.log_entries(s, limit=2000)))

    async def events(request: Request) -> Response:
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            ui.events(request), media_type="text/event-stream", headers=headers
        )

    async def steer_pause(request: Request) -> Response:
        return await steering(lambda s: steer.pause(s, True))

    async def steer_resume(request: Request) -> Response:
        return await steering(lambda s: steer.pause(s, False))

    async def steer_node(request: Request) -> Response:
        nid, action = request.path_params["node_id"], request.path_params["action"]
        try:
            body = await _json_body(request) if action == "answer" else {}
        except InputError as exc:
            return _error(exc)
        if action == "cancel":
            return await steering(lambda s: steer.cancel(s, nid))
        if action == "retry":
            force = request.query_params.get("force", "") in ("1", "true", "yes")
            return await steering(lambda s: steer.retry(s, nid, force))
        if action == "answer":
            option = body.get("option")
            if option is not None and not isinstance(option, int):
                return _error(InputError("option: expected a whole number (1-based)"))
            text = str(body.get("text") or "")
            return await steering(lambda s: steer.answer(s, nid, text, option))
        return _error(InputError(f"unknown action {action!r}"))

    async def propose(request: Request) -> Response:
        try:
            body = await _json_body(request)
        except InputError as exc:
            return _error(exc)
        text = str(body.get("text") or "")
        return await steering(lambda s: steer.propose_text(s, text))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(ui.watch())]
        if ui.source is not None:
            tasks.append(asyncio.create_task(ui.source.poll(ui.publish)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    routes = [
        Route("/", index),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/config", config),
        Route("/api/graph", graph),
        Route("/api/statuses", statuses),
        Route("/api/log", log),
        Route("/api/node/{node_id}", node),
        Route("/api/node/{node_id}/run/{attempt:int}/{name}", run_file),
        Route("/api/diff", diff),
        Route("/api/timeline", timeline),
        Route("/api/queue", queue),
        Route("/api/events", events),
        Route("/api/pause", steer_pause, methods=["POST"]),
        Route("/api/resume", steer_resume, methods=["POST"]),
        Route("/api/node/{node_id}/{action}", steer_node, methods=["POST"]),
        Route("/api/propose", propose, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    # No CORS headers are ever sent, so a page of another origin cannot send the token header.
    middleware = [Middleware(TokenGuard, ui=ui)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def listen(host: str, port: int) -> socket.socket:
    """Bind `host:port`; when the default port is taken, any free port (the URL says which).

    Raises:
      InputError: the address cannot be bound.
    """
    try:
        return _bind(host, port)
    except OSError as exc:
        if port != DEFAULT_PORT:
            raise InputError(f"--port {port}: cannot listen on {host}:{port}: {exc}") from None
    try:
        return _bind(host, 0)
    except OSError as exc:
        raise InputError(f"--host {host}: cannot listen there: {exc}") from None


def serve(root: Path, host: str, port: int, *, announce: Callable[[str], None],
          open_browser: bool, remote: str | None = None,
          note: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Serve the UI of the repository at `root` until interrupted; announce its URL first.

    `remote`: show and steer that remote's graph (remote_source.py); `note` is told, before the
    URL, which graph the page shows.
    """
    import uvicorn

    sock = listen(host, port)
    ui = UIServer(root=root, host=host)
    try:
        if remote is not None:
            ui.source = RemoteSource(root, remote)
            said = ui.source.start()
            if note is not None:
                note(said)
        ui.open()
    except BaseException:
        sock.close()
        ui.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/#token={ui.token}"
    announce(url)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(
        build_app(ui),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )

    class Server(uvicorn.Server):
        # Open event streams would hold a graceful shutdown until uvicorn's timeout (and an
        # error line); they are ended first, so Ctrl-C stops at once and quietly.
        def handle_exit(self, sig: int, frame: Any) -> None:
            ui.end_streams()
            super().handle_exit(sig, frame)

    try:
        Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn raises the signal again once it has stopped: Ctrl-C is how this ends
    finally:
        sock.close()
        ui.close()

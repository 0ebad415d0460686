"""The replay's web routes (aiohttp), served by the hub and by `commandhub replay DIR` alike.

- `GET /replay?op=ID[&seq=N|&t=US]`: the page (hub/static/replay.html; its API calls need a token).
- `GET /api/replay?op=ID`: the replay model (hub/replay/model.py) as JSON, with the operations.
- `GET /api/replay/log?op=ID&seq=N|t=US[&before=&after=]`: the log entries around a moment.
- `GET /api/replay/media/{name}?op=ID`: a trusted recording of the operation, with HTTP Range
  (aiohttp's FileResponse); a file whose SHA-256 or size no longer matches the log is refused
  (409 `untrusted`), never served.
- `GET /api/replay/frames/{name}?op=ID`: that recording's frame index (hub/replay/webm.py: each
  frame's media time, byte range and key flag, and the codec), trusted files only, so the page
  fetches (with Range) and decodes just the frames from the key frame before a moment to it.

In the hub the route table (hub/api/routes.py) gives these to `replay.view` (commander,
evaluator). The archived-folder server (`replay_app`) is bound to loopback and asks for its own
random token (printed in the URL it starts with); a page opened with it gets it as an HttpOnly
cookie, so deep links opened later in the same browser (from the scorecard PDF) work.
"""

from __future__ import annotations

import asyncio
import hmac
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.logformat import Head
from hub.replay.model import (
    LOG_NAME,
    CachedHasher,
    Replay,
    ReplayError,
    build_replay,
    check_file,
    read_operation,
    recording_file,
)
from hub.replay.webm import IndexCache, WebmError

PAGE = Path(__file__).resolve().parent.parent / "static" / "replay.html"
COOKIE = "commandhub_replay"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServeError(Exception):
    """The replay server cannot listen."""


class ReplayStore:
    """Builds replay models of one data folder (blocking work in the executor). The chain is
    verified in full once, then from the head verified last (as the hub does at start); a
    model is rebuilt (each file's trust checked again, cheaply: hashes are cached by size,
    mtime and inode) whenever the page loads it, and for the log around the cursor when the
    log changed, at most every `REUSE_S` while a hub writes to it."""

    REUSE_S = 5.0

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.hasher = CachedHasher()
        self.indexes = IndexCache()
        self._verified: Head | None = None
        self._operations: list[dict[str, Any]] = []
        self._models: dict[str | None, tuple[tuple[int, ...], float, Replay]] = {}
        self._lock = asyncio.Lock()

    def _log_stamp(self) -> tuple[int, ...]:
        out: list[int] = []
        for suffix in ("", "-wal"):
            p = self.data_dir / f"{LOG_NAME}{suffix}"
            try:
                st = p.stat()
                out += [st.st_size, st.st_mtime_ns]
            except OSError:
                out += [-1, -1]
        return tuple(out)

    async def get(self, op: str | None, *, fresh: bool = False) -> Replay:
        """The model of `op` (None: the last operation); `fresh`: rebuilt now."""
        async with self._lock:  # one build at a time
            stamp, now = self._log_stamp(), time.monotonic()
            hit = self._models.get(op)
            if hit is not None and not fresh and (hit[0] == stamp or now - hit[1] < self.REUSE_S):
                return hit[2]
            replay = await asyncio.get_running_loop().run_in_executor(None, self._build, op)
            self._models[op] = self._models[replay.op] = (stamp, now, replay)
            return replay

    def _build(self, op: str | None) -> Replay:
        read = read_operation(self.data_dir / LOG_NAME, op, self._verified)
        if read.head is not None:
            self._verified = read.head
        self._operations = read.operations
        return build_replay(read, self.data_dir, self.hasher)

    async def operations(self) -> list[dict[str, Any]]:
        """The log's operations (as last read)."""
        return self._operations


STORE_KEY = web.AppKey("replay_store", ReplayStore)


def attach_replay(app: web.Application, data_dir: Path) -> None:
    """Add the replay page and API to an aiohttp app serving `data_dir`."""
    app[STORE_KEY] = ReplayStore(data_dir)
    app.router.add_get("/replay", page)
    app.router.add_get("/api/replay", model)
    app.router.add_get("/api/replay/log", around)
    app.router.add_get("/api/replay/media/{name}", media)
    app.router.add_get("/api/replay/frames/{name}", frames)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(reason=f"{name}: an integer") from exc


async def page(request: web.Request) -> web.StreamResponse:
    if not PAGE.is_file():
        raise web.HTTPNotFound(reason="the replay page is not installed")
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


async def _replay(request: web.Request, fresh: bool = False) -> Replay | web.Response:
    op = request.query.get("op") or None
    try:
        return await request.app[STORE_KEY].get(op, fresh=fresh)
    except ReplayError as exc:
        return _error(404, "no_replay", str(exc))


async def model(request: web.Request) -> web.Response:
    got = await _replay(request, fresh=True)
    if isinstance(got, web.Response):
        return got
    body = got.to_json()
    body["operations"] = await request.app[STORE_KEY].operations()
    return web.json_response(body)


async def around(request: web.Request) -> web.Response:
    got = await _replay(request)
    if isinstance(got, web.Response):
        return got
    seq, t_us = _int(request, "seq"), _int(request, "t")
    before = min(max(_int(request, "before") or 12, 0), 200)
    after = min(max(_int(request, "after") or 12, 0), 200)
    try:
        return web.json_response(got.around(seq=seq, t_us=t_us, before=before, after=after))
    except ReplayError as exc:
        return _error(404, "no_such_seq", str(exc))


async def _trusted_file(request: web.Request,
                        then: Callable[[Path], Any] | None = None) -> tuple[str, Path, Any] | web.Response:
    """(name, path, then(path)) of the trusted recording the request names, checked again now
    (hashes cached by size, mtime and inode: a file changed since is refused), or the error.
    The check and `then` run in the executor unless the hash is cached and there is no `then`."""
    got = await _replay(request)
    if isinstance(got, web.Response):
        return got
    rec = got.recording(request.match_info["name"])
    if rec is None:
        return _error(404, "no_recording", "no such recording in this operation")
    store = request.app[STORE_KEY]
    if not rec.trusted:
        return _error(409, "untrusted", f"{rec.name}: {rec.problem}")
    payload = {"path": rec.path, "sha256": rec.sha256, "size": rec.size}
    path = recording_file(store.data_dir, rec.path)

    def work() -> tuple[str, Any]:
        problem = check_file(store.data_dir, payload, store.hasher)
        return problem, (then(path) if then is not None and path is not None and not problem
                         else None)

    if then is None and path is not None and store.hasher.known(path):
        problem, done = work()  # a stat and a dict lookup: no thread hop
    else:
        problem, done = await asyncio.get_running_loop().run_in_executor(None, work)
    if problem or path is None:
        return _error(409, "untrusted", f"{rec.name}: {problem}")
    return rec.name, path, done


async def media(request: web.Request) -> web.StreamResponse:
    got = await _trusted_file(request)
    if isinstance(got, web.Response):
        return got
    name, path, _ = got
    ctype = "video/webm" if name.endswith(".webm") else "video/x-matroska"
    return web.FileResponse(path, headers={"Content-Type": ctype,
                                           "Cache-Control": "private, max-age=3600"})


async def frames(request: web.Request) -> web.Response:
    indexes = request.app[STORE_KEY].indexes

    def index(path: Path) -> dict[str, Any] | str:
        try:
            return indexes(path).to_json()
        except (WebmError, OSError) as exc:
            return str(exc)

    got = await _trusted_file(request, index)
    if isinstance(got, web.Response):
        return got
    name, _, body = got
    if isinstance(body, str):
        return _error(422, "no_index", f"{name}: {body}")
    return web.json_response(body, headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------------------- archived folder

def replay_app(data_dir: Path, token: str) -> web.Application:
    """The stand-alone replay server of an archived data folder (no hub running)."""
    from hub.server import SECURITY_HEADERS, STATIC, font_handler

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = (request.query.get("token") or request.cookies.get(COOKIE)
                 or request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
        ok = hmac.compare_digest(given.encode(), token.encode())
        if request.path.startswith("/api/") and not ok:
            return _error(401, "unauthorized", "this replay server needs the token it printed")
        response = await handler(request)
        if ok and request.query.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    async def headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)

    app = web.Application(middlewares=[guard])
    app.on_response_prepare.append(headers)
    attach_replay(app, data_dir)
    app.router.add_get("/fonts/cjk.ttf", font_handler)
    app.router.add_static("/static/", STATIC)
    return app


async def serve_folder(data_dir: Path, op: str, host: str, port: int, token: str) -> int:
    """Serve `replay_app` until SIGINT/SIGTERM; print the page's URL (with the token) first."""
    runner = web.AppRunner(replay_app(data_dir, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server: Any = site._server
    bound = server.sockets[0].getsockname()[1] if server is not None else port
    shown = f"[{host}]" if ":" in host else host
    print(f"replay: serving {data_dir} (read-only) at "
          f"http://{shown}:{bound}/replay?op={op}&token={token}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0

"""The replay's web routes (aiohttp), served by the hub and by `commandhub replay DIR` alike.

- `GET /replay?op=ID[&seq=N|&t=US]`: the page (hub/static/replay.html; its API calls need a token).
- `GET /api/replay?op=ID`: the replay model (hub/replay/model.py) as JSON, with the operations.
- `GET /api/replay/log?op=ID&seq=N|t=US[&before=&after=]`: the log entries around a moment.
- `GET /api/replay/media/{name}?op=ID`: a trusted recording of the operation, with HTTP Range
  (aiohttp's FileResponse); a file whose SHA-256 or size no longer matches the log is refused
  (409 `untrusted`), never served.
- `GET /api/replay/frames/{name}?op=ID`: that recording's frame index (hub/replay/webm.py: each
  frame's media time, byte range and key flag, and the codec), trusted files only, so a page
  fetches and decodes just the frames from the key frame before a moment to it.
- `GET /api/replay/frames?op=ID&name=A&name=B...`: the frame indexes of up to `BATCH` trusted
  recordings in one answer (`indexes`, and `errors` by name for those it cannot give), and
  `GET /api/replay/bytes?op=ID&r=NAME:FIRST-LAST&r=...`: those byte ranges of up to `BATCH`
  trusted recordings, one after the other in one body (a seek to another part of the drill
  wants every tile's index and then its frames: one request each instead of 16 per tile
  queued behind the browser's 6 connections).

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
    Recording,
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
    app.router.add_get("/api/replay/frames", frames_batch)
    app.router.add_get("/api/replay/bytes", byte_ranges)


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


class _Refused(Exception):
    """A recording the request names that is not served (its HTTP status, code and message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        return _error(self.status, self.code, self.message)

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _trusted(got: Replay, name: str) -> Recording:
    """The operation's recording `name`, if the log trusts it (else _Refused)."""
    rec = got.recording(name)
    if rec is None:
        raise _Refused(404, "no_recording", f"{name}: no such recording in this operation")
    if not rec.trusted:
        raise _Refused(409, "untrusted", f"{rec.name}: {rec.problem}")
    return rec


def _recheck(store: ReplayStore, rec: Recording) -> Path:
    """The file of `rec`, its hash and size checked again now (hashes cached by size, mtime and
    inode: a file changed since the model was built is refused)."""
    problem = check_file(store.data_dir, {"path": rec.path, "sha256": rec.sha256, "size": rec.size},
                         store.hasher)
    path = recording_file(store.data_dir, rec.path)
    if problem or path is None:
        raise _Refused(409, "untrusted", f"{rec.name}: {problem or 'outside the recordings'}")
    return path


def _index_json(indexes: IndexCache, path: Path) -> dict[str, Any]:
    try:
        return indexes(path).to_json()
    except (WebmError, OSError) as exc:
        raise _Refused(422, "no_index", f"{path.name}: {exc}") from exc


async def _off_loop(store: ReplayStore, recs: list[Recording],
                    then: Callable[[int, Path], Any], cheap: bool = False) -> list[Any]:
    """`then(i, path)` for the file of each `recs[i]`, re-checked; in the executor unless
    `cheap` and every hash is cached (a stat and a dict lookup each: no thread hop)."""
    def work() -> list[Any]:
        return [then(i, _recheck(store, rec)) for i, rec in enumerate(recs)]

    if cheap and all(store.hasher.known(p) for rec in recs
                     if (p := recording_file(store.data_dir, rec.path)) is not None):
        return work()
    return await asyncio.get_running_loop().run_in_executor(None, work)


async def media(request: web.Request) -> web.StreamResponse:
    got = await _replay(request)
    if isinstance(got, web.Response):
        return got
    try:
        rec = _trusted(got, request.match_info["name"])
        [path] = await _off_loop(request.app[STORE_KEY], [rec], lambda _, path: path, cheap=True)
    except _Refused as exc:
        return exc.response()
    ctype = "video/webm" if rec.name.endswith(".webm") else "video/x-matroska"
    return web.FileResponse(path, headers={"Content-Type": ctype,
                                           "Cache-Control": "private, max-age=3600"})


async def frames(request: web.Request) -> web.Response:
    got = await _replay(request)
    if isinstance(got, web.Response):
        return got
    store = request.app[STORE_KEY]
    try:
        rec = _trusted(got, request.match_info["name"])
        [body] = await _off_loop(store, [rec], lambda _, path: _index_json(store.indexes, path))
    except _Refused as exc:
        return exc.response()
    return web.json_response(body, headers={"Cache-Control": "private, max-age=3600"})


BATCH = 32  # recordings per batched request
BATCH_BYTES = 32 << 20  # bytes per `bytes` answer


async def frames_batch(request: web.Request) -> web.Response:
    names = list(dict.fromkeys(request.query.getall("name", [])))
    if not names or len(names) > BATCH:
        return _error(400, "bad_names", f"name: 1 to {BATCH} recordings, {len(names)} given")
    got = await _replay(request)
    if isinstance(got, web.Response):
        return got
    store = request.app[STORE_KEY]
    errors: dict[str, dict[str, str]] = {}
    recs = []
    for name in names:
        try:
            recs.append(_trusted(got, name))
        except _Refused as exc:
            errors[name] = exc.to_json()

    def work() -> dict[str, Any]:
        out = {}
        for rec in recs:
            try:
                out[rec.name] = _index_json(store.indexes, _recheck(store, rec))
            except _Refused as exc:
                errors[rec.name] = exc.to_json()
        return out

    out = await asyncio.get_running_loop().run_in_executor(None, work)
    return web.json_response({"indexes": out, "errors": errors},
                             headers={"Cache-Control": "private, max-age=3600"})


def _ranges(request: web.Request) -> list[tuple[str, int, int]]:
    """The `r=NAME:FIRST-LAST` of a `bytes` request."""
    raw = request.query.getall("r", [])
    if not raw or len(raw) > BATCH:
        raise _Refused(400, "bad_range", f"r: 1 to {BATCH} ranges, {len(raw)} given")
    out = []
    for r in raw:
        name, _, span = r.rpartition(":")
        first, _, last = span.partition("-")
        if not name or not first.isdigit() or not last.isdigit() or int(last) < int(first):
            raise _Refused(400, "bad_range", f"r={r!r}: NAME:FIRST-LAST with FIRST <= LAST")
        out.append((name, int(first), int(last)))
    total = sum(last - first + 1 for _, first, last in out)
    if total > BATCH_BYTES:
        raise _Refused(400, "bad_range", f"r: {total} bytes asked for, at most {BATCH_BYTES}")
    return out


async def byte_ranges(request: web.Request) -> web.Response:
    got = await _replay(request)
    if isinstance(got, web.Response):
        return got
    try:
        ranges = _ranges(request)
        recs = [_trusted(got, name) for name, _, _ in ranges]
        for rec, (_, _, last) in zip(recs, ranges, strict=True):
            if last >= rec.size:
                raise _Refused(416, "bad_range", f"{rec.name}: byte {last} is past its end "
                                                 f"({rec.size} bytes)")

        def read(i: int, path: Path) -> bytes:
            _, first, last = ranges[i]
            with path.open("rb") as f:
                f.seek(first)
                return f.read(last - first + 1)

        parts = await _off_loop(request.app[STORE_KEY], recs, read)
    except _Refused as exc:
        return exc.response()
    return web.Response(body=b"".join(parts), content_type="application/octet-stream",
                        headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------------------- archived folder
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

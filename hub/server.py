"""The hub's web layer (aiohttp): WebSocket `/ws`, the REST API, `/metrics`, and static pages.

Every request passes the route table (hub/api/routes.py) before its handler runs; every
denial is a 4xx with `{"error": {"code", "message"}}`; every response carries the security
headers; WebSocket frames and JSON bodies are parsed strictly (hub/api/wire.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from hub.api import routes, wire
from hub.api.audience import audience
from hub.api.dispatch import request_id
from hub.api.errors import Forbidden, HubError, RateLimited, http_status
from hub.auth import AuthError, Principal
from hub.commands import CommandError
from hub.eventlog import EventLogError
from hub.liveness import PING_INTERVAL_S, Liveness
from hub.ratelimit import KeyedLimiter
from hub.service import SESSION_ID, Hub, Session, encode

log = logging.getLogger("commandhub.server")
HUB_KEY = web.AppKey("hub", Hub)
ORIGINS_KEY = web.AppKey("allowed_origins", set)
# Callables adding keys to /api/state (video link health) and text to /metrics.
STATE_EXTRAS_KEY = web.AppKey("state_extras", list)
METRICS_EXTRAS_KEY = web.AppKey("metrics_extras", list)
RPC_LIMIT_KEY = web.AppKey("rpc_limit", KeyedLimiter)
UPLOAD_LIMIT_KEY = web.AppKey("upload_limit", KeyedLimiter)
CONNECT_LIMIT_KEY = web.AppKey("connect_limit", KeyedLimiter)
PRINCIPAL = web.RequestKey("principal", Principal)  # the token access_middleware verified
MAX_FRAME = 64 * 1024  # bytes in one WebSocket message
MAX_OFFER_FRAME = 256 * 1024  # except an SDP offer: a commander's 34 m-lines need more
MAX_REQUEST = 1024 * 1024  # bytes in one HTTP request body
LINK_LOST_CODE = 4000  # a client's close: "my pings went unanswered" (docs/protocol.md)
OUT_QUEUE = 2000  # frames waiting for a slow client before it is cut off (it will replay)
STATIC = Path(__file__).parent / "static"
# The pages load only their own scripts, styles and font (no CDN, no inline code).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # page URLs carry ?token=
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


def _token_of(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query.get("token", "")


def _remote(request: web.Request) -> str:
    return request.remote or ""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def authenticate(request: web.Request) -> Principal:
    """The request's verified token (checked once, by access_middleware, against the hub's
    clock, operation and revocation list); raise AuthError (401) if there is none."""
    principal = request.get(PRINCIPAL)
    if isinstance(principal, Principal):
        return principal
    hub = request.app[HUB_KEY]
    try:
        principal = hub.authority.verify(_token_of(request), now=hub.clock.wall_us() // 1_000_000,
                                         operation=hub.state.op_id)
        hub.revocations.refresh()
        if principal.jti in hub.revocations:
            raise AuthError("revoked", "token has been revoked")
    except AuthError as exc:
        await hub.reject(exc.code, request.path, _remote(request))
        raise
    request[PRINCIPAL] = principal
    return principal


def principal_of(request: web.Request) -> Principal:
    """The principal access_middleware verified for this (token-needing) route."""
    principal = request.get(PRINCIPAL)
    assert isinstance(principal, Principal), "route declared PUBLIC but reads the principal"
    return principal


def origin_allowed(request: web.Request, allowed: set[str]) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser (or a same-origin request that omits it)
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.host


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as a 4xx JSON error with a code (a 5xx only when the hub itself fails)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
                415: "unsupported_media_type"}.get(exc.status, "bad_request" if exc.status < 500
                                                   else "http_error")
        return json_error(exc.status, code, exc.reason)
    except (HubError, CommandError, AuthError) as exc:
        status = http_status(exc.code)
        headers = {"Retry-After": "1"} if exc.code == "rate_limited" else None
        if status == 401:
            headers = {"WWW-Authenticate": bearer_challenge(request)}
        return json_error(status, exc.code, str(exc), headers)
    except EventLogError as exc:
        return web.json_response(log_error_body(exc), status=503)


def bearer_challenge(request: web.Request) -> str:
    """The `WWW-Authenticate` a 401 owes (RFC 6750 3): `invalid_token` when one was given."""
    given = bool(request.headers.get("Authorization", "").lower().startswith("bearer ")
                 or request.query.get("token"))
    return 'Bearer realm="commandhub"' + (', error="invalid_token"' if given else "")


def log_error_body(exc: EventLogError) -> dict[str, Any]:
    """`log_unavailable` with the cause (disk_full, io_error, ...) when the log knows it."""
    body = error_body("log_unavailable", str(exc))
    body["error"]["cause"] = getattr(exc, "cause", "error")
    return body


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: the route and method must be in the route table, with the token
    (unless PUBLIC) holding the route's permission."""
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: the router's own 404/405
        return await handler(request)
    declared = routes.find(request.method, resource.canonical)
    if declared is None:
        allow = routes.methods(resource.canonical)
        if allow:
            return json_error(405, "method_not_allowed",
                              f"{request.method} not allowed on {resource.canonical}",
                              {"Allow": ", ".join(allow)})
        raise HubError("not_found", f"{resource.canonical} is not a declared route")
    if declared.permission is not None and not (declared.loopback_open
                                                and is_loopback(_remote(request))):
        principal = await authenticate(request)
        if not principal.can(declared.permission):
            raise Forbidden(f"role {principal.role} may not {request.method} {resource.canonical}")
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


# -- WebSocket -----------------------------------------------------------------------------------

async def ws_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    if not origin_allowed(request, request.app[ORIGINS_KEY]):
        await hub.reject("bad_origin", request.path, _remote(request))
        return json_error(403, "bad_origin", f"origin {request.headers.get('Origin')} not allowed")
    rate_limit(request, CONNECT_LIMIT_KEY, "connections")
    principal = principal_of(request)
    replaces = request.query.get("replaces")
    if replaces is not None and not SESSION_ID.fullmatch(replaces):
        raise HubError("bad_request", "replaces: a session id from a welcome (12 hex digits)")
    # pings are the hub's own (hub/liveness.py), so they are answered here too
    ws = web.WebSocketResponse(autoping=False, max_msg_size=2 * MAX_OFFER_FRAME)
    await ws.prepare(request)
    liveness = Liveness()
    out: asyncio.Queue[dict[str, Any] | str | None] = asyncio.Queue(maxsize=OUT_QUEUE)
    close_reason: list[str] = []
    closing: list[asyncio.Future[bool]] = []  # keeps the close task referenced until done

    def close(reason: str) -> None:
        if not close_reason:
            close_reason.append(reason)
        with contextlib.suppress(asyncio.QueueFull):
            out.put_nowait(None)
        closing.append(asyncio.ensure_future(ws.close(code=4001, message=reason.encode()[:120])))

    def send(frame: dict[str, Any] | str) -> None:
        try:
            out.put_nowait(frame)
        except asyncio.QueueFull:
            close("slow_consumer")

    async def writer() -> None:
        while (frame := await out.get()) is not None:
            if ws.closed:
                return
            try:
                await ws.send_str(frame if isinstance(frame, str) else encode(frame))
            except ConnectionError:  # the peer is gone; the reader side notices and cleans up
                return

    session = Session(principal, send, close, remote=_remote(request))

    async def worker(inbox: asyncio.Queue[str | None]) -> None:  # one at a time, in order
        while (data := await inbox.get()) is not None:
            if close_reason:  # closed by the hub: what is still queued is not handled
                return
            await _on_text(hub, session, data)

    async def pinger() -> None:
        while not ws.closed:
            await asyncio.sleep(PING_INTERVAL_S)
            if not liveness.due():  # gone: drop the connection, no closing handshake to wait on
                if not close_reason:
                    close_reason.append("heartbeat")
                if request.transport is not None:
                    request.transport.close()
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.ping()

    wtask = asyncio.create_task(writer())
    ptask = asyncio.create_task(pinger())
    work: asyncio.Task[None] | None = None
    reason = "closed"
    try:
        try:
            await hub.session_opened(session, replaces)
        except EventLogError as exc:  # presence.online could not be logged: say why, then close
            await ws.send_json({"v": 1, "type": "error", "re": None, **log_error_body(exc)["error"]})
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"log_unavailable")
            return ws
        assert session.bucket is not None
        inbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=max(1, int(session.bucket.burst)))
        work = asyncio.create_task(worker(inbox))
        async for msg in ws:
            if close_reason:  # the hub closed it (revoked, flooding, ...): read nothing more
                break
            liveness.heard()
            if msg.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                if not _admit(session, inbox, msg.data, hub.clock.mono_ns() / 1e9):
                    reason = "flooding"  # read nothing more; answer what was admitted
                    break
            elif msg.type == WSMsgType.BINARY:
                send(_error("bad_frame", "binary frames are not part of the protocol"))
            elif msg.type == WSMsgType.ERROR:
                reason = "error"
        if reason == "flooding":
            pass
        elif ws.close_code == WSCloseCode.ABNORMAL_CLOSURE:
            reason = "error"  # the connection dropped without a closing handshake
        elif ws.close_code == LINK_LOST_CODE:
            reason = "link_lost"  # the client gave the socket up: its pings went unanswered
        if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
            reason = "too_large"
        # what was admitted is still handled (for 10 s at most), then the session ends
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                if not work.done():
                    await inbox.put(None)
                    await asyncio.shield(work)
        if reason == "flooding":  # its answers first, then the close
            send(_error("rate_limited", "flooding: far over the message rate; connection closed"))
            with contextlib.suppress(asyncio.QueueFull):
                out.put_nowait(None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(wtask), 5)
            # The close frame, then the TCP connection: waiting for the peer's close frame
            # would mean reading (parsing) everything it still has in flight.
            closer = asyncio.ensure_future(ws.close(code=4001, message=b"flooding"))
            await asyncio.sleep(0)  # the close frame is in the transport's buffer
            if request.transport is not None:
                request.transport.close()  # flushes what is buffered, reads nothing more
            with contextlib.suppress(Exception):
                await closer
    finally:
        if close_reason:  # closed by the hub (revoked, expired, slow consumer, flooding, ...)
            reason = close_reason[0]
        for task in (work, wtask, ptask) if work is not None else (wtask, ptask):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        await hub.session_closed(session, reason)
    return ws


def _error(code: str, message: str, re: str | None = None) -> dict[str, Any]:
    return {"v": 1, "type": "error", "re": re, "code": code, "message": message}


def _admit(s: Session, inbox: asyncio.Queue[str | None], data: str, now: float) -> bool:
    """Bounded work per session, decided as each frame is read (the socket is always read, so
    pings and pongs keep flowing): a message within the session's rate is queued for its
    worker (at most a burst of them waiting); over that, a few are answered `rate_limited`
    (one JSON parse each); past even those the session is flooding (False): it is closed."""
    assert s.bucket is not None and s.refusals is not None
    if not inbox.full() and s.bucket.take(now):
        inbox.put_nowait(data)
        return True
    if not s.refusals.take(now):
        return False
    mid: str | None = None
    with contextlib.suppress(HubError):
        msg = wire.decode(data)
        mid = request_id(msg) if isinstance(msg, dict) else None
    s.send(_error("rate_limited", "too many messages; slow down (this one was not processed)",
                  mid))
    return True


async def _on_text(hub: Hub, s: Session, data: str) -> None:
    # UTF-8 takes at most 4 bytes a character: a short text cannot pass any limit
    size = len(data.encode("utf-8")) if len(data) > MAX_FRAME // 4 else len(data)
    if size > MAX_OFFER_FRAME:
        s.send(_error("too_large", f"message over {MAX_OFFER_FRAME} bytes"))
        return
    mid = None
    try:
        msg = wire.decode(data)
        if not isinstance(msg, dict):
            raise HubError("bad_request", "a message is a JSON object")
        limit = MAX_OFFER_FRAME if msg.get("type") == "rtc.offer" else MAX_FRAME
        if size > limit:
            raise HubError("too_large", f"message over {limit} bytes")
        mid = request_id(msg)
        if msg.get("v", 1) != 1:
            raise HubError("bad_version", "this hub speaks protocol version 1")
        result = await hub.handle(s, msg)
    except (HubError, CommandError, AuthError) as exc:
        s.send(_error(exc.code, str(exc), mid))
        return
    except EventLogError as exc:
        s.send({**_error("log_unavailable", str(exc), mid), "cause": getattr(exc, "cause", "error")})
        return
    except Exception as exc:  # a bug in a handler: say so, keep the session's worker alive
        log.exception("request %s failed", mid)
        s.send(_error("internal_error", f"{type(exc).__name__} (the hub's fault; see its log)",
                      mid))
        return
    s.send({"v": 1, "type": "ack", "re": mid, "for": msg.get("type"), **result})


# -- REST ----------------------------------------------------------------------------------------

def _transient_session(principal: Principal, remote: str) -> Session:
    return Session(principal, send=lambda frame: None, close=lambda reason: None, remote=remote,
                   transient=True)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's body as one strict JSON object (hub/api/wire.py rules)."""
    body = wire.decode(await request.read())
    if not isinstance(body, dict):
        raise HubError("bad_request", "request body must be a JSON object")
    return body


def rate_limit(request: web.Request, key: web.AppKey[KeyedLimiter], what: str) -> None:
    """Spend one of the token's requests of this kind, or refuse (429) before the body is read."""
    hub = request.app[HUB_KEY]
    if not request.app[key].take(principal_of(request).jti, hub.clock.mono_ns() / 1e9):
        raise RateLimited(f"too many {what} for this token; slow down")


async def state_handler(request: web.Request) -> web.Response:
    """The state as the role may see it: a department gets its own commands and progress, and
    not the media plane's sections (every department's links, routes, ingest sources)."""
    hub = request.app[HUB_KEY]
    principal = principal_of(request)
    body = hub.snapshot(principal)
    if principal.can("read.all"):
        for fn in request.app[STATE_EXTRAS_KEY]:
            body.update(fn())
    return web.json_response(body)


async def events_handler(request: web.Request) -> web.Response:
    """Committed events after a seq, only those the role may see (`next`: the last seq read)."""
    principal = principal_of(request)
    try:
        after = int(request.query.get("after", "0"))
        limit = min(max(int(request.query.get("limit", "500")), 1), 5000)
    except ValueError as exc:
        raise HubError("bad_request", "after and limit: integers") from exc
    hub = request.app[HUB_KEY]
    events = hub.log.after(after, limit, request.query.get("op"))
    nxt = events[-1].seq if events else after
    role, dept = str(principal.role), principal.dept
    return web.json_response({"events": [e.to_dict() for e in events
                                         if audience(e).admits(role, dept)], "next": nxt,
                              "head": {"seq": hub.log.head.seq, "hash": hub.log.head.hash}})


async def commands_handler(request: web.Request) -> web.Response:
    rate_limit(request, RPC_LIMIT_KEY, "requests")
    hub = request.app[HUB_KEY]
    body = await json_body(request)
    body["type"] = "command.issue"
    result = await hub.handle(_transient_session(principal_of(request), _remote(request)), body)
    return web.json_response(result, status=201)


async def rpc_handler(request: web.Request) -> web.Response:
    """POST the same JSON message as on /ws; get the ack fields back (for tools and scripts)."""
    rate_limit(request, RPC_LIMIT_KEY, "requests")
    hub = request.app[HUB_KEY]
    body = await json_body(request)
    result = await hub.handle(_transient_session(principal_of(request), _remote(request)), body)
    return web.json_response(result)


async def roster_handler(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    return web.json_response({"center": hub.roster.center.to_dict(),
                              "departments": hub.roster.to_list(), "groups": hub.roster.groups,
                              "group_info": hub.roster.group_info()})


async def metrics_handler(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    lines = [
        "# HELP commandhub_events_total Events committed to the log.",
        "# TYPE commandhub_events_total counter",
        f"commandhub_events_total {hub.log.head.seq}",
        "# HELP commandhub_sessions Open client connections.",
        "# TYPE commandhub_sessions gauge",
        f"commandhub_sessions {len(hub.sessions)}",
        "# HELP commandhub_department_online 1 if the department has a live connection.",
        "# TYPE commandhub_department_online gauge",
    ]
    for d in hub.roster.departments:
        lines.append(f'commandhub_department_online{{dept="{d.id}"}} '
                     f'{int(hub.state.dept_online(d.id))}')
    open_cmds = len(hub.state.commands.open_ids)
    lines += ["# HELP commandhub_open_commands Commands with a department still pending.",
              "# TYPE commandhub_open_commands gauge", f"commandhub_open_commands {open_cmds}"]
    text = "\n".join(lines) + "\n" + "".join(fn() for fn in request.app[METRICS_EXTRAS_KEY])
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def health_handler(request: web.Request) -> web.Response:
    """200 `{"ok": true, ...}` while the log commits; 503 `{"ok": false, "log": {"ok": false,
    "cause": ...}}` while it cannot (back to 200 once a commit or the log's probe succeeds)."""
    hub = request.app[HUB_KEY]
    health = hub.log.health()
    body = {"ok": health.ok, "head": hub.log.head.seq,
            "log": health.to_dict(hub.log.wal_bytes())}
    return web.json_response(body, status=200 if health.ok else 503)


def page_handler(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = STATIC / f"{name}.html"
        if not path.is_file():
            raise web.HTTPNotFound(reason=f"page {name} is not installed")
        return web.FileResponse(path)
    return handler


async def font_handler(request: web.Request) -> web.StreamResponse:
    """The CJK font for the pages' @font-face, so Chinese shows on machines without CJK fonts."""
    from media.fonts import FontNotFoundError, find_web_font

    try:
        path = find_web_font()
    except FontNotFoundError as exc:
        raise web.HTTPNotFound(reason=str(exc)) from exc
    return web.FileResponse(path, headers={"Content-Type": "font/ttf",
                                           "Cache-Control": "max-age=86400"})


def create_app(hub: Hub, *, allowed_origins: set[str] | None = None) -> web.Application:
    """The aiohttp application for a started Hub."""
    app = web.Application(client_max_size=MAX_REQUEST,
                          middlewares=[errors_middleware, access_middleware])
    app.on_response_prepare.append(security_headers)
    app[HUB_KEY] = hub
    app[ORIGINS_KEY] = allowed_origins or set()
    app[STATE_EXTRAS_KEY] = []
    app[METRICS_EXTRAS_KEY] = []
    c = hub.config
    app[RPC_LIMIT_KEY] = KeyedLimiter(c.rpc_rate, c.rpc_burst)
    app[UPLOAD_LIMIT_KEY] = KeyedLimiter(c.upload_rate, c.upload_burst)
    app[CONNECT_LIMIT_KEY] = KeyedLimiter(c.connect_rate, c.connect_burst)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/api/state", state_handler)
    app.router.add_get("/api/events", events_handler)
    app.router.add_post("/api/commands", commands_handler)
    app.router.add_post("/api/rpc", rpc_handler)
    app.router.add_get("/api/roster", roster_handler)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", health_handler)
    app.router.add_get("/fonts/cjk.ttf", font_handler)
    for name in ("commander", "department", "evaluator"):
        app.router.add_get(f"/{name}", page_handler(name))
    if STATIC.is_dir():
        app.router.add_static("/static/", STATIC)
    return app

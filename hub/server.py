"""The hub's web layer (aiohttp): WebSocket `/ws`, the REST API, `/metrics`, and static pages."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from hub.auth import AuthError, Principal
from hub.commands import CommandError
from hub.eventlog import EventLogError
from hub.service import Hub, HubError, Session, encode

HUB_KEY = web.AppKey("hub", Hub)
ORIGINS_KEY = web.AppKey("allowed_origins", set)
# Callables adding keys to /api/state (video link health) and text to /metrics.
STATE_EXTRAS_KEY = web.AppKey("state_extras", list)
METRICS_EXTRAS_KEY = web.AppKey("metrics_extras", list)
MAX_FRAME = 64 * 1024  # bytes in one WebSocket message
MAX_OFFER_FRAME = 256 * 1024  # except an SDP offer: a commander's 34 m-lines need more
MAX_REQUEST = 1024 * 1024  # bytes in one HTTP request body
OUT_QUEUE = 2000  # frames waiting for a slow client before it is cut off (it will replay)
STATIC = Path(__file__).parent / "static"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


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
    """Verify the request's token against the hub's clock, operation and revocation list."""
    hub = request.app[HUB_KEY]
    token = _token_of(request)
    try:
        principal = hub.authority.verify(token, now=hub.clock.wall_us() // 1_000_000,
                                         operation=hub.state.op_id)
        hub.revocations.refresh()
        if principal.jti in hub.revocations:
            raise AuthError("revoked", "token has been revoked")
    except AuthError as exc:
        await hub.reject(exc.code, request.path, _remote(request))
        raise web.HTTPUnauthorized(
            text=json.dumps(error_body(exc.code, str(exc))), content_type="application/json"
        ) from exc
    return principal


def origin_allowed(request: web.Request, allowed: set[str]) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser (or a same-origin request that omits it)
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.host


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error")
        return json_error(exc.status, code, exc.reason)
    except (HubError, CommandError) as exc:
        return json_error(409 if exc.code in ("invalid_transition", "operation_running") else 400,
                          exc.code, str(exc))
    except EventLogError as exc:
        return json_error(503, "log_unavailable", str(exc))


async def ws_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    if not origin_allowed(request, request.app[ORIGINS_KEY]):
        await hub.reject("bad_origin", request.path, _remote(request))
        return json_error(403, "bad_origin", f"origin {request.headers.get('Origin')} not allowed")
    principal = await authenticate(request)
    ws = web.WebSocketResponse(heartbeat=2.0, max_msg_size=2 * MAX_OFFER_FRAME)
    await ws.prepare(request)
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
    wtask = asyncio.create_task(writer())
    reason = "closed"
    try:
        await hub.session_opened(session)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _on_text(hub, session, msg.data)
            elif msg.type == WSMsgType.BINARY:
                send(_error("bad_frame", "binary frames are not part of the protocol"))
            elif msg.type == WSMsgType.ERROR:
                reason = "error"
        if isinstance(ws.exception(), asyncio.TimeoutError):
            reason = "heartbeat"  # pings went unanswered
        elif ws.close_code == WSCloseCode.ABNORMAL_CLOSURE:
            reason = "error"  # the connection dropped without a closing handshake
        if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
            reason = "too_large"
    finally:
        if close_reason:  # closed by the hub (revoked, expired, slow consumer, ...)
            reason = close_reason[0]
        wtask.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await wtask
        await hub.session_closed(session, reason)
    return ws


def _error(code: str, message: str, re: str | None = None) -> dict[str, Any]:
    return {"v": 1, "type": "error", "re": re, "code": code, "message": message}


def _refusal(msg: Any, size: int) -> dict[str, Any] | None:
    """The error frame for a message that cannot be handled at all, or None."""
    if not isinstance(msg, dict):
        return _error("bad_request", "a message is a JSON object")
    limit = MAX_OFFER_FRAME if msg.get("type") == "rtc.offer" else MAX_FRAME
    if size > limit:
        return _error("too_large", f"message over {limit} bytes")
    mid = msg.get("id")
    if mid is not None and (not isinstance(mid, str) or len(mid) > 128):
        return _error("bad_request", "id: a string of at most 128 characters")
    return None


async def _on_text(hub: Hub, s: Session, data: str) -> None:
    size = len(data.encode("utf-8"))
    if size > MAX_OFFER_FRAME:
        s.send(_error("too_large", f"message over {MAX_FRAME} bytes"))
        return
    try:
        msg = json.loads(data)
    except ValueError as exc:
        s.send(_error("bad_json", str(exc)))
        return
    refusal = _refusal(msg, size)
    if refusal is not None:
        s.send(refusal)
        return
    mid = msg.get("id")
    assert s.bucket is not None
    if not s.bucket.take(hub.clock.mono_ns() / 1e9):
        s.send(_error("rate_limited", "too many messages; slow down (this one was not processed)",
                      mid))
        return
    if msg.get("v", 1) != 1:
        s.send(_error("bad_version", "this hub speaks protocol version 1", mid))
        return
    try:
        result = await hub.handle(s, msg)
    except (HubError, CommandError, AuthError) as exc:
        s.send(_error(exc.code, str(exc), mid))
        return
    except EventLogError as exc:
        s.send(_error("log_unavailable", str(exc), mid))
        return
    s.send({"v": 1, "type": "ack", "re": mid, "for": msg.get("type"), **result})


def _transient_session(principal: Principal, remote: str) -> Session:
    return Session(principal, send=lambda frame: None, close=lambda reason: None, remote=remote)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise HubError("bad_json", f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HubError("bad_request", "request body must be a JSON object")
    return body


async def state_handler(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    hub = request.app[HUB_KEY]
    body = hub.snapshot(principal)
    for fn in request.app[STATE_EXTRAS_KEY]:
        body.update(fn())
    return web.json_response(body)


async def events_handler(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if not principal.can("read.all"):
        raise HubError("forbidden", f"role {principal.role} may not read the whole log")
    try:
        after = int(request.query.get("after", "0"))
        limit = min(max(int(request.query.get("limit", "500")), 1), 5000)
    except ValueError as exc:
        raise HubError("bad_request", "after and limit: integers") from exc
    hub = request.app[HUB_KEY]
    events = hub.log.after(after, limit, request.query.get("op"))
    nxt = events[-1].seq if events else after
    return web.json_response({"events": [e.to_dict() for e in events], "next": nxt,
                              "head": {"seq": hub.log.head.seq, "hash": hub.log.head.hash}})


async def commands_handler(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    hub = request.app[HUB_KEY]
    body = await _json_body(request)
    body["type"] = "command.issue"
    result = await hub.handle(_transient_session(principal, _remote(request)), body)
    return web.json_response(result, status=201)


async def rpc_handler(request: web.Request) -> web.Response:
    """POST the same JSON message as on /ws; get the ack fields back (for tools and scripts)."""
    principal = await authenticate(request)
    hub = request.app[HUB_KEY]
    body = await _json_body(request)
    if body.get("type") == "subscribe":
        raise HubError("bad_request", "subscribe needs the WebSocket")
    result = await hub.handle(_transient_session(principal, _remote(request)), body)
    return web.json_response(result)


async def roster_handler(request: web.Request) -> web.Response:
    await authenticate(request)
    hub = request.app[HUB_KEY]
    return web.json_response({"center": hub.roster.center.to_dict(),
                              "departments": hub.roster.to_list(), "groups": hub.roster.groups})


async def metrics_handler(request: web.Request) -> web.Response:
    if not is_loopback(_remote(request)):
        principal = await authenticate(request)
        if not principal.can("read.all"):
            raise HubError("forbidden", "metrics need a commander, evaluator or observer token")
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
    hub = request.app[HUB_KEY]
    return web.json_response({"ok": True, "head": hub.log.head.seq})


def page_handler(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = STATIC / f"{name}.html"
        if not path.is_file():
            raise web.HTTPNotFound(reason=f"page {name} is not installed")
        return web.FileResponse(path)
    return handler


async def font_handler(request: web.Request) -> web.StreamResponse:
    """The CJK font for the pages' @font-face, so Chinese shows on machines without CJK fonts."""
    from hub.fonts import FontNotFoundError, find_web_font

    try:
        path = find_web_font()
    except FontNotFoundError as exc:
        raise web.HTTPNotFound(reason=str(exc)) from exc
    return web.FileResponse(path, headers={"Content-Type": "font/ttf",
                                           "Cache-Control": "max-age=86400"})


def create_app(hub: Hub, *, allowed_origins: set[str] | None = None) -> web.Application:
    """The aiohttp application for a started Hub."""
    app = web.Application(client_max_size=MAX_REQUEST, middlewares=[errors_middleware])
    app[HUB_KEY] = hub
    app[ORIGINS_KEY] = allowed_origins or set()
    app[STATE_EXTRAS_KEY] = []
    app[METRICS_EXTRAS_KEY] = []
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

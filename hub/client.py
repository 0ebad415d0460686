"""HubClient: the Python client of the hub's WebSocket and REST API (tests, bots, the CLI).

Requests carry a message id (unique per client: a random prefix and a counter) and are
answered by an ack or an error frame. If the socket drops, the client reconnects with backoff
and sends every unanswered request again with the same id; the hub answers a repeat with the
first answer (`duplicate: true`) and logs it once, so nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

QUEUE_LIMIT = 1000


class HubClientError(Exception):
    """The hub refused a request (`code` from the error frame) or could not be reached."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status


def ws_url(base: str) -> str:
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "/ws", "", ""))


class HubClient:
    """One participant's connection to the hub."""

    def __init__(self, url: str, token: str, *, reconnect: bool = True,
                 ssl_context: ssl.SSLContext | bool | None = None,
                 request_timeout: float = 10.0, client_id: str | None = None,
                 max_backoff: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.reconnect = reconnect
        self.ssl = ssl_context
        self.request_timeout = request_timeout
        self.max_backoff = max_backoff  # reconnect attempts: 0.2 s, doubling up to this
        self.client_id = client_id or uuid.uuid4().hex[:8]
        # Frames nobody has read yet (commands only when no on_command callback is set);
        # bounded, oldest dropped and counted, so a long-running bot does not grow without end.
        self.commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = 0
        self.welcome: dict[str, Any] | None = None
        self.connected = asyncio.Event()
        self.on_command: Callable[[dict[str, Any]], Any] | None = None
        self.on_frame: Callable[[dict[str, Any]], Any] | None = None
        self.reconnects = 0
        self.clock_offset_ms: float | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        # Message ids: the client's name, a random part (a later run with the same name must
        # not repeat ids the hub has answered: it would get the old answers back), a counter.
        self._id_prefix = f"{self.client_id}-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Open the socket and wait for the hub's welcome (raises HubClientError on 401 etc.)."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            await self._open()
        except BaseException:
            await self._http.close()
            self._http = None
            raise
        self._reader = asyncio.create_task(self._run(), name=f"hubclient-{self.client_id}")
        assert self.welcome is not None
        return self.welcome

    async def _open(self) -> None:
        assert self._http is not None
        params = {"token": self.token}
        if self.welcome is not None:  # a reconnect: the hub ends the old session if it has it
            params["replaces"] = str(self.welcome["session"])
        try:
            ws = await self._http.ws_connect(ws_url(self.url), params=params,
                                             heartbeat=5.0, ssl=self.ssl if self.ssl is not None
                                             else True, max_msg_size=8 * 1024 * 1024)
        except aiohttp.WSServerHandshakeError as exc:
            raise HubClientError(_code_for(exc.status), exc.message, exc.status) from exc
        except aiohttp.ClientConnectorCertificateError as exc:  # reached, but not trusted
            raise HubClientError("bad_certificate", str(exc)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise HubClientError("unreachable", str(exc)) from exc
        first = await ws.receive(timeout=10)
        welcome: Any = None
        if first.type == aiohttp.WSMsgType.TEXT:
            with contextlib.suppress(ValueError):
                welcome = json.loads(first.data)
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            await ws.close()
            got = welcome.get("type") if isinstance(welcome, dict) else first.type
            raise HubClientError("protocol", f"expected a welcome frame first, got {got!r}")
        self.welcome = welcome
        self._ws = ws
        self.connected.set()
        for frame, _ in list(self._pending.values()):  # unanswered before the drop: send again
            await ws.send_str(json.dumps(frame, ensure_ascii=False))
        self._spawn(self._sync_clock())

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self._dispatch(json.loads(msg.data))
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            self.connected.clear()
            if self._closing or not self.reconnect or ws.close_code == 4001:
                self._fail_pending(HubClientError("closed", f"connection closed ({ws.close_code})"))
                return
            while not self._closing:
                await asyncio.sleep(backoff)
                try:
                    await self._open()
                    self.reconnects += 1
                    backoff = 0.2
                    break
                except HubClientError as exc:
                    if exc.status in (401, 403):
                        self._fail_pending(exc)
                        return
                    backoff = min(backoff * 2, self.max_backoff)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        ftype = frame.get("type")
        if ftype in ("ack", "error") and frame.get("re") in self._pending:
            _, fut = self._pending.pop(frame["re"])
            if not fut.done():
                if ftype == "ack":
                    fut.set_result(frame)
                else:
                    fut.set_exception(HubClientError(frame.get("code", "error"),
                                                     frame.get("message", "")))
        elif ftype == "command":
            if self.on_command is None:
                self._enqueue(self.commands, frame)
            else:
                res = self.on_command(frame)
                if asyncio.iscoroutine(res):
                    self._spawn(res)
        elif ftype == "event":
            self._enqueue(self.events, frame["event"])
        if self.on_frame is not None:
            self.on_frame(frame)

    def _enqueue(self, queue: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
        if queue.full():
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait(item)

    def _fail_pending(self, exc: Exception) -> None:
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_pending(HubClientError("closed", "client closed"))
        for task in list(self._background):
            task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def drop(self) -> None:
        """Cut the socket without closing the client (tests of reconnection)."""
        if self._ws is not None:
            await self._ws.close()

    async def abort(self) -> None:
        """Close the client as a network failure would: no closing handshake, the TCP
        connection just ends (the hub logs it as `error`, not as a clean `closed`)."""
        self._closing = True
        sock = self._ws.get_extra_info("socket") if self._ws is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        await self.close()

    async def __aenter__(self) -> HubClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests -----------------------------------------------------------------------------

    async def request(self, type: str, *, msg_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Send one message and wait for its ack (raise HubClientError on an error frame)."""
        mid = msg_id or f"{self._id_prefix}-{next(self._ids)}"
        if {"v", "id", "type"} & fields.keys():
            raise ValueError("v, id and type are set by the client; pass msg_id= for the id")
        frame = {"v": 1, "id": mid, "type": type, **fields}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = (frame, fut)
        if self.connected.is_set() and self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self._ws.send_str(json.dumps(frame, ensure_ascii=False))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.request_timeout)
        except TimeoutError as exc:
            self._pending.pop(mid, None)
            raise HubClientError("timeout", f"no answer to {type} within "
                                            f"{self.request_timeout} s") from exc

    async def issue(self, targets: list[str] | str, text: str, **fields: Any) -> dict[str, Any]:
        if isinstance(targets, str):
            targets = targets.split(",")
        return await self.request("command.issue", targets=targets, text=text, **fields)

    def answer_commands(self, *responses: str) -> None:
        """Answer every command issued to this (department) client with `responses`, in order
        (load generators and tests: a console that always answers)."""
        async def on_command(frame: dict[str, Any]) -> None:
            if frame["cause"] == "issued":
                for response in responses:
                    await self.respond(frame["command"]["command_id"], response)

        self.on_command = on_command

    async def respond(self, command_id: str, response: str, **fields: Any) -> dict[str, Any]:
        return await self.request("command.respond", command_id=command_id, response=response,
                                  client_ts_us=time.time_ns() // 1000, **fields)

    async def checkin(self) -> dict[str, Any]:
        return await self.request("dept.checkin", client_ts_us=time.time_ns() // 1000)

    async def subscribe(self, after: int | None = None) -> dict[str, Any]:
        if after is None:
            return await self.request("subscribe")
        return await self.request("subscribe", after=after)

    async def _sync_clock(self) -> None:
        """NTP-style: a few pings, keep the one with the shortest round trip, report it."""
        best: tuple[float, float] | None = None
        with contextlib.suppress(HubClientError, asyncio.CancelledError):
            for _ in range(3):
                t0 = time.time_ns() / 1e3
                ack = await self.request("ping")
                t1 = time.time_ns() / 1e3
                rtt = (t1 - t0) / 1e3
                offset = ((t0 + t1) / 2 - ack["hub_time_us"]) / 1e3
                if best is None or rtt < best[1]:
                    best = (offset, rtt)
            if best is not None:
                self.clock_offset_ms = best[0]
                await self.request("clock", offset_ms=best[0], rtt_ms=best[1])

    # -- REST ---------------------------------------------------------------------------------

    async def rest(self, method: str, path: str, body: dict[str, Any] | None = None,
                   params: dict[str, str] | None = None) -> Any:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self._http.request(method, self.url + path, json=body, params=params,
                                          headers=headers,
                                          ssl=self.ssl if self.ssl is not None else True) as r:
                data = await r.json(content_type=None)
                if r.status >= 400:
                    err = data.get("error", {}) if isinstance(data, dict) else {}
                    raise HubClientError(err.get("code", "http_error"),
                                         err.get("message", str(r.status)), r.status)
                return data
        except (aiohttp.ClientError, OSError) as exc:
            raise HubClientError("unreachable", str(exc)) from exc


def _code_for(status: int) -> str:
    return {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "http_error")

"""A hostile client's tools: raw WebSocket frames and raw HTTP (aiohttp), no HubClient."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import aiohttp

_ids = itertools.count(1)


class RawSocket:
    """One /ws connection speaking JSON text frames by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: dict[str, Any]) -> None:
        self.ws, self.welcome = ws, welcome
        self.seen: list[dict[str, Any]] = []  # every non-reply frame received, in order

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str, token: str) -> RawSocket:
        ws = await http.ws_connect(url + "/ws", params={"token": token})
        first = await asyncio.wait_for(ws.receive(), 5)
        return cls(ws, json.loads(first.data))

    async def send_text(self, text: str) -> dict[str, Any]:
        """Send one text frame; return the ack or error frame that answers it."""
        await self.ws.send_str(text)
        return await self.reply()

    async def request(self, mtype: str, msg_id: str | None = "auto", **fields: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {"v": 1, "type": mtype, **fields}
        if msg_id is not None:
            frame["id"] = f"raw-{next(_ids)}" if msg_id == "auto" else msg_id
        return await self.send_text(json.dumps(frame, ensure_ascii=False))

    async def reply(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame: dict[str, Any] = json.loads(msg.data)
            if frame.get("type") in ("ack", "error"):
                return frame
            self.seen.append(frame)

    async def events_until(self, kind: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Event payloads received until one of `kind` arrives (raises on timeout)."""
        got = [f["event"] for f in self.seen if f.get("type") == "event"]
        while not any(e["kind"] == kind for e in got):
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            frame = json.loads(msg.data)
            self.seen.append(frame)
            if frame.get("type") == "event":
                got.append(frame["event"])
        return got

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Read until nothing comes for `quiet` seconds; the events received so far."""
        with contextlib.suppress(TimeoutError):
            while True:
                msg = await asyncio.wait_for(self.ws.receive(), quiet)
                self.seen.append(json.loads(msg.data))
        return [f["event"] for f in self.seen if f.get("type") == "event"]

    async def close(self) -> None:
        await self.ws.close()


def outcome(reply: dict[str, Any]) -> str:
    """"ok" for an ack, else the error code."""
    return "ok" if reply["type"] == "ack" else str(reply["code"])


async def rpc(http: aiohttp.ClientSession, url: str, token: str, body: Any) -> tuple[int, Any]:
    """POST /api/rpc with a raw body (bytes/str sent as is, anything else as JSON)."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    async with http.post(url + "/api/rpc", data=data,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"}) as r:
        return r.status, await r.json(content_type=None)

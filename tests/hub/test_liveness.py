"""WebSocket liveness (hub/liveness.py) over a raw aiohttp client that answers pings itself."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiohttp

from hub.liveness import Liveness
from hub.logformat import read_events
from hub.runtime import RunningHub


def test_three_unanswered_pings_and_the_peer_is_gone() -> None:
    live = Liveness()
    assert [live.due() for _ in range(4)] == [True, True, True, False]
    live.heard()
    assert live.due() and live.unanswered == 1


async def test_a_slow_peer_keeps_its_session(running_hub: RunningHub,
                                             token: Callable[..., str]) -> None:
    """A department whose pongs come 2 s late (a loaded phone, a congested link) stays online;
    aiohttp's own heartbeat cut such a peer off after 1 s."""
    online = lambda: "department:water" in running_hub.hub.state.online  # noqa: E731
    pending: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(running_hub.url + "/ws",
                                   params={"token": token("department", "water")},
                                   autoping=False)

        async def late_pong(data: bytes) -> None:
            await asyncio.sleep(2.0)
            await ws.pong(data)

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.PING:
                    pending.append(asyncio.ensure_future(late_pong(msg.data)))

        reader = asyncio.ensure_future(read())
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 6:
            await asyncio.sleep(0.1)
            assert online(), f"cut off after {time.monotonic() - t0:.1f} s"
            pings = len(pending)
        assert pings >= 4  # the hub kept pinging, and took the late answers
        reader.cancel()
        for task in pending:
            task.cancel()
        await ws.close()
    deadline = time.monotonic() + 10
    while online() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    off = [e for e in read_events(running_hub.hub.log.path) if e.kind == "presence.offline"
           and e.dept == "water"]
    assert [e.payload["reason"] for e in off] == ["closed"]  # its own close, not a heartbeat


async def _welcome(ws: aiohttp.ClientWebSocketResponse) -> str:
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            if frame["type"] == "welcome":
                return str(frame["session"])


async def test_a_reconnect_names_the_socket_it_gave_up(running_hub: RunningHub,
                                                       token: Callable[..., str]) -> None:
    """A browser whose pings go unanswered while the network stack still answers the hub's
    (Chromium offline: the hub hears pongs) reconnects naming its old session: the hub ends
    that one first, so the outage is logged, then the new session's presence.online. Only the
    same actor's session can be named that way; a malformed id is a 400."""
    url = running_hub.url + "/ws"
    water = token("department", "water")
    async with aiohttp.ClientSession() as http:
        old = await http.ws_connect(url, params={"token": water})
        old_id = await _welcome(old)
        fire = await http.ws_connect(url, params={"token": token("department", "fire"),
                                                  "replaces": old_id})
        await _welcome(fire)
        new = await http.ws_connect(url, params={"token": water, "replaces": old_id})
        new_id = await _welcome(new)
        async with asyncio.timeout(5):
            while (msg := await old.receive()).type not in (aiohttp.WSMsgType.CLOSE,
                                                            aiohttp.WSMsgType.CLOSED):
                pass
        assert (old.close_code, msg.extra) == (4001, "replaced")
        assert not new.closed and not fire.closed
        bad = await http.get(url, params={"token": water, "replaces": "../../x"})
        assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_request"
        for ws in (new, fire):
            await ws.close()
    water_presence = [(e.kind, e.payload.get("conn"), e.payload.get("reason"))
                      for e in read_events(running_hub.hub.log.path)
                      if e.kind.startswith("presence.") and e.kind != "presence.clock"
                      and e.dept == "water"]
    assert water_presence[:3] == [("presence.online", old_id, None),
                                  ("presence.offline", old_id, "link_lost"),
                                  ("presence.online", new_id, None)]

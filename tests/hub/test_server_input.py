"""Bad input on the wire: every reply is an error frame or a 4xx, and the hub stays up."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.logformat import read_events, verify_file
from hub.runtime import RunningHub
from tests.conftest import Connect

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                               max_size=4),
    max_leaves=12,
)
TYPES = ["command.issue", "command.respond", "command.cancel", "command.escalate",
         "report.field", "dept.checkin", "operation.start", "operation.level", "subscribe",
         "observation.record", "checklist.tick", "ping", "clock", "token.revoke", "nonsense", 42]
frames = st.one_of(
    st.text(max_size=200),  # not JSON at all, mostly
    json_values.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(TYPES)},
                          optional={"id": json_values, "v": json_values,
                                    "command_id": json_values, "response": json_values,
                                    "targets": json_values, "text": json_values,
                                    "level": json_values, "after": json_values,
                                    "deadlines": json_values}).map(json.dumps),
)


async def receive_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        if frame["type"] in ("ack", "error"):
            return frame  # type: ignore[no-any-return]


async def test_ws_fuzz_every_frame_gets_an_answer(running_hub: RunningHub,
                                                  token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        socks = {}
        for role, dept in (("commander", None), ("department", "fire"), ("observer", None)):
            ws = await http.ws_connect(running_hub.url + "/ws",
                                       params={"token": token(role, dept)})
            await ws.receive()  # welcome
            socks[role] = ws
        codes: set[str] = set()
        pending: list[tuple[str, str]] = []

        # Hypothesis draws the frames (sync); they are then sent over the live sockets.
        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(frame=frames, role=st.sampled_from(sorted(socks)))
        def draw(frame: str, role: str) -> None:
            pending.append((frame, role))

        draw()
        # and, whatever was drawn, one frame each that must be refused in a known way
        pending += [("{oops", "observer"), ('{"type": "no.such"}', "department"),
                    ('{"type": "command.issue", "targets": ["fire"], "text": "x"}', "observer")]
        for frame, role in pending:
            await socks[role].send_str(frame)
            reply = await receive_reply(socks[role])
            assert reply["type"] in ("ack", "error")
            if reply["type"] == "error":
                codes.add(str(reply["code"]))
        assert {"bad_json", "unknown_type", "forbidden"} <= codes
        for ws in socks.values():
            assert not ws.closed  # the connection survived all of it
            await ws.close()
    verify_file(running_hub.hub.log.path)


async def test_oversized_binary_and_versioned_frames(running_hub: RunningHub,
                                                     token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(running_hub.url + "/ws",
                                   params={"token": token("department", "fire")})
        await ws.receive()
        await ws.send_str(json.dumps({"type": "report.field", "text": "x" * 70_000}))
        assert (await receive_reply(ws))["code"] == "too_large"
        await ws.send_bytes(b"\x00\x01")
        assert (await receive_reply(ws))["code"] == "bad_frame"
        await ws.send_str(json.dumps({"v": 2, "id": "a", "type": "ping"}))
        reply = await receive_reply(ws)
        assert (reply["code"], reply["re"]) == ("bad_version", "a")
        await ws.send_str(json.dumps({"v": 1, "id": "b", "type": "ping"}))
        assert (await receive_reply(ws))["type"] == "ack"
        await ws.close()


async def test_rest_fuzz_and_limits(running_hub: RunningHub, token: Callable[..., str]) -> None:
    cmd = {"Authorization": f"Bearer {token('commander')}"}
    dept = {"Authorization": f"Bearer {token('department', 'fire')}"}
    async with aiohttp.ClientSession() as http:
        cases = [
            ("POST", "/api/commands", cmd, b"{not json"),
            ("POST", "/api/commands", cmd, b"[1, 2]"),
            ("POST", "/api/commands", cmd, json.dumps({"targets": ["mars"], "text": "x"}).encode()),
            ("POST", "/api/commands", dept, json.dumps({"targets": ["fire"], "text": "x"}).encode()),
            ("POST", "/api/commands", cmd, io.BytesIO(b"x" * (1024 * 1024 + 10))),
            ("POST", "/api/rpc", cmd, json.dumps({"type": "subscribe"}).encode()),
            ("POST", "/api/rpc", cmd, json.dumps({"type": "no.such"}).encode()),
            ("GET", "/api/events?after=abc", cmd, None),
            ("GET", "/api/events", dept, None),
            ("GET", "/api/nothing", cmd, None),
            ("DELETE", "/api/state", cmd, None),
        ]
        for method, path, headers, body in cases:
            async with http.request(method, running_hub.url + path, headers=headers,
                                    data=body) as r:
                assert 400 <= r.status < 500, (method, path, r.status)
                payload = await r.json(content_type=None)
                assert payload["error"]["code"], (path, payload)
        async with http.get(running_hub.url + "/api/state", headers=cmd) as r:
            assert r.status == 200  # still serving


async def test_bad_origin_is_refused(running_hub: RunningHub, token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        try:
            await http.ws_connect(running_hub.url + "/ws", params={"token": token("commander")},
                                  headers={"Origin": "http://evil.example"})
            raise AssertionError("connected from a foreign origin")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 403
        host = running_hub.url.split("//")[1]
        ws = await http.ws_connect(running_hub.url + "/ws", params={"token": token("commander")},
                                   headers={"Origin": f"http://{host}"})
        await ws.close()
    assert any(e.kind == "auth.rejected" and e.payload["reason"] == "bad_origin"
               for e in read_events(running_hub.hub.log.path))


async def test_dead_connection_detected_within_5_s(running_hub: RunningHub,
                                                    token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        # autoping off and never reading: the hub's pings go unanswered, as with a dead peer
        ws = await http.ws_connect(running_hub.url + "/ws",
                                   params={"token": token("department", "water")},
                                   autoping=False)
        t0 = time.monotonic()
        online = lambda: "department:water" in running_hub.hub.state.online  # noqa: E731
        while not online():
            await asyncio.sleep(0.02)
        while online() and time.monotonic() - t0 < 8:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - t0
        await ws.close()
    assert not online() and elapsed <= 5.0
    off = [e for e in read_events(running_hub.hub.log.path)
           if e.kind == "presence.offline" and e.dept == "water"]
    assert off[-1].payload["reason"] == "heartbeat"


async def test_flooding_department_is_limited_others_are_not(running_hub: RunningHub,
                                                             connect: Connect,
                                                             token: Callable[..., str]) -> None:
    police = await connect("department", "police")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(running_hub.url + "/ws",
                                   params={"token": token("department", "fire")})
        await ws.receive()
        for i in range(1500):
            await ws.send_str(json.dumps({"id": f"f{i}", "type": "ping"}))
        limited = 0
        for _ in range(1500):
            reply = await receive_reply(ws)
            limited += reply.get("code") == "rate_limited"
        assert limited > 0
        # the other department is answered promptly while fire is throttled
        t0 = time.monotonic()
        await police.request("ping")
        assert time.monotonic() - t0 < 1.0
        await ws.close()

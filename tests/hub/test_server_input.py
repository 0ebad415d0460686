"""Bad input on the wire: every reply is an error frame or a 4xx, and the hub stays up."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.client import HubClient, HubClientError
from hub.logformat import read_events, verify_file
from hub.runtime import RunningHub, ServeOptions, start_hub
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
    """Within its rate a session is served; over it a few messages are answered
    rate_limited; a session far over it is closed as `flooding` (logged), after bounded work.
    Another department is answered promptly throughout."""
    police = await connect("department", "police")
    fire = token("department", "fire")
    async with aiohttp.ClientSession() as http:
        codes = await _flood(http, running_hub.url, fire, 1500)
        acks, limited = codes.count("ack"), codes.count("rate_limited")
        assert 0 < acks <= 450 and 0 < limited <= 260  # a burst served, a few refused: bounded
        assert acks + limited < 1500  # the rest was never worked through
        # the other department is answered promptly while fire floods
        t0 = time.monotonic()
        await police.request("ping")
        assert time.monotonic() - t0 < 1.0
        # reconnecting with the same token does not bring a fresh burst
        t1 = time.monotonic()
        codes2 = await _flood(http, running_hub.url, fire, 1500)
        assert codes2.count("ack") <= 200 * (time.monotonic() - t1) + 50, codes2.count("ack")
    deadline = time.monotonic() + 10
    while "department:fire" in running_hub.hub.state.online and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    off = [e for e in read_events(running_hub.hub.log.path)
           if e.kind == "presence.offline" and e.dept == "fire"]
    assert off[-1].payload["reason"] == "flooding"


async def _flood(http: aiohttp.ClientSession, url: str, tok: str, n: int) -> list[str]:
    """Send n pings at once on a fresh connection; the ack/error codes until it is closed."""
    ws = await http.ws_connect(url + "/ws", params={"token": tok})
    await ws.receive()
    for i in range(n):
        await ws.send_str(json.dumps({"id": f"g{i}", "type": "ping"}))
    codes: list[str] = []
    while (msg := await asyncio.wait_for(ws.receive(), 10)).type == aiohttp.WSMsgType.TEXT:
        frame = json.loads(msg.data)
        if frame["type"] in ("ack", "error"):
            codes.append("ack" if frame["type"] == "ack" else frame["code"])
    # 4001 `flooding`, or a reset: the hub does not read what the flooder still has in flight
    assert ws.close_code in (4001, 1006)
    return codes



NOT_STRICT_JSON = ['{"type": "ping", "x": NaN}', '{"type": "ping", "x": Infinity}',
                   '{"type": "ping", "x": -Infinity}', '{"type": "ping", "x": 1e999}',
                   '{"type": "clock", "offset_ms": NaN, "rtt_ms": 1}',
                   '{"v": 1, "id": "n", "type": "observation.record", "criterion": "x", '
                   '"rating": "P", "note": [Infinity]}']


def nested(depth: int) -> str:
    return '{"type": "ping", "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


async def test_nan_infinity_and_deep_nesting_are_bad_request(running_hub: RunningHub,
                                                             token: Callable[..., str]) -> None:
    head = running_hub.hub.log.head.seq
    tok = token("evaluator")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(running_hub.url + "/ws", params={"token": tok})
        await ws.receive()
        for text in [*NOT_STRICT_JSON, nested(33), nested(5000), "[" * 100_000]:
            await ws.send_str(text)
            reply = await receive_reply(ws)
            assert reply["code"] == "bad_request", (text[:60], reply)
            async with http.post(running_hub.url + "/api/rpc", data=text,
                                 headers={"Authorization": f"Bearer {tok}"}) as r:
                assert r.status == 400, text[:60]
                assert (await r.json())["error"]["code"] == "bad_request"
        # 32 levels are fine as JSON (the unknown field is what is refused then)
        await ws.send_str(nested(32))
        reply = await receive_reply(ws)
        assert reply["code"] == "bad_request" and "not a field" in str(reply["message"])
        await ws.send_str('{"type": "ping", "id": "ok"}')
        assert (await receive_reply(ws))["type"] == "ack"  # still serving
        await ws.close()
    kinds = {e.kind for e in running_hub.hub.log.after(head, 1000)}
    assert kinds <= {"presence.online", "presence.offline"}


async def test_rpc_is_rate_limited_per_token(running_hub: RunningHub,
                                             token: Callable[..., str]) -> None:
    flooder, other = token("observer"), token("observer")
    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:
        async def ping(tok: str) -> int:
            async with http.post(running_hub.url + "/api/rpc", json={"type": "ping"},
                                 headers={"Authorization": f"Bearer {tok}"}) as r:
                if r.status == 429:
                    assert (await r.json())["error"]["code"] == "rate_limited"
                    assert r.headers["Retry-After"]
                return r.status
        for _ in range(3):
            statuses += await asyncio.gather(*(ping(flooder) for _ in range(150)))
        assert statuses.count(429) > 0 and statuses.count(200) >= 200  # the burst, then refused
        assert await ping(other) == 200  # another token is not affected


JPEG = b"\xff\xd8\xff\xe0" + b"0" * 2000


async def _upload(http: aiohttp.ClientSession, url: str, tok: str) -> tuple[int, str]:
    async with http.post(url + "/api/snapshots", data=JPEG,
                         headers={"Authorization": f"Bearer {tok}",
                                  "Content-Type": "image/jpeg"}) as r:
        body = await r.json()
        return r.status, body["error"]["code"] if r.status >= 400 else "ok"


async def test_uploads_are_rate_limited_per_token(running_hub: RunningHub,
                                                  token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        fire = token("department", "fire")
        got = [await _upload(http, running_hub.url, fire) for _ in range(14)]
        assert got[:10] == [(201, "ok")] * 10  # the burst
        assert (429, "rate_limited") in got[10:]
        assert await _upload(http, running_hub.url, token("department", "police")) == (201, "ok")


async def test_snapshot_quota_per_operation(tmp_path: Path) -> None:
    running = await start_hub(ServeOptions(data=tmp_path / "data", port=0, snapshot_quota=3))
    try:
        now = int(time.time())
        auth = running.hub.authority
        cmdr = auth.issue("commander", now=now)
        async with aiohttp.ClientSession() as http:
            async def rpc_ok(body: dict[str, object]) -> None:
                async with http.post(running.url + "/api/rpc", json=body,
                                     headers={"Authorization": f"Bearer {cmdr}"}) as r:
                    assert r.status == 200, await r.text()
            await rpc_ok({"id": "s1", "type": "operation.start", "title": "quota"})
            toks = [auth.issue("department", now=now, dept=d) for d in ("fire", "police")]
            got = [await _upload(http, running.url, toks[i % 2]) for i in range(5)]
            assert got == [(201, "ok")] * 3 + [(403, "quota_exceeded")] * 2  # per operation
            await rpc_ok({"id": "e1", "type": "operation.end"})
            await rpc_ok({"id": "s2", "type": "operation.start", "title": "next"})
            assert await _upload(http, running.url, toks[0]) == (201, "ok")  # a fresh quota
        shots = [e for e in read_events(running.hub.log.path) if e.kind == "media.snapshot"]
        assert len(shots) == 4
    finally:
        await running.stop()
    # the count survives a restart (folded from the log)
    running = await start_hub(ServeOptions(data=tmp_path / "data", port=0, snapshot_quota=1))
    try:
        assert running.hub.state.uploads[running.hub.state.op_id][0] == 1
    finally:
        await running.stop()


async def test_security_headers_everywhere(running_hub: RunningHub,
                                           token: Callable[..., str]) -> None:
    tok = token("commander")
    async with aiohttp.ClientSession() as http:
        responses = []
        for path in ("/commander", "/department", "/evaluator", "/static/js/ws.js",
                     "/static/console.css", f"/api/state?token={tok}", "/api/state", "/healthz",
                     "/nothing/here", "/fonts/cjk.ttf"):
            async with http.get(running_hub.url + path) as r:
                responses.append((path, r.status, r.headers))
        ws = await http.ws_connect(running_hub.url + "/ws", params={"token": tok})
        assert ws._response is not None
        responses.append(("/ws", ws._response.status, ws._response.headers))
        await ws.close()
    for path, _status, headers in responses:
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "no-referrer", path
    pages = {p: s for p, s, _ in responses}
    assert pages["/commander"] == 200 and pages["/api/state"] == 401 and pages["/ws"] == 101


async def test_the_first_frame_is_welcome(running_hub: RunningHub,
                                          token: Callable[..., str]) -> None:
    """Even for a department, whose own presence.online event fans out to it."""
    async with aiohttp.ClientSession() as http:
        for role, dept in (("department", "fire"), ("commander", None), ("observer", None)):
            for _ in range(3):  # first connection (presence.online) and later ones
                ws = await http.ws_connect(running_hub.url + "/ws",
                                           params={"token": token(role, dept)})
                first = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                assert first["type"] == "welcome", first
                assert first["you"] == {"role": role, "dept": dept or
                                        ("center" if role == "commander" else None), "name": None}
                if role == "department":  # then its own presence.online, nothing from before
                    second = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                    assert second["type"] == "event", second
                    assert second["event"]["kind"] == "presence.online", second
                    assert second["event"]["payload"]["conn"] == first["session"]
                    assert second["event"]["seq"] > first["state"]["head"]["seq"]
                await ws.close()
                key = f"{role}:{dept or 'center'}" if role != "observer" else "observer"
                deadline = time.monotonic() + 10  # the hub has seen it go before it comes back
                while key in running_hub.hub.state.online and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)


async def test_hubclient_refuses_a_hub_whose_first_frame_is_not_welcome() -> None:
    from aiohttp import web

    async def fake(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"v": 1, "type": "event", "event": {"kind": "presence.online"}})
        await asyncio.sleep(1)
        return ws

    app = web.Application()
    app.router.add_get("/ws", fake)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        client = HubClient(f"http://127.0.0.1:{port}", "t", reconnect=False)
        with pytest.raises(HubClientError) as exc:
            await client.connect()
        assert exc.value.code == "protocol" and "welcome" in str(exc.value)
        await client.close()
    finally:
        await runner.cleanup()


async def test_a_handler_bug_is_an_error_frame_and_the_session_goes_on(
        running_hub: RunningHub, token: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from hub.api.messages import MESSAGES

    async def boom(*_: object) -> dict[str, object]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(MESSAGES, "ping", dataclasses.replace(MESSAGES["ping"], handler=boom))
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(running_hub.url + "/ws", params={"token": token("observer")})
        await ws.receive()
        await ws.send_str('{"id": "p1", "type": "ping"}')
        reply = await receive_reply(ws)
        assert (reply["code"], reply["re"]) == ("internal_error", "p1")
        await ws.send_str('{"id": "c1", "type": "clock", "offset_ms": 1, "rtt_ms": 1}')
        assert (await receive_reply(ws))["type"] == "ack"  # the session still works
        await ws.close()

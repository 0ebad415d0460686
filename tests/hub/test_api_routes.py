"""The route table: every registered route is declared, and walked over raw HTTP by every role
(and no token) every route answers as declared; no denial is a 5xx; headers on everything."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from hub.api.routes import ROUTES, find
from hub.auth import PERMISSIONS
from hub.runtime import RunningHub, ServeOptions, start_hub
from hub.server import SECURITY_HEADERS

ROLES = [("commander", None), ("department", "fire"), ("evaluator", None), ("observer", None)]
PARAMS = {"{target}": "fire", "{session}": "0" * 32, "{dept}": "fire",
          "{name}": "fire-1-abcdefabcdef.jpg"}


@pytest.fixture
async def full_hub(tmp_path):  # type: ignore[no-untyped-def]
    """A hub with every extension attached (video, consoles, media, WHIP/WHEP)."""
    running = await start_hub(ServeOptions(data=tmp_path / "data", port=0, record=False,
                                           ice_hosts=["127.0.0.1"]))
    try:
        yield running
    finally:
        await running.stop()


def concrete(path: str) -> str:
    for k, v in PARAMS.items():
        path = path.replace(k, v)
    return "/static/js/ws.js" if path == "/static" else path


def test_every_route_names_a_known_permission() -> None:
    for r in ROUTES:
        assert r.permission is None or r.permission in PERMISSIONS, r


async def test_every_registered_route_is_declared(full_hub: RunningHub) -> None:
    registered: set[tuple[str, str]] = set()
    for route in full_hub.runner.app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else "?"
        registered.add((route.method, canonical))
        if route.method == "*":  # the handler takes several methods: some must be declared
            assert any(r.path == canonical for r in ROUTES), canonical
        else:
            assert find(route.method, canonical) is not None, (route.method, canonical)
    for r in ROUTES:  # and the table declares nothing that is not served
        assert (r.method, r.path) in registered or ("*", r.path) in registered or \
            (r.method == "GET" and ("HEAD", r.path) in registered), r


async def test_every_route_for_every_role(full_hub: RunningHub) -> None:
    auth = full_hub.hub.authority
    now = int(time.time())
    tokens = {role: auth.issue(role, now=now, dept=dept) for role, dept in ROLES}
    async with aiohttp.ClientSession() as http:
        for r in ROUTES:
            url = full_hub.url + concrete(r.path)
            for who in [*tokens, None]:
                headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
                async with http.request(r.method, url, headers=headers) as resp:
                    body = await resp.read()
                    status = resp.status
                    for name in SECURITY_HEADERS:
                        assert name in resp.headers, (r, who, name)
                where = (r.method, r.path, who, status, body[:200])
                assert status < 500 or status == 503, where
                if r.permission is None:
                    assert status not in (401, 403), where
                elif r.loopback_open:  # /metrics: open from loopback, where the test runs
                    assert status == 200, where
                elif who is None:
                    assert status == 401, where
                elif (r.method, r.path, who) == ("POST", "/whip/{target}", "commander"):
                    # the role may publish, but another department's feed only as a takeover
                    assert status == 403 and b"takeover" in body, where
                    async with http.post(url + "?takeover=1", headers=headers) as again:
                        assert again.status not in (401, 403), (where, again.status)
                elif who in {str(x) for x in PERMISSIONS[r.permission]}:
                    assert status not in (401, 403), where
                else:
                    assert status == 403, where
                    assert json.loads(body)["error"]["code"] == "forbidden", where


async def test_no_request_is_answered_500(full_hub: RunningHub) -> None:
    """Junk bodies at every route and method, by every role: 4xx with a code, never 500."""
    auth = full_hub.hub.authority
    now = int(time.time())
    tokens = [auth.issue(role, now=now, dept=dept) for role, dept in ROLES] + [""]
    bodies = [None, b"{}", b"[1]", b"null", b'{"type":"command_issue"}', b"\xff\xfe",
              b'{"a":NaN}', b"[" * 40 + b"]" * 40, b'{"dept": ["fire"], "url": 5}']
    async with aiohttp.ClientSession() as http:
        for path in sorted({concrete(r.path) for r in ROUTES}):
            for method in ("GET", "POST", "DELETE", "PUT", "PATCH"):
                for tok in tokens:
                    for body in bodies:
                        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
                        async with http.request(method, full_hub.url + path, headers=headers,
                                                data=body) as resp:
                            data = await resp.read()
                            where = (method, path, tok[:12], body, resp.status, data[:160])
                            assert resp.status < 500 or resp.status == 503, where
                            if resp.status >= 400 and resp.content_type == "application/json":
                                assert json.loads(data)["error"]["code"], where


async def test_an_undeclared_route_is_refused_at_run_time(running_hub: RunningHub) -> None:
    """Deny by default: a handler registered without a row in the table never runs."""
    from aiohttp import web

    from hub.server import create_app

    ran: list[bool] = []

    async def secret(request: web.Request) -> web.Response:
        ran.append(True)
        return web.json_response({"secret": 42})

    app = create_app(running_hub.hub)
    app.router.add_get("/api/secret", secret)
    app.router.add_post("/api/state", secret)  # an undeclared method on a declared path
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    tok = running_hub.hub.authority.issue("commander", now=int(time.time()))
    try:
        async with aiohttp.ClientSession() as http:
            for method, path, status in (("GET", "/api/secret", 404), ("POST", "/api/state", 405)):
                async with http.request(method, f"http://127.0.0.1:{port}{path}",
                                        headers={"Authorization": f"Bearer {tok}"}) as r:
                    assert r.status == status and "42" not in await r.text()
    finally:
        await runner.cleanup()
    assert ran == []

"""Tokens and the authorization matrix, over the real WebSocket and REST API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import jwt
import pytest

from hub.auth import AuthError, TokenAuthority
from hub.client import HubClient, HubClientError
from hub.logformat import read_events
from hub.runtime import RunningHub
from tests.conftest import Connect


def bad_tokens(hub_authority: TokenAuthority) -> dict[str, str]:
    now = int(time.time())
    good = {"role": "commander", "dept": "center", "op": "*", "jti": "a" * 32}
    other = TokenAuthority(b"y" * 64)
    return {
        "expired": hub_authority.issue("commander", now=now - 7200, ttl_s=60),
        "not_yet_valid": jwt.encode({**good, "nbf": now + 600, "exp": now + 1200},
                                    hub_authority._secret, algorithm="HS256"),
        "bad_signature": other.issue("commander", now=now),
        "alg_none": jwt.encode({**good, "nbf": now, "exp": now + 60}, None, algorithm="none"),
        "wrong_operation": hub_authority.issue("commander", now=now, operation="drill-other"),
        "garbage": "not-a-token",
        "missing": "",
    }


async def test_bad_tokens_get_401_and_are_logged(running_hub: RunningHub) -> None:
    tokens = bad_tokens(running_hub.hub.authority)
    async with aiohttp.ClientSession() as http:
        for name, tok in tokens.items():
            async with http.get(running_hub.url + "/api/state",
                                headers={"Authorization": f"Bearer {tok}"}) as r:
                assert r.status == 401, name
                body = await r.json()
                assert body["error"]["code"] in {"expired", "not_yet_valid", "bad_signature",
                                                 "bad_token", "wrong_operation", "no_token"}, name
            with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                await http.ws_connect(running_hub.url + "/ws", params={"token": tok})
            assert exc.value.status == 401, name
    await asyncio.sleep(0.1)
    rejected = [e for e in read_events(running_hub.hub.log.path) if e.kind == "auth.rejected"]
    reasons = {e.payload["reason"] for e in rejected}
    assert {"expired", "not_yet_valid", "bad_signature", "bad_token", "wrong_operation",
            "no_token"} <= reasons


async def test_rejection_flood_is_rate_limited_and_counted(running_hub: RunningHub) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            async with http.get(running_hub.url + "/api/state",
                                headers={"Authorization": "Bearer nope"}) as r:
                assert r.status == 401
        await asyncio.sleep(1.2)  # let the bucket refill so the summary is written
        async with http.get(running_hub.url + "/api/state") as r:
            assert r.status == 401
    events = read_events(running_hub.hub.log.path)
    logged = sum(1 for e in events if e.kind == "auth.rejected")
    suppressed = sum(e.payload["count"] for e in events if e.kind == "auth.rejected_suppressed")
    assert logged < 60  # the disk is not filled one row per attempt
    assert logged + suppressed == 301  # ... yet every attempt is accounted for


# What each role may send: tests/hub/test_api_table.py walks the whole table.


async def test_revoked_token_is_cut_off_within_5_s(running_hub: RunningHub,
                                                   token: Callable[..., str]) -> None:
    tok = token("department", "fire")
    client = HubClient(running_hub.url, tok, reconnect=False)
    await client.connect()
    jti = jwt.decode(tok, options={"verify_signature": False})["jti"]
    running_hub.hub.revocations.add(jti)  # as `commandhub token revoke` does, from outside
    t0 = time.monotonic()
    while client.connected.is_set() and time.monotonic() - t0 < 6:
        await asyncio.sleep(0.05)
    assert not client.connected.is_set()
    assert time.monotonic() - t0 < 5
    await client.close()
    with pytest.raises(HubClientError) as exc:
        await HubClient(running_hub.url, tok, reconnect=False).connect()
    assert exc.value.status == 401
    off = [e for e in read_events(running_hub.hub.log.path)
           if e.kind == "presence.offline" and e.dept == "fire"]
    assert off and off[-1].payload["reason"] == "revoked"


async def test_operation_scoped_token(running_hub: RunningHub, connect: Connect,
                                      token: Callable[..., str]) -> None:
    cmdr = await connect("commander")
    op = (await cmdr.request("operation.start", title="t", kind="drill", operation_id="flood-1"))["operation"]
    assert op == "drill-flood-1"
    ok = HubClient(running_hub.url, token("department", "fire", operation=op), reconnect=False)
    await ok.connect()
    await cmdr.request("operation.end")
    # the operation is over: its tokens no longer open anything
    t0 = time.monotonic()
    while ok.connected.is_set() and time.monotonic() - t0 < 5:
        await asyncio.sleep(0.05)
    assert not ok.connected.is_set()
    await ok.close()
    with pytest.raises(HubClientError) as exc:
        await HubClient(running_hub.url, token("department", "fire", operation=op),
                        reconnect=False).connect()
    assert exc.value.status == 401


async def test_secret_file_is_private(running_hub: RunningHub) -> None:
    mode = (running_hub.hub.data_dir / "secret.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_name_claim_is_checked() -> None:
    auth = TokenAuthority(b"s" * 64)
    now = int(time.time())
    p = auth.verify(auth.issue("evaluator", now=now, name="  张三 "), now=now)
    assert p.name == "张三"
    assert auth.verify(auth.issue("observer", now=now), now=now).name is None
    for bad in ("", "   ", "x" * 65, "a\nb", "\x00"):
        with pytest.raises(AuthError):
            auth.issue("evaluator", now=now, name=bad)
    forged = jwt.encode({"role": "evaluator", "op": "*", "jti": "a" * 32, "nbf": now,
                         "exp": now + 60, "name": "x" * 1000}, b"s" * 64, algorithm="HS256")
    with pytest.raises(AuthError) as exc:
        auth.verify(forged, now=now)
    assert exc.value.code == "bad_token"

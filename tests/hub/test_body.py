"""Request bodies over a raw socket: sent in pieces, too large, short; stored and hashed whole."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from aiortc import RTCPeerConnection

from hub import body
from hub.logformat import read_events
from hub.runtime import RunningHub
from hub.sfu.ice import IceConfig
from media.source import DepartmentVideo
from tests.hub.rawhttp import raw_http

MiB = 1024 * 1024


def port_of(running_hub: RunningHub) -> int:
    port = urlsplit(running_hub.url).port
    assert port is not None
    return port


def jpeg(size: int) -> bytes:
    """JPEG magic then random bytes: the hub checks the magic, and a hash shows any loss."""
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 4)


def snapshot_events(running_hub: RunningHub) -> list[dict[str, object]]:
    return [dict(e.payload) for e in read_events(running_hub.hub.log.path)
            if e.kind == "media.snapshot" and e.payload.get("source") == "browser"]


async def test_a_snapshot_in_two_pieces_is_stored_whole(running_hub: RunningHub,
                                                        token: Callable[..., str]) -> None:
    data = jpeg(MiB)  # exactly the limit
    r = await raw_http(port_of(running_hub), "POST", "/api/snapshots", headers={
        "Authorization": f"Bearer {token('department', 'fire')}", "Content-Type": "image/jpeg"},
        pieces=(data[:300_000], data[300_000:]), pause_s=0.5)
    assert r.status == 201, r.body
    sha = hashlib.sha256(data).hexdigest()
    got = r.json()
    assert got["bytes"] == MiB and got["sha256"] == sha
    stored = (running_hub.hub.data_dir / got["path"]).read_bytes()
    assert stored == data
    [logged] = snapshot_events(running_hub)
    assert logged["sha256"] == sha and logged["bytes"] == MiB


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_an_oversized_snapshot_is_413(running_hub: RunningHub, token: Callable[..., str],
                                            how: str) -> None:
    data = jpeg(MiB + 1)
    headers = {"Authorization": f"Bearer {token('department', 'fire')}",
               "Content-Type": "image/jpeg"}
    if how == "declared":  # Content-Length says so: refused before a byte of body is sent
        r = await raw_http(port_of(running_hub), "POST", "/api/snapshots", headers=headers,
                           content_length=len(data))
    else:
        r = await raw_http(port_of(running_hub), "POST", "/api/snapshots", headers=headers,
                           pieces=(data[:MiB // 2], data[MiB // 2:]), chunked=True,
                           content_length=None)
    assert r.status == 413 and r.json()["error"]["code"] == "too_large", r.body
    assert not snapshot_events(running_hub)
    assert not list((running_hub.hub.data_dir / "snapshots").glob("*"))


async def test_a_short_snapshot_is_400_and_nothing_is_stored(
        running_hub: RunningHub, token: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body, "IDLE_TIMEOUT_S", 0.5)
    data = jpeg(1000)
    r = await raw_http(port_of(running_hub), "POST", "/api/snapshots", headers={
        "Authorization": f"Bearer {token('department', 'fire')}", "Content-Type": "image/jpeg"},
        pieces=(data[:500],), content_length=1000)  # promises 1000, sends 500, waits
    assert r.status == 400 and r.json()["error"]["code"] == "short_body", r.body
    assert "Content-Length is 1000 but only 500 bytes arrived" in r.json()["error"]["message"]
    assert not snapshot_events(running_hub)
    # a client that hangs up mid-body gets nothing stored either, and the hub carries on
    _, writer = await asyncio.open_connection("127.0.0.1", port_of(running_hub))
    writer.write(b"POST /api/snapshots HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                 b"Authorization: Bearer " + token("department", "fire").encode() +
                 b"\r\nContent-Length: 1000\r\n\r\n" + data[:500])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    r2 = await raw_http(port_of(running_hub), "POST", "/api/snapshots", headers={
        "Authorization": f"Bearer {token('department', 'fire')}", "Content-Type": "image/jpeg"},
        pieces=(data,))
    assert r2.status == 201
    assert [e["bytes"] for e in snapshot_events(running_hub)] == [1000]
    assert len(list((running_hub.hub.data_dir / "snapshots").glob("*"))) == 1


async def offer_sdp() -> str:
    pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    pc.addTransceiver(DepartmentVideo(3, "fire"), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_a_whip_offer_in_two_pieces_is_answered(running_hub: RunningHub,
                                                      token: Callable[..., str]) -> None:
    sdp = (await offer_sdp()).encode()
    auth = {"Authorization": f"Bearer {token('department', 'fire')}"}
    r = await raw_http(port_of(running_hub), "POST", "/whip/fire",
                       headers={**auth, "Content-Type": "application/sdp"},
                       pieces=(sdp[:len(sdp) // 2], sdp[len(sdp) // 2:]), pause_s=0.5)
    assert r.status == 201, r.body
    assert r.body.startswith(b"v=0") and r.headers["location"].startswith("/whip/fire/")
    d = await raw_http(port_of(running_hub), "DELETE", r.headers["location"], headers=auth)
    assert d.status == 200


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_2mb_whip_body_is_413_not_422(running_hub: RunningHub, token: Callable[..., str],
                                              chunked: bool) -> None:
    sdp = (await offer_sdp()).encode()
    big = sdp + b"a=x-padding:" + b"p" * (2_100_000 - len(sdp)) + b"\r\n"
    r = await raw_http(port_of(running_hub), "POST", "/whip/fire", headers={
        "Authorization": f"Bearer {token('department', 'fire')}",
        "Content-Type": "application/sdp"},
        pieces=(big[:1_000_000], big[1_000_000:]), chunked=chunked,
        content_length=None if chunked else -1)
    assert r.status == 413, (r.status, r.body[:300])
    assert r.json()["error"]["code"] == "too_large"

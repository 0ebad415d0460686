"""ICE host addresses: usable ones by default (loopback included), and an answer without any
candidate refused at once with a clear error (a raw WebSocket client, not the hub's own)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection

from hub.runtime import ServeOptions, start_hub
from hub.sfu.ice import IceConfig, apply_host_addresses, default_host_addresses, describe_hosts


def adapters(*ips: Any) -> list[Any]:
    return [SimpleNamespace(ips=[SimpleNamespace(ip=ip) for ip in ips])]


def test_loopback_only_host_offers_loopback() -> None:
    assert default_host_addresses(adapters("127.0.0.1", ("::1", 0, 0))) == ("127.0.0.1",)


def test_multi_homed_host_offers_every_usable_address_then_loopback() -> None:
    got = default_host_addresses(adapters(
        "127.0.0.1", "10.1.2.3", "169.254.9.9", "192.168.7.1", "10.1.2.3",
        ("fe80::1", 0, 2), ("2001:db8::5", 0, 0), ("::1", 0, 0)))
    assert got == ("10.1.2.3", "192.168.7.1", "2001:db8::5", "127.0.0.1")


def test_applied_hosts_are_described() -> None:
    try:
        assert apply_host_addresses(IceConfig(hosts=("127.0.0.1",))) == ("127.0.0.1",)
        assert describe_hosts() == "127.0.0.1 (from --ice-host)"
        auto = apply_host_addresses(IceConfig())
        assert auto[-1] == "127.0.0.1" and "automatic" in describe_hosts()
    finally:
        apply_host_addresses(IceConfig.loopback())


async def browser_like_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    return pc, pc.localDescription.sdp


async def test_an_answer_without_candidates_is_an_error_frame_not_a_20s_wait(tmp_path: Path) -> None:
    # an address this machine does not have: nothing can be gathered
    running = await start_hub(ServeOptions(data=tmp_path / "d", port=0, ice_hosts=["198.51.100.7"]))
    pc, sdp = await browser_like_offer()
    try:
        token = running.hub.authority.issue("observer", now=int(time.time()))
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(f"{running.url}/ws?token={token}") as ws:
            welcome = json.loads((await ws.receive(timeout=5)).data)
            assert welcome["type"] == "welcome"
            t0 = time.monotonic()
            await ws.send_str(json.dumps({"v": 1, "id": "o1", "type": "rtc.offer", "sdp": sdp}))
            while True:
                frame = json.loads((await ws.receive(timeout=10)).data)
                if frame.get("re") == "o1":
                    break
            assert time.monotonic() - t0 < 8
            assert frame["type"] == "error" and frame["code"] == "no_ice_candidates", frame
            assert "198.51.100.7" in frame["message"] and "--ice-host" in frame["message"]
            # the state API says which addresses the hub offers
            async with http.get(f"{running.url}/api/state?token={token}") as r:
                ice = (await r.json())["ice"]
            assert ice == {"hosts": ["198.51.100.7"], "automatic": False}
            # WHEP (raw HTTP, as any WHEP player) gets the same answer, as a 503
            async with http.post(f"{running.url}/whep/wall", data=sdp, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}) as r:
                body = await r.json()
                assert (r.status, body["error"]["code"]) == (503, "no_ice_candidates"), body
                assert "198.51.100.7" in body["error"]["message"]
    finally:
        await pc.close()
        await running.stop()
        apply_host_addresses(IceConfig.loopback())

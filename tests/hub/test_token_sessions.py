"""Sessions follow their token: revocation (CLI or request) and expiry end WS, WHIP and WHEP
sessions within 2 s (RTP stops at a real WebRTC viewer); only the publishing token or the
commander may DELETE a WHIP session; a commander publishes a department only by taking over."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hub.logformat import Event, read_events
from hub.runtime import RunningHub, ServeOptions, start_hub
from hub.sfu.ice import IceConfig
from media.source import DepartmentVideo

SDP = "application/sdp"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "media.yaml").write_text(yaml.safe_dump({"wall": {"enabled": False},
                                                     "health": {"enabled": False}}))
    running = await start_hub(ServeOptions(data=data, port=0, ice_hosts=["127.0.0.1"],
                                           record=False))
    try:
        yield running
    finally:
        await running.stop()


def issue(hub: RunningHub, role: str, dept: str | None = None, ttl_s: int = 3600) -> str:
    return hub.hub.authority.issue(role, now=int(time.time()), dept=dept, ttl_s=ttl_s)  # type: ignore[arg-type]


class Peer:
    """A real aiortc peer: a WHIP publisher of a department's test picture, or a WHEP viewer."""

    def __init__(self, publish: str | None = None) -> None:
        self.pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
        self.location = ""
        self._tasks: list[asyncio.Task[None]] = []
        if publish is not None:
            self.pc.addTransceiver(DepartmentVideo(3, publish), direction="sendonly")
        else:
            self.pc.addTransceiver("video", direction="recvonly")
            self.pc.on("track", lambda t: self._tasks.append(asyncio.ensure_future(self._drain(t))))

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()

    async def post(self, http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        async with http.post(url, data=self.pc.localDescription.sdp, headers={
                "Authorization": f"Bearer {token}", "Content-Type": SDP}) as r:
            body = await r.text()
            if r.status != 201:
                return r.status, body
            self.location = r.headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        return 201, body

    async def packets(self) -> int:
        """RTP packets received so far (inbound-rtp stats)."""
        try:
            report = await self.pc.getStats()
        except Exception:  # a closed transport has no stats: nothing more arrives either
            return -1
        return sum(getattr(s, "packetsReceived", 0) for s in report.values()
                   if getattr(s, "type", "") == "inbound-rtp")

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.pc.close()


async def wait_for(cond: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def rtp_flowing(viewer: Peer) -> None:
    first = -1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        n = await viewer.packets()
        if first < 0 and n > 0:
            first = n
        if first > 0 and n > first + 20:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no RTP at the viewer")


async def last_rtp_after(viewer: Peer, t0: float, window: float = 3.5) -> float:
    """Sample the viewer's packet count for `window` s after `t0`; seconds from `t0` to the
    last sample that saw new packets (0 if none did)."""
    last, prev = t0, await viewer.packets()
    while time.monotonic() < t0 + window:
        await asyncio.sleep(0.05)
        n = await viewer.packets()
        if n > prev:
            last = time.monotonic()
        prev = max(prev, n)
    return last - t0


async def closed_at(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> float | None:
    """Read (and so answer the hub's heartbeat pings) until the hub closes the WebSocket;
    the monotonic time it did, or None if it stayed open for `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        except aiohttp.ClientConnectionResetError:
            return time.monotonic()  # closed while answering a ping
        except TimeoutError:
            return None
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED):
            return time.monotonic()
    return None


def events(hub: RunningHub, kind: str) -> list[Event]:
    return [e for e in read_events(hub.hub.log.path) if e.kind == kind]


def jti_of(hub: RunningHub, token: str) -> str:
    return hub.hub.authority.verify(token, now=int(time.time())).jti


async def test_cli_revocation_stops_a_whep_viewer_and_its_websocket(hub: RunningHub) -> None:
    publisher, viewer = Peer("fire"), Peer()
    viewer_token = issue(hub, "observer")
    async with aiohttp.ClientSession() as http:
        try:
            fire = issue(hub, "department", "fire")
            assert (await publisher.post(http, hub.url + "/whip/fire", fire))[0] == 201
            assert (await viewer.post(http, hub.url + "/whep/fire", viewer_token))[0] == 201
            ws = await http.ws_connect(hub.url + "/ws", headers={
                "Authorization": f"Bearer {viewer_token}"})
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"
            ws_closed = asyncio.ensure_future(closed_at(ws, 120))
            await rtp_flowing(viewer)
            assert not ws_closed.done()  # open (and answering pings) until the revocation
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub", "token", "revoke", "--data", str(hub.hub.data_dir),
                viewer_token, stdout=asyncio.subprocess.PIPE)
            await proc.communicate()
            t0 = time.monotonic()
            assert proc.returncode == 0
            assert await last_rtp_after(viewer, t0) <= 2.0  # RTP stops within 2 s
            when = await asyncio.wait_for(ws_closed, 5)
            assert when is not None and when - t0 <= 2.0
            await ws.close()
        finally:
            await publisher.close()
            await viewer.close()
    [revoked] = events(hub, "token.revoked")
    assert revoked.payload["by"] == "cli" and revoked.role == "hub"
    ended = [e.payload for e in events(hub, "video.session_ended")]
    assert {"protocol": "whep", "reason": "revoked", "target": "fire",
            "jti": revoked.payload["jti"]}.items() <= ended[0].items()
    offline = [e.payload for e in events(hub, "presence.offline") if e.role == "observer"]
    assert offline and offline[-1]["reason"] == "revoked"


async def test_revoke_request_ends_the_whip_publisher(hub: RunningHub) -> None:
    publisher, viewer = Peer("fire"), Peer()
    fire_token = issue(hub, "department", "fire")
    commander = issue(hub, "commander")
    async with aiohttp.ClientSession() as http:
        try:
            assert (await publisher.post(http, hub.url + "/whip/fire", fire_token))[0] == 201
            assert (await viewer.post(http, hub.url + "/whep/fire", commander))[0] == 201
            await rtp_flowing(viewer)
            async with http.post(hub.url + "/api/rpc", headers={
                    "Authorization": f"Bearer {commander}"},
                    json={"type": "token.revoke", "id": "r1",
                          "jti": jti_of(hub, fire_token)}) as r:
                assert r.status == 200, await r.text()
            t0 = time.monotonic()
            assert await last_rtp_after(viewer, t0) <= 2.0
            # the revoked token cannot publish again either
            again = Peer("fire")
            assert (await again.post(http, hub.url + "/whip/fire", fire_token))[0] == 401
            await again.close()
        finally:
            await publisher.close()
            await viewer.close()
    [revoked] = events(hub, "token.revoked")
    assert revoked.payload["by"] == "request" and revoked.role == "commander"
    ended = [e.payload for e in events(hub, "video.session_ended") if e.payload["protocol"] == "whip"]
    assert ended and ended[0]["reason"] == "revoked" and ended[0]["target"] == "fire"


async def test_expiry_ends_a_whip_session_within_2s(hub: RunningHub) -> None:
    publisher, viewer = Peer("floodctrl"), Peer()
    short = issue(hub, "department", "floodctrl", ttl_s=4)
    exp = hub.hub.authority.verify(short, now=int(time.time())).exp
    async with aiohttp.ClientSession() as http:
        try:
            assert (await publisher.post(http, hub.url + "/whip/floodctrl", short))[0] == 201
            assert (await viewer.post(http, hub.url + "/whep/floodctrl", issue(hub, "commander")))[0] == 201
            await rtp_flowing(viewer)
            while time.time() < exp:
                await asyncio.sleep(0.05)
            t0 = time.monotonic()  # the moment the token expired
            assert await last_rtp_after(viewer, t0) <= 2.0
        finally:
            await publisher.close()
            await viewer.close()
    ended = [e.payload for e in events(hub, "video.session_ended") if e.payload["protocol"] == "whip"]
    assert ended and ended[0]["reason"] == "expired"


async def test_only_the_publishing_token_or_the_commander_may_delete(hub: RunningHub) -> None:
    publisher, viewer = Peer("fire"), Peer()
    fire = issue(hub, "department", "fire")
    async with aiohttp.ClientSession() as http:
        try:
            assert (await publisher.post(http, hub.url + "/whip/fire", fire))[0] == 201
            assert (await viewer.post(http, hub.url + "/whep/fire", issue(hub, "evaluator")))[0] == 201
            await rtp_flowing(viewer)
            location = hub.url + publisher.location
            for who in (issue(hub, "observer"), issue(hub, "evaluator"),
                        issue(hub, "department", "police"),
                        issue(hub, "department", "fire")):  # fire, but not the token that publishes
                async with http.delete(location, headers={"Authorization": f"Bearer {who}"}) as r:
                    assert r.status == 403, await r.text()
                    assert (await r.json())["error"]["code"] == "forbidden"
            await rtp_flowing(viewer)  # the camera was not cut
            assert not events(hub, "video.session_ended")
            async with http.delete(location, headers={
                    "Authorization": f"Bearer {issue(hub, 'commander')}"}) as r:
                assert r.status == 200
            [ended] = [e for e in events(hub, "video.session_ended") if e.payload["protocol"] == "whip"]
            assert ended.role == "commander" and ended.payload["by_commander"] is True
            assert ended.payload["reason"] == "deleted" and ended.payload["by"] == "commander:center"
            # the publishing token ends its own session (logged as the department)
            second = Peer("fire")
            assert (await second.post(http, hub.url + "/whip/fire", fire))[0] == 201
            async with http.delete(hub.url + second.location,
                                   headers={"Authorization": f"Bearer {fire}"}) as r:
                assert r.status == 200
            await second.close()
        finally:
            await publisher.close()
            await viewer.close()
    own = [e for e in events(hub, "video.session_ended") if e.payload["protocol"] == "whip"][-1]
    assert own.role == "department" and own.dept == "fire" and own.payload["by_commander"] is False


async def test_a_commander_publishes_a_department_only_by_taking_over(hub: RunningHub) -> None:
    commander = issue(hub, "commander")
    async with aiohttp.ClientSession() as http:
        peers = []
        try:
            for url, token, want in (("/whip/fire", commander, 403),
                                     ("/whip/fire", issue(hub, "observer"), 403),
                                     ("/whip/fire", issue(hub, "evaluator"), 403),
                                     ("/whip/fire", issue(hub, "department", "police"), 403),
                                     ("/whip/center", commander, 201),
                                     ("/whip/fire?takeover=1", commander, 201)):
                peer = Peer("fire")
                peers.append(peer)
                status, body = await peer.post(http, hub.url + url, token)
                assert status == want, (url, status, body)
                if url == "/whip/fire" and token == commander:
                    assert "takeover=1" in body
        finally:
            for p in peers:
                await p.close()
    [takeover] = events(hub, "video.takeover")
    assert takeover.payload["dept"] == "fire" and takeover.payload["by"] == "commander:center"
    assert takeover.role == "commander"
    started = [e.payload for e in events(hub, "video.session_started")]
    assert [(s["target"], s["role"]) for s in started] == [("center", "commander"),
                                                           ("fire", "commander")]

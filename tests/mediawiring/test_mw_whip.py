"""WHIP publish and WHEP pull (department and wall) over HTTP with bearer tokens; RFC 9725 errors."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hub.media_wiring import MEDIA_KEY
from hub.sfu.ice import IceConfig
from media.source import DepartmentVideo
from media.stamp import read_frame_stamp
from tests.mediawiring.conftest import IDS, NUMBERS, wait_for

SDP = "application/sdp"


class Viewer:
    """A WHEP-style receiving peer: counts frames and reads their stamps."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.frames, self.depts, self.sizes = 0, set[str](), set[tuple[int, int]]()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._drain(track))))

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame: Any = await track.recv()
                self.frames += 1
                self.sizes.add((frame.width, frame.height))
                with contextlib.suppress(Exception):
                    self.depts.add(NUMBERS.get(read_frame_stamp(frame).dept, "?"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.pc.close()


async def post_offer(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection, token: str) -> str:
    """Offer, POST it, apply the answer; returns the session URL (Location)."""
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    async with http.post(url, data=pc.localDescription.sdp, headers={
            "Authorization": f"Bearer {token}", "Content-Type": SDP}) as r:
        assert r.status == 201, await r.text()
        assert r.content_type == SDP
        location = r.headers["Location"]
        answer = await r.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return location


async def test_whip_publish_and_whep_pull(media_hub: Any) -> None:
    h = await media_hub(record=False)
    _, cmd_media = await h.join("center", publish=False, slots=4)
    publisher = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    publisher.addTransceiver(DepartmentVideo(IDS.index("police") + 1, "police"), direction="sendonly")
    dept_viewer, wall_viewer = Viewer(), Viewer()
    async with aiohttp.ClientSession() as http:
        try:
            token = h.token("department", "police")
            location = await post_offer(http, f"{h.url}/whip/police", publisher, token)
            assert location.startswith("/whip/police/")
            # the commander's slot carries the WHIP feed (read from the pixel stamp)
            await wait_for(lambda: "police" in cmd_media.seen("video").values(), 15)
            await post_offer(http, f"{h.url}/whep/police", dept_viewer.pc, h.token("commander"))
            await post_offer(http, f"{h.url}/whep/wall", wall_viewer.pc, h.token("evaluator"))
            await wait_for(lambda: "police" in dept_viewer.depts, 15)
            await wait_for(lambda: wall_viewer.frames >= 5, 15)
            assert (1280, 720) in wall_viewer.sizes and (320, 240) in dept_viewer.sizes
            # DELETE ends the WHIP session: the publisher leaves the video hub (deliberately)
            auth = {"Authorization": f"Bearer {token}"}  # only the publishing token may end it
            async with http.patch(h.url + location, headers=auth) as r:
                assert r.status == 405  # no trickle ICE
            async with http.delete(h.url + location, headers=auth) as r:
                assert r.status == 200
            await wait_for(lambda: "police" not in cmd_media.seen("video", fresh=0.5).values(), 10)
            async with http.delete(h.url + location, headers=auth) as r:
                assert r.status == 404
        finally:
            await publisher.close()
            await dept_viewer.close()
            await wall_viewer.close()
    assert not [e for e in h.events() if e.kind == "video.lost" and e.payload.get("dept") == "police"]


async def _offer(direction: str, codec: str | None = None) -> str:
    pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    try:
        transceiver = pc.addTransceiver("video", direction=direction)
        if codec is not None:
            caps = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in caps if c.mimeType == codec])
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        return pc.localDescription.sdp
    finally:
        await pc.close()


async def test_whep_viewer_without_the_feeds_codec_is_refused(media_hub: Any) -> None:
    h = await media_hub(record=False)
    publisher = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    transceiver = publisher.addTransceiver(DepartmentVideo(IDS.index("water") + 1, "water"),
                                           direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in caps if c.mimeType == "video/H264"])
    async with aiohttp.ClientSession() as http:
        try:
            await post_offer(http, f"{h.url}/whip/water", publisher, h.token("department", "water"))
            await wait_for(lambda: "media.published" in h.kinds("water"), 15)
            headers = {"Authorization": f"Bearer {h.token('commander')}", "Content-Type": SDP}
            async with http.post(f"{h.url}/whep/water", data=await _offer("recvonly", "video/VP8"),
                                 headers=headers) as r:
                assert r.status == 422
                assert (await r.json())["error"]["code"] == "no_common_codec"
            async with http.post(f"{h.url}/whep/water", data=await _offer("recvonly"),
                                 headers=headers) as r:
                assert r.status == 201  # VP8 and H264 offered: H264 taken
                assert "H264/90000" in await r.text()
        finally:
            await publisher.close()


async def test_whip_errors_follow_the_rfc(media_hub: Any) -> None:
    h = await media_hub(record=False)
    pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    pc.addTransceiver(DepartmentVideo(3, "x"), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    offer = pc.localDescription.sdp
    good = h.token("department", "fire")

    async def status(method: str, path: str, token: str | None = good, ctype: str = SDP,
                     body: str = offer) -> tuple[int, dict[str, str]]:
        headers = {"Content-Type": ctype} | ({"Authorization": f"Bearer {token}"} if token else {})
        async with http.request(method, h.url + path, data=body, headers=headers) as r:
            return r.status, dict(r.headers)

    async with aiohttp.ClientSession() as http:
        try:
            for path in ("/whip/fire", "/whep/fire"):  # RFC 6750: 401 with a Bearer challenge
                code, headers = await status("POST", path, token="not-a-token")
                assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer ")
                assert 'error="invalid_token"' in headers["WWW-Authenticate"]
                code, headers = await status("POST", path, token=None)
                assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer ")
            assert (await status("POST", "/whip/nowhere"))[0] == 404
            assert (await status("POST", "/whep/nowhere", token=h.token("commander")))[0] == 404
            code, headers = await status("GET", "/whip/fire")
            assert code == 405 and "POST" in headers["Allow"]
            assert (await status("POST", "/whip/fire", ctype="application/json"))[0] == 415
            assert (await status("POST", "/whip/fire", body="v=0\r\nnot sdp"))[0] == 422
            assert (await status("POST", "/whep/fire", token=h.token("commander"), body="garbage"))[0] == 422
            assert (await status("POST", "/whip/police"))[0] == 403  # fire's token, police's feed
            code, headers = await status("OPTIONS", "/whip/fire", token=None)
            assert code == 204 and headers["Accept-Post"] == SDP
            # WHIP ingests: an offer that only receives is refused
            code, _ = await status("POST", "/whip/fire", body=await _offer("recvonly"))
            assert code == 422
        finally:
            await pc.close()
    rejected = [e for e in h.events() if e.kind == "auth.rejected"]
    assert rejected and all(e.payload["path"].startswith(("/whip/", "/whep/")) for e in rejected)


async def test_the_wall_is_decoded_and_composed_only_while_watched(media_hub: Any) -> None:
    """As served (recording on, the wall's recording not configured): a live feed is recorded
    and judged from samples, never decoded frame by frame, until a WHEP wall viewer comes;
    when it leaves, the decoding and the wall's composition stop again."""
    h = await media_hub()
    media = h.running.runner.app[MEDIA_KEY]
    assert media.monitor is not None and "wall" not in media.recorders
    publisher = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
    publisher.addTransceiver(DepartmentVideo(IDS.index("police") + 1, "police"), direction="sendonly")
    tap = media.video.frame_tap("police")
    arrived = [0]
    tap.listen(lambda _packet: arrived.__setitem__(0, arrived[0] + 1))
    wall_viewer = Viewer()
    async with aiohttp.ClientSession() as http:
        try:
            await post_offer(http, f"{h.url}/whip/police", publisher, h.token("department", "police"))
            await wait_for(lambda: tap.samples_decoded >= 2 and media.recorders["police"].recording, 15)
            await wait_for(lambda: arrived[0] >= 30, 10)
            assert tap.frames_decoded == 0 and not media.monitor.wall_active
            assert "police" not in media.wall.frames  # nothing scaled into a tile, nothing composed

            evaluator = h.token("evaluator")
            location = await post_offer(http, f"{h.url}/whep/wall", wall_viewer.pc, evaluator)
            await wait_for(lambda: wall_viewer.frames >= 5 and "police" in media.wall.frames, 15)
            assert media.monitor.wall_active and tap.frames_decoded > 0

            async with http.delete(h.url + location, headers={"Authorization": f"Bearer {evaluator}"}) as r:
                assert r.status == 200
            await wait_for(lambda: not media.monitor.wall_active, 5)
            await wait_for(lambda: not tap._frame_subs, 5)
            decoded, seen = tap.frames_decoded, arrived[0]
            await wait_for(lambda: arrived[0] >= seen + 30, 10)  # two more seconds of video
            assert tap.frames_decoded - decoded <= 5, "frames queued before the viewer left, at most"
            assert media.recorders["police"].recording
        finally:
            await publisher.close()
            await wall_viewer.close()

"""RTSP ingest from a stock gst-rtsp-server (H264, VP8): each frame forwarded once, recorded, kill/restart.

The camera is Debian's GStreamer 1.22 (gst-rtsp-server, x264enc / vp8enc) run by Debian's
/usr/bin/python3 (the venv has no `gi`); the recordings are read back with ffprobe; the
forwarded frame rate is measured by an aiortc WHEP viewer over plain HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hub.media_wiring import MEDIA_KEY
from hub.sfu.ice import IceConfig
from tests.mediawiring.conftest import wait_for
from tests.mediawiring.probe import ffprobe_recording

SERVER = Path(__file__).with_name("gst_rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
FAST = {"ingest": {"backoff_initial_s": 0.3, "backoff_max_s": 0.6}, "record": {"segment_s": 600}}


ELEMENTS = ("videotestsrc", "x264enc", "rtph264pay", "vp8enc", "rtpvp8pay")


def _gst_ready() -> str | None:
    """Why the GStreamer camera cannot run here (None: it can)."""
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("ffprobe") is None:
        return "needs Debian's python3 and ffprobe"
    code = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')\n"
            "from gi.repository import Gst, GstRtspServer\nGst.init(None)\n"
            f"print(' '.join(e for e in {ELEMENTS!r} if Gst.ElementFactory.find(e) is None))")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True)
    if probe.returncode != 0:
        return "needs python3-gi and gir1.2-gst-rtsp-server-1.0"
    missing = probe.stdout.strip()
    return f"GStreamer lacks {missing} (gstreamer1.0-plugins-good/-ugly)" if missing else None


WHY_NOT = _gst_ready()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


class Camera:
    """The gst-rtsp-server subprocess; `start()` again after `kill()` serves the same URL."""

    def __init__(self, codec: str, pattern: str = "ball") -> None:
        self.codec, self.pattern = codec, pattern
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, str(SERVER), "--codec", self.codec, "--port", str(self.port),
            "--pattern", self.pattern, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line.startswith(b"READY "), line + await self.proc.stderr.read()  # type: ignore[union-attr]
        self.port = int(line.split()[1])

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


@pytest.fixture
async def cameras() -> AsyncIterator[list[Camera]]:
    made: list[Camera] = []
    yield made
    for cam in made:
        await cam.kill()


class WhepViewer:
    """A plain aiortc peer that pulls /whep/<dept> and counts the decoded frames it gets."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(IceConfig.loopback().rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.arrivals: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda t: self._tasks.append(asyncio.ensure_future(self._drain(t))))

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self.arrivals.append(time.monotonic())

    async def pull(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        async with http.post(url, data=self.pc.localDescription.sdp, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}) as r:
            assert r.status == 201, await r.text()
            answer = await r.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def fps(self, since: float) -> float:
        recent = [t for t in self.arrivals if t >= since]
        return (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.pc.close()


def payloads(h: Any, kind: str, dept: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in h.events() if e.kind == kind and e.payload.get("dept") == dept]


def events(h: Any, kind: str, dept: str) -> list[Any]:
    return [e for e in h.events() if e.kind == kind and e.payload.get("dept") == dept]


async def api(http: aiohttp.ClientSession, h: Any, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {h.token('commander')}"}
    async with http.request(method, h.url + path, json=body, headers=headers) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_rtsp_camera_is_forwarded_once_and_recorded(
        media_hub: Any, cameras: list[Camera], codec: str) -> None:
    cam = Camera(codec)
    cameras.append(cam)
    await cam.start()
    h = await media_hub(config=FAST)
    media = h.running.runner.app[MEDIA_KEY]
    viewer = WhepViewer()
    async with aiohttp.ClientSession() as http:
        try:
            await api(http, h, "POST", "/api/ingest", {"dept": "fire", "url": cam.url})
            await wait_for(lambda: media.video.video_source("fire") is not None, 20)
            source = media.video.video_source("fire")
            await viewer.pull(http, f"{h.url}/whep/fire", h.token("commander"))
            await wait_for(lambda: len(viewer.arrivals) >= 5, 20)
            measure_from = time.monotonic()
            await asyncio.sleep(6.0)  # the session's length is what is checked, not a wait for a condition
            fps = viewer.fps(measure_from)
            await api(http, h, "DELETE", "/api/ingest/fire")
            stopped_at = time.monotonic()
            await wait_for(lambda: events(h, "media.recording", "fire"), 10)
            closed_after = time.monotonic() - stopped_at
        finally:
            await viewer.close()
    assert 13.5 <= fps <= 16.5, f"the WHEP viewer got {fps:.1f} fps from a 15 fps camera"
    assert closed_after <= 2.0
    [rec] = payloads(h, "media.recording", "fire")
    connected = events(h, "ingest.connected", "fire")[0]
    stopped = events(h, "ingest.stopped", "fire")[0]
    session_s = (stopped.ts_us - connected.ts_us) / 1e6
    assert rec["codec"] == codec.upper() and rec["session"]
    probe = ffprobe_recording(h.data / rec["path"])
    assert probe.codecs == [codec]
    assert probe.duration_s == pytest.approx(session_s, rel=0.05)
    assert probe.monotonic and probe.repeated == 0
    forwarded = source.frames  # the hub's own count of frames it forwarded for that session
    assert probe.frames == rec["frames"]
    assert abs(probe.frames - forwarded) <= max(1, 0.02 * forwarded), (probe.frames, forwarded)
    assert forwarded == pytest.approx(15 * session_s, rel=0.1)


async def test_camera_killed_and_restarted_one_outage_from_the_last_frame(
        media_hub: Any, cameras: list[Camera]) -> None:
    cam = Camera("h264")
    cameras.append(cam)
    await cam.start()
    h = await media_hub(config=FAST)
    media = h.running.runner.app[MEDIA_KEY]
    await media.start_ingest("police", cam.url)
    await wait_for(lambda: media.video.video_source("police") is not None, 20)
    first = media.video.video_source("police")
    await wait_for(lambda: first.frames >= 30, 20)
    await cam.kill()
    killed = time.monotonic()
    await wait_for(lambda: payloads(h, "video.lost", "police"), 15)
    await asyncio.sleep(2.0)  # the camera stays away long enough for a few failed reconnects
    await cam.start()
    restarted = time.monotonic()
    await wait_for(lambda: payloads(h, "video.restored", "police"), 20)
    second = media.video.video_source("police")
    assert second is not None and second is not first
    await wait_for(lambda: second.frames >= 30, 20)
    # the first session's file was closed when the camera went away
    await wait_for(lambda: len(payloads(h, "media.recording", "police")) >= 1, 5)
    await media.stop_ingest("police")
    await wait_for(lambda: len(payloads(h, "media.recording", "police")) == 2, 5)
    [lost] = payloads(h, "video.lost", "police")
    [restored] = payloads(h, "video.restored", "police")
    assert lost["cause"] == restored["cause"] == "ingest"
    outage = restored["duration_s"]
    assert restarted - killed <= outage <= restarted - killed + 5.0, (outage, restarted - killed)
    lost_ev = events(h, "video.lost", "police")[0]
    assert lost["since_us"] <= lost_ev.ts_us
    recs = payloads(h, "media.recording", "police")
    assert recs[0]["session"] != recs[1]["session"]
    for rec, source in zip(recs, (first, second), strict=True):
        probe = ffprobe_recording(h.data / rec["path"])
        assert probe.codecs == ["h264"] and probe.monotonic and probe.repeated == 0
        assert abs(probe.frames - source.frames) <= max(1, 0.02 * source.frames)
        assert probe.duration_s == pytest.approx((rec["end_ts_us"] - rec["start_ts_us"]) / 1e6, rel=0.05)

"""Video load for benchmarks: N WHIP publishers of pre-encoded VP8 loops, in their own process.

`python -m hub.bench_feeds URL TOKENS_JSON SECONDS` publishes one feed per department of
TOKENS_JSON (`{dept: token}`) to `URL/whip/<dept>` (320x240 at 15 fps, a keyframe every 2 s,
about 300 kb/s), prints `ready N` once every feed is connected, keeps them flowing for SECONDS
(bounded) and prints a JSON line. The frames are encoded once and looped, so the load is the
hub's, not the encoders'.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import sys
import time
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from hub.sfu.ice import IceConfig, apply_host_addresses

FPS = 15
SIZE = (320, 240)
LOOP_FRAMES = 60
GOP = 30
BITRATE = 300_000
ICE = IceConfig.loopback()


def preencode(seed: int) -> list[bytes]:
    """A loop of VP8 frames of a moving gradient (keyframe first and every GOP frames)."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    ctx.bit_rate, ctx.gop_size = BITRATE, GOP
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    out: list[bytes] = []
    for i in range(LOOP_FRAMES):
        rgb = np.stack([(xx + 4 * i + seed * 40) % 256, (yy + 2 * i) % 256,
                        np.full_like(xx, (seed * 60) % 256)], axis=-1).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        frame.pict_type = (av.video.frame.PictureType.I if i % GOP == 0
                           else av.video.frame.PictureType.NONE)
        out.extend(bytes(p) for p in ctx.encode(frame))
    return out


class LoopTrack(MediaStreamTrack):
    """Sends pre-encoded frames as packets at FPS (aiortc packetizes packets without encoding)."""

    kind = "video"

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self.frames = frames
        self.i = 0
        self.t0: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self.t0 is None:
            self.t0 = time.monotonic()
        due = self.t0 + self.i / FPS
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.frames[self.i % len(self.frames)])
        packet.pts = self.i * (90_000 // FPS)
        packet.time_base = fractions.Fraction(1, 90_000)
        self.i += 1
        return packet


async def publish(http: aiohttp.ClientSession, url: str, dept: str, token: str,
                  frames: list[bytes]) -> RTCPeerConnection:
    """One WHIP publisher: offer, POST, answer, wait until connected (bounded)."""
    pc = RTCPeerConnection(ICE.rtc_configuration())
    tr = pc.addTransceiver(LoopTrack(frames), direction="sendonly")
    tr.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                            if c.mimeType == "video/VP8"])
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(f"{url}/whip/{dept}", data=pc.localDescription.sdp,
                         headers={"Content-Type": "application/sdp",
                                  "Authorization": f"Bearer {token}"}) as r:
        if r.status != 201:
            raise RuntimeError(f"WHIP {dept}: {r.status} {await r.text()}")
        answer = await r.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    deadline = time.monotonic() + 30
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            raise RuntimeError(f"WHIP {dept}: peer connection {pc.connectionState}")
        await asyncio.sleep(0.05)
    return pc


async def run(url: str, tokens: dict[str, str], seconds: float) -> dict[str, Any]:
    apply_host_addresses(ICE)
    loops = [preencode(seed) for seed in range(4)]
    pcs: list[RTCPeerConnection] = []
    async with aiohttp.ClientSession() as http:
        try:
            for i, (dept, token) in enumerate(tokens.items()):
                pcs.append(await publish(http, url, dept, token, loops[i % len(loops)]))
            print(f"ready {len(pcs)}", flush=True)
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(0.5)
            connected = sum(pc.connectionState == "connected" for pc in pcs)
        finally:
            await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
    return {"feeds": len(tokens), "connected_at_end": connected}


def main(argv: list[str]) -> int:
    url, tokens_path, seconds = argv[0], argv[1], float(argv[2])
    with open(tokens_path, encoding="utf-8") as f:
        tokens: dict[str, str] = json.load(f)
    print(json.dumps(asyncio.run(run(url, tokens, min(seconds, 600.0)))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

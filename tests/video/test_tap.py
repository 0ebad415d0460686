"""The feed tap with real VP8 frames (libvpx): samples are keyframes decoded on their own with
the frame after each, asked for with a PLI unless the publisher's own come often enough;
nothing else is decoded."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import av
import numpy as np

from hub.sfu.tap import FeedTap, Sample
from media.encoded import EncodedPacket
from media.frames import to_gray

FPS = 15


class Vp8Publisher:
    """Encodes a gray picture whose level is the frame index; a keyframe when asked or every
    `gop` frames (0: only when asked, as aiortc and Chromium do)."""

    def __init__(self, gop: int = 0) -> None:
        ctx: Any = av.CodecContext.create("libvpx", "w")
        ctx.width, ctx.height, ctx.pix_fmt = 320, 240, "yuv420p"
        ctx.time_base = Fraction(1, 90000)
        ctx.bit_rate = 300_000
        ctx.gop_size = 100_000
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self.ctx, self.gop, self.index, self.asked = ctx, gop, 0, 0
        self._key = True

    def request_keyframe(self) -> None:
        self.asked += 1
        self._key = True

    def next(self) -> EncodedPacket:
        i, self.index = self.index, self.index + 1
        level = 40 + (i * 3) % 180
        frame = av.VideoFrame.from_ndarray(np.full((360, 320), level, np.uint8), format="yuv420p")
        frame.pts, frame.time_base = i * 6000, Fraction(1, 90000)
        if self._key or (self.gop and i % self.gop == 0):
            frame.pict_type = av.video.frame.PictureType.I
            self._key = False
        [packet] = list(self.ctx.encode(frame))
        data = bytes(packet)
        return EncodedPacket(data, i * 6000, 90000, "VP8", bool(packet.is_keyframe), i / FPS)


async def next_sample(sub: Any, timeout: float = 2.0) -> Sample:
    sample: Sample = await asyncio.wait_for(sub.get(), timeout)
    return sample


async def test_samples_are_keyframes_asked_for_and_nothing_else_is_decoded() -> None:
    pub = Vp8Publisher()
    tap = FeedTap("fire", pub.request_keyframe)
    sub = tap.samples()
    tap.on_packet(pub.next())  # the first keyframe: taken as a sample (none was yet)
    tap.on_packet(pub.next())  # decoded with the frame after it
    first = await next_sample(sub)
    assert first.t == 0.0 and first.neighbour is not None
    # the keyframe's picture (level 40) and the next one's (43): the picture moves
    assert abs(to_gray(first.frame).mean() - 40) < 3
    assert abs(to_gray(first.neighbour).mean() - 43) < 3
    levels = []
    for _ in range(4 * FPS):  # 4 s; a sample wanted once a second, as health asks
        packet = pub.next()
        tap.on_packet(packet)
        if pub.index % FPS == 0:
            tap.request_sample(within=1.0)
            while True:  # the next frames until the keyframe asked for comes and is decoded
                packet = pub.next()
                tap.on_packet(packet)
                if packet.keyframe:
                    break
            tap.on_packet(pub.next())
            sample = await next_sample(sub)
            assert sample.keyframe and sample.t == packet.arrival
            levels.append(float(to_gray(sample.frame).mean()))
    assert tap.frames_decoded == 0 and tap.samples_decoded == 5
    assert pub.asked == 4  # an aiortc-like publisher sends no keyframe of its own
    # each sample is the picture of its own keyframe (not garbage from a missing reference)
    expected = [40 + (i * 3) % 180 for i in range(pub.index)]
    assert all(min(abs(lv - e) for e in expected) < 3 for lv in levels), levels
    sub.close()
    tap.close()


async def test_a_short_gop_is_sampled_at_its_own_keyframes_without_a_pli() -> None:
    pub = Vp8Publisher(gop=10)  # a keyframe every 0.67 s
    tap = FeedTap("water", pub.request_keyframe)
    for _ in range(25):  # the cadence is learnt from two keyframes nobody asked for
        tap.on_packet(pub.next())
    sub = tap.samples()
    asked = pub.asked
    assert tap.natural_key_s is not None and abs(tap.natural_key_s - 10 / FPS) < 1e-6
    tap.request_sample(within=1.0)
    assert pub.asked == asked  # the next keyframe of its own is awaited
    while not (packet := pub.next()).keyframe:
        tap.on_packet(packet)
    tap.on_packet(packet)
    tap.on_packet(pub.next())
    assert (await next_sample(sub)).t == packet.arrival
    tap.request_sample(within=0.5)  # in doubt (2 samples a second): its cadence is too slow
    assert pub.asked == asked + 1
    sub.close()
    tap.close()


async def test_a_cadence_that_stops_holding_is_asked_for_again() -> None:
    pub = Vp8Publisher(gop=10)
    tap = FeedTap("power", pub.request_keyframe)
    for _ in range(25):
        tap.on_packet(pub.next())
    pub.gop = 0  # the publisher stops sending keyframes of its own
    asked = pub.asked
    for _ in range(2 * FPS):
        tap.on_packet(pub.next())
        tap.request_sample(within=1.0)
        if pub.asked > asked:
            break
    # asked once the keyframe is overdue (1.25 x its cadence after the last one)
    assert pub.asked == asked + 1 and tap.natural_key_s is None
    assert pub.index - 1 - 20 == 13  # the frame 0.87 s after the last keyframe (0.67 s GOP)
    tap.close()

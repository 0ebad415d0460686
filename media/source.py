"""Synthetic department source: deterministic pattern, CJK name, clock, counter, pixel stamp."""

from __future__ import annotations

import asyncio
import colorsys
import math
import time
from collections.abc import Callable
from fractions import Fraction

import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from media.stamp import Stamp, stamp_height, write_stamp
from media.text import draw_text

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_PTIME = 0.02


def _palette(number: int) -> list[tuple[int, int, int]]:
    """Eight colour bars whose hue rotates with the department number (deterministic)."""
    bars = []
    for i in range(8):
        hue = ((number * 0.137) + i / 8) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.75)
        bars.append((int(r * 255), int(g * 255), int(b * 255)))
    return bars


def render_background(
    width: int, height: int, number: int, name_zh: str, name_en: str
) -> np.ndarray:
    """The static part of a department's pattern as an HxWx3 RGB image."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    bar_w = max(1, width // 8)
    for i, color in enumerate(_palette(number)):
        img[:, i * bar_w : (i + 1) * bar_w] = color
    top = stamp_height(width) + 4
    size = max(12, height // 9)
    draw_text(img, name_zh, (8, top), size, (255, 255, 255), (20, 20, 20))
    draw_text(img, name_en, (8, top + size + 12), max(10, size // 2), (255, 255, 255), (20, 20, 20))
    return img


class DepartmentVideo(MediaStreamTrack):
    """Video track of a synthetic department: same pixels for the same frame index and time.

    Each frame carries a `media.stamp` stamp with the department number, frame counter and
    the wall-clock send time (taken when the frame is handed to the encoder).
    """

    kind = "video"

    def __init__(
        self, number: int, name_zh: str, name_en: str = "", *, width: int = 320,
        height: int = 240, fps: float = 15.0, wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.number = number
        self.width, self.height, self.fps = width, height, fps
        self._wall = wall_clock
        self._background = render_background(width, height, number, name_zh, name_en)
        self._index = 0
        self._start: float | None = None
        self._origin: float | None = None
        self._pts = -1
        self._text_size = max(10, height // 14)

    def render(self, index: int, now: float) -> np.ndarray:
        """RGB pixels of frame `index` sent at wall time `now` (pure function of both)."""
        img = self._background.copy()
        h, w = self.height, self.width
        # moving bar: gives the encoder real motion to code
        x = int((index * 4) % max(1, w - 16))
        img[h - 24 : h - 8, x : x + 16] = (255, 255, 255)
        clock = time.strftime("%H:%M:%S", time.localtime(now))
        y = h - 24 - 2 * self._text_size - 12
        draw_text(img, clock, (8, y), self._text_size, (255, 255, 0), (0, 0, 0))
        draw_text(img, f"#{index:06d}", (8, y + self._text_size + 6), self._text_size,
                  (0, 255, 255), (0, 0, 0))
        write_stamp(img, Stamp(self.number, index & 0xFFFF, int(now * 1000)))
        return img

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop_now = time.monotonic()
        if self._start is None:
            self._start = loop_now
        due = self._start + self._index / self.fps
        if due > loop_now:
            await asyncio.sleep(due - loop_now)
        elif loop_now - due > 1.0:
            self._start = loop_now - self._index / self.fps  # fell far behind: do not burst
        index = self._index
        self._index += 1
        taken = time.monotonic()
        rgb = self.render(index, self._wall())
        yuv = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
        frame = VideoFrame.from_ndarray(yuv, format="yuv420p")
        # the RTP clock follows when each frame was taken, as a camera's does: a sender that
        # falls behind its schedule (a loaded machine) still times its frames right, so a
        # recording's media time matches the stamped send time (schedule-based pts drifted
        # from it by the lag, up to 1 s)
        if self._origin is None:
            self._origin = taken
        self._pts = max(int((taken - self._origin) * VIDEO_CLOCK), self._pts + 1)
        frame.pts = self._pts
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        return frame


class DepartmentAudio(MediaStreamTrack):
    """A quiet tone whose pitch depends on the department number (deterministic)."""

    kind = "audio"

    def __init__(self, number: int, *, amplitude: float = 0.05) -> None:
        super().__init__()
        self.frequency = 220.0 * 2 ** ((number % 24) / 12)
        self._amplitude = amplitude
        self._samples = int(AUDIO_RATE * AUDIO_PTIME)
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._sent / AUDIO_RATE
        if due > now:
            await asyncio.sleep(due - now)
        t = (np.arange(self._samples) + self._sent) / AUDIO_RATE
        wave = (np.sin(2 * math.pi * self.frequency * t) * self._amplitude * 32767).astype("<i2")
        frame = AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._sent
        frame.time_base = Fraction(1, AUDIO_RATE)
        self._sent += self._samples
        return frame


class EpisodeVideo(MediaStreamTrack):
    """Wraps a source: passes its frames, or repeats the last one (frozen), or sends black."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, mode: Callable[[], str]) -> None:
        super().__init__()
        self.source = source
        self.mode = mode
        self._frozen: np.ndarray | None = None
        self._last: VideoFrame | None = None
        self._black: np.ndarray | None = None

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.source.recv()
        if not isinstance(frame, VideoFrame):
            raise MediaStreamError
        mode = self.mode()
        if mode == "normal" or (mode == "frozen" and self._last is None):
            self._frozen = None
            self._last = frame
            return frame
        if mode == "frozen":
            if self._frozen is None:
                assert self._last is not None
                self._frozen = self._last.to_ndarray(format="yuv420p")
            pixels = self._frozen
        else:
            if self._black is None:
                h, w = frame.height, frame.width
                self._black = np.zeros((h * 3 // 2, w), np.uint8)
                self._black[h:] = 128  # neutral chroma: black, not green
            pixels = self._black
        out = VideoFrame.from_ndarray(pixels, format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def stop(self) -> None:
        super().stop()
        self.source.stop()

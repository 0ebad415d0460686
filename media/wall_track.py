"""The composed video wall as an aiortc video track at a fixed frame rate (for WebRTC and WHEP)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from fractions import Fraction

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame

from media.frames import to_video_frame
from media.wall import VideoWall

VIDEO_CLOCK = 90000


def local_clock_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


class WallTrack(MediaStreamTrack):
    """Composes `wall` at `fps` (above the sources' rate) and hands out yuv420p frames.

    Several peers can share one track through aiortc's MediaRelay so the wall is composed
    and encoded once per consumer group rather than once per viewer.
    """

    kind = "video"

    def __init__(
        self,
        wall: VideoWall,
        fps: float = 20.0,
        clock_text: Callable[[], str] = local_clock_text,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self.wall = wall
        self.fps = fps
        self._clock_text = clock_text
        self._mono = monotonic
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._mono()
        if self._start is None:
            self._start = now
        due = self._start + self._index / self.fps
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 1.0:
            self._start = now - self._index / self.fps  # fell far behind: do not burst
        frame = to_video_frame(self.wall.compose(self._clock_text()))
        frame.pts = round(self._index * VIDEO_CLOCK / self.fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        self._index += 1
        return frame

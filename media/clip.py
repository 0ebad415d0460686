"""A replay clip: the wall composed from the recordings at each hub time, captions burned in, MP4."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from media.text import draw_text
from media.wall import VideoWall

# x264: a fast preset for a wall of mostly still tiles (its share of the time alone against
# "veryfast" was not measured apart; docs/replay.md has the export figures)
PRESET, CRF = "superfast", "26"


class ClipError(Exception):
    """A clip could not be made (nothing to show, a file unreadable, the encoder missing)."""


@dataclass(frozen=True)
class ClipSource:
    """A recording: media time t shows hub time `origin_us` + t."""

    path: Path
    origin_us: int
    duration_s: float


@dataclass(frozen=True)
class Caption:
    ts_us: int
    text: str


class _Feed:
    """The latest decoded frame of one department at increasing hub times."""

    def __init__(self, sources: Sequence[ClipSource]) -> None:
        self.sources = sorted(sources, key=lambda s: s.origin_us)
        self._src: ClipSource | None = None
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._cur: Any = None
        self._next: Any = None
        self._shown: Any = None  # the frame last converted, and its picture
        self._picture: np.ndarray | None = None

    def _open(self, src: ClipSource, media_s: float) -> None:
        self.close()
        try:
            self._container = av.open(str(src.path))
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            if media_s > 0.5 and stream.time_base:
                self._container.seek(int(media_s / stream.time_base), stream=stream,
                                     backward=True, any_frame=False)
            self._frames = iter(self._container.decode(stream))
        except (OSError, av.FFmpegError) as exc:
            raise ClipError(f"{src.path}: {exc}") from exc
        self._src, self._cur, self._next = src, None, next(self._frames, None)

    def at(self, t_us: int) -> np.ndarray | None:
        src = next((s for s in self.sources
                    if s.origin_us <= t_us < s.origin_us + int(s.duration_s * 1e6)), None)
        if src is None:
            return None
        media_s = (t_us - src.origin_us) / 1e6
        if src is not self._src:
            self._open(src, media_s)
        while self._next is not None and self._next.time is not None \
                and self._next.time <= media_s + 1e-6:
            self._cur = self._next
            self._next = next(self._frames, None) if self._frames is not None else None
        frame = self._cur if self._cur is not None else self._next
        if frame is None:
            return None
        if frame is not self._shown:  # converted once, however many clip frames show it
            self._shown, self._picture = frame, _bgr(frame)
        return self._picture

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = self._src = None


def _bgr(frame: Any) -> np.ndarray:
    """A decoded frame as BGR: the I420 planes as they are, converted by OpenCV (several times
    faster than swscale's default path for these small pictures)."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        bgr: np.ndarray = cv2.cvtColor(frame.to_ndarray(format="yuv420p"),
                                       cv2.COLOR_YUV2BGR_I420)
        return bgr
    out: np.ndarray = frame.to_ndarray(format="bgr24")
    return out


def write_clip(out: Path, tiles: Sequence[tuple[str, str]],
               sources: Mapping[str, Sequence[ClipSource]], captions: Sequence[Caption],
               from_us: int, to_us: int, clock_text: Callable[[int], str], *, fps: int = 10,
               size: tuple[int, int] = (1280, 720), progress: Callable[[float], None] | None = None,
               ) -> int:
    """Compose the wall (tiles: department id and label, in order) from `from_us` to `to_us`
    at `fps`, with the captions of the last 10 s at the bottom; H.264 in MP4. Return the frame
    count. `clock_text(us)` prints the hub time top right."""
    if to_us <= from_us:
        raise ClipError("the clip must end after it starts")
    if "libx264" not in av.codecs_available:
        raise ClipError("PyAV has no libx264 encoder")
    layout = "4x4" if len(tiles) > 9 else "3x3" if len(tiles) > 4 else "2x2"
    wall = VideoWall(layout, size, names=dict(tiles), order=[d for d, _ in tiles])
    feeds = {d: _Feed(sources.get(d, [])) for d, _ in tiles}
    step_us = 1_000_000 // fps
    count = 0
    ordered = sorted(captions, key=lambda c: c.ts_us)
    tmp = out.with_name(out.name + ".part")
    try:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            stream.options = {"preset": PRESET, "crf": CRF}
            t = from_us
            while t <= to_us:
                for dept, feed in feeds.items():
                    frame = feed.at(t)
                    if frame is not None and wall.frames.get(dept) is not frame:
                        wall.update(dept, frame)  # scaled into its tile once per new picture
                    wall.set_state(dept, online=frame is not None, lost=frame is None)
                canvas = wall.compose(clock_text(t)).copy()
                shown = [c for c in ordered if t - 10_000_000 < c.ts_us <= t][-3:]
                y = size[1] - 28 * len(shown) - 6
                for c in shown:
                    draw_text(canvas, c.text[:110], (10, y), 20, (255, 255, 255), (0, 0, 0),
                              bgr=True)
                    y += 28
                yuv = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).astype(np.uint8, copy=False)
                vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                vf.pts = count
                vf.time_base = Fraction(1, fps)
                for packet in stream.encode(vf):
                    container.mux(packet)
                count += 1
                if progress is not None and count % (fps * 10) == 0:
                    progress((t - from_us) / (to_us - from_us))
                t += step_us
            for packet in stream.encode(None):
                container.mux(packet)
        tmp.replace(out)
    except (OSError, av.FFmpegError) as exc:
        tmp.unlink(missing_ok=True)
        raise ClipError(f"{out}: {exc}") from exc
    finally:
        for feed in feeds.values():
            feed.close()
    return count

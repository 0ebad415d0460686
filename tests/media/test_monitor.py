"""The health/wall shell: decoded frames in, log events out, wall states and the wall track."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import cv2
import numpy as np
from av import VideoFrame

from media.health import HealthConfig
from media.monitor import FeedMonitor
from media.wall import BORDER_ALERT, BORDER_OK, VideoWall
from media.wall_track import VIDEO_CLOCK, WallTrack


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def frame_of(t: float, moving: bool = True) -> VideoFrame:
    img = np.full((240, 320, 3), 90, np.uint8)
    x = int(t * 40) % 280 if moving else 0
    img[100:140, x : x + 40] = 250
    return VideoFrame.from_ndarray(img, format="bgr24")


def left_border(wall: VideoWall, img: np.ndarray, dept: str) -> tuple[int, ...]:
    r = wall.tile_rect(dept)
    assert r is not None
    return tuple(int(v) for v in img[r.y + r.h // 3, r.x + 1])


def test_frames_to_events_and_wall_states() -> None:
    clock = Clock()
    logged: list[tuple[str, Mapping[str, Any]]] = []
    wall = VideoWall("2x2", names={"police": "公安110"}, order=["police"])
    wall.set_state("police", online=True)
    mon = FeedMonitor(lambda k, p: logged.append((k, p)), wall, HealthConfig(), clock=clock)
    for i in range(15 * 12):  # 15 fps: moving for 4 s, frozen until 10 s, moving again
        clock.t = i / 15
        mon.process("police", frame_of(clock.t, moving=not 4 <= clock.t < 10))
        if clock.t == 8.0:
            assert left_border(wall, wall.compose(), "police") == BORDER_ALERT
    assert [k for k, _ in logged] == ["video.frozen", "video.restored"]
    assert logged[0][1] == {"dept": "police"}
    assert logged[1][1]["was"] == "frozen"
    assert abs(logged[1][1]["duration_s"] - 6.0) <= 0.25
    assert left_border(wall, wall.compose(), "police") == BORDER_OK
    up = mon.uptime()
    assert abs(up["police"] - (1 - 6.0 / clock.t)) < 0.03


def test_wall_gets_frames_at_most_wall_fps(monkeypatch: Any) -> None:
    clock = Clock()
    wall = VideoWall("1", order=["fire"])
    updates: list[float] = []
    real = wall.update

    def spy(dept: str, frame: np.ndarray) -> None:
        updates.append(clock.t)
        real(dept, frame)

    monkeypatch.setattr(wall, "update", spy)
    mon = FeedMonitor(lambda k, p: None, wall, wall_fps=5.0, clock=clock)
    for i in range(60):  # 30 fps for 2 s
        clock.t = i / 30
        mon.process("fire", frame_of(clock.t))
    assert 9 <= len(updates) <= 11


class FakeTap:
    def __init__(self, frames: list[VideoFrame]) -> None:
        self._frames = frames
        self.closed = False

    def frames(self, max_items: int = 2) -> FakeTap:
        return self

    def __aiter__(self) -> AsyncIterator[VideoFrame]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[VideoFrame]:
        for f in self._frames:
            await asyncio.sleep(0)
            yield f

    def close(self) -> None:
        self.closed = True


async def test_watch_consumes_tap_and_ticker_reports_lost() -> None:
    clock = Clock()
    logged: list[str] = []
    mon = FeedMonitor(lambda k, p: logged.append(k), clock=clock)
    tap = FakeTap([frame_of(i / 10) for i in range(5)])
    task = mon.watch("water", tap)
    await task
    assert tap.closed
    assert mon.health.feeds["water"].last_frame_t == 0.0
    clock.t = 10.0
    ticker = asyncio.ensure_future(mon.run_ticker())
    await asyncio.sleep(0.01)
    ticker.cancel()
    assert logged == ["video.lost"]
    await mon.stop()


async def test_wall_track_emits_composed_frames_at_fixed_rate() -> None:
    wall = VideoWall("2x2", size=(640, 360), order=["a"])
    wall.update("a", np.full((240, 320, 3), (0, 0, 255), np.uint8))
    t = [100.0]
    track = WallTrack(wall, fps=10.0, clock_text=lambda: "12:00:00", monotonic=lambda: t[0])
    f0 = await track.recv()
    t[0] += 0.1
    f1 = await track.recv()
    assert (f0.width, f0.height, f0.format.name) == (640, 360, "yuv420p")
    assert f0.pts is not None and f1.pts is not None
    assert f1.pts - f0.pts == VIDEO_CLOCK // 10
    r = wall.tile_rect("a")
    assert r is not None
    bgr = cv2.cvtColor(f1.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    b, g, red = (int(v) for v in bgr[r.y + r.h // 3, r.x + r.w // 2])
    assert red > 200 and b < 50 and g < 50
    track.stop()


def test_frame_conversions_match_swscale() -> None:
    from media.frames import to_bgr, to_gray, to_video_frame

    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (120, 162, 3), dtype=np.uint8)
    img = np.asarray(cv2.GaussianBlur(noise, (9, 9), 0), np.uint8)
    frame = VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
    gray = to_gray(frame)
    assert gray.shape == (120, 162)
    assert np.array_equal(gray, frame.to_ndarray()[:120])  # the Y plane, padding cut off
    ref = frame.to_ndarray(format="bgr24").astype(np.int32)
    assert np.abs(to_bgr(frame).astype(np.int32) - ref).mean() < 3
    back = to_video_frame(img)
    assert (back.format.name, back.width, back.height) == ("yuv420p", 162, 120)
    assert np.abs(to_bgr(back).astype(np.int32) - img.astype(np.int32)).mean() < 4

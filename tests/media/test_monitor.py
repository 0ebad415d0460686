"""The health/wall shell: decoded frames in, log events out, wall states and the wall track."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from av import VideoFrame

from media.health import HealthConfig, HealthEvent
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


@dataclass(frozen=True)
class Pkt:
    data: bytes
    codec: str = "VP8"
    keyframe: bool = False


@dataclass(frozen=True)
class Pic:
    frame: VideoFrame


class FakeTap:
    """What FeedMonitor needs of a feed: listeners, sample requests, sample and frame streams."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.requests = 0
        self.frame_streams = 0
        self.sample_queue: asyncio.Queue[Any] = asyncio.Queue()

    def listen(self, fn: Any) -> Any:
        self.listeners.append(fn)
        return lambda: self.listeners.remove(fn)

    def request_sample(self, within: float = 0.0) -> None:
        self.requests += 1

    def samples(self, max_items: int = 2) -> Stream:
        return Stream(self.sample_queue)

    def frames(self, max_items: int = 2, **_: Any) -> Stream:
        self.frame_streams += 1
        return Stream(asyncio.Queue())

    def send(self, size: int) -> None:
        for fn in list(self.listeners):
            fn(Pkt(b"x" * size))


class Stream:
    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        pass


async def test_stream_and_samples_to_events_and_wall_states() -> None:
    clock = Clock()
    logged: list[HealthEvent] = []
    wall = VideoWall("2x2", names={"police": "公安110"}, order=["police"])
    wall.set_state("police", online=True)
    mon = FeedMonitor(logged.append, wall, HealthConfig(), clock=clock)
    tap = FakeTap()
    mon.start_feed("police", tap)
    asked = 0
    for i in range(15 * 12):  # 15 fps: moving for 4 s, frozen (tiny frames) until 10 s, moving
        clock.t = i / 15
        still = 4 <= clock.t < 10
        tap.send(30 if still else 900)
        if tap.requests > asked:  # the monitor asked for a picture: hand it the next one
            asked = tap.requests
            mon.on_sample("police", Pic(frame_of(4.0 if still else clock.t)))
        if i % 4 == 0:
            mon.handle(mon.health.tick(clock.t))
        if clock.t == 8.0:
            assert left_border(wall, wall.compose(), "police") == BORDER_ALERT
    kinds = [e.kind for e in logged]
    assert kinds == ["video.frozen", "video.restored"], kinds
    assert abs(logged[0].onset - 4.0) < 0.1
    assert abs(logged[1].payload()["duration_s"] - 6.0) <= 0.2
    assert left_border(wall, wall.compose(), "police") == BORDER_OK
    assert asked <= 2 * 12 + 1  # samples asked for: at most alert_sample_fps a second
    assert abs(mon.uptime()["police"] - (1 - 6.0 / clock.t)) < 0.03
    # the feed ends: no listener left, no more events, the wall's flags cleared
    mon.end_feed("police")
    assert tap.listeners == [] and mon.watched == []
    clock.t += 30
    mon.handle(mon.health.tick(clock.t))
    assert len(logged) == 2


async def test_wall_decodes_only_while_active_and_at_most_wall_fps(monkeypatch: Any) -> None:
    clock = Clock()
    wall = VideoWall("1", order=["fire"])
    updates: list[float] = []
    real = wall.update

    def spy(dept: str, frame: np.ndarray) -> None:
        updates.append(clock.t)
        real(dept, frame)

    monkeypatch.setattr(wall, "update", spy)
    mon = FeedMonitor(lambda e: None, wall, wall_fps=5.0, clock=clock)
    tap = FakeTap()
    mon.start_feed("fire", tap)
    assert tap.frame_streams == 0  # nobody uses the wall: nothing decodes every frame
    mon.set_wall_active(True)
    await asyncio.sleep(0)
    assert tap.frame_streams == 1
    for i in range(60):  # 30 fps for 2 s
        clock.t = i / 30
        mon.on_frame("fire", frame_of(clock.t))
    assert 9 <= len(updates) <= 11
    mon.set_wall_active(False)
    await mon.stop()


async def test_without_health_no_sample_is_asked_for_and_the_wall_still_works() -> None:
    clock = Clock()
    logged: list[HealthEvent] = []
    mon = FeedMonitor(logged.append, VideoWall("1", order=["fire"]), clock=clock, judge=False)
    tap = FakeTap()
    mon.start_feed("fire", tap)
    assert tap.listeners == []  # frames are not even looked at
    mon.set_wall_active(True)
    await asyncio.sleep(0)
    assert tap.frame_streams == 1
    for i in range(10):
        clock.t = i * 0.5
        mon.handle(mon.health.tick(clock.t))  # 5 s without a frame: no health, no verdict
    assert tap.requests == 0 and logged == [] and mon.health.state("fire") == "none"
    await mon.stop()


async def test_shedding_slows_the_wall_and_the_samples_but_not_the_stream() -> None:
    clock = Clock()
    wall = VideoWall("1", order=["fire"])
    mon = FeedMonitor(lambda e: None, wall, wall_fps=5.0, clock=clock)
    tap = FakeTap()
    mon.start_feed("fire", tap)
    mon.set_shedding(True)
    assert mon.tile_fps == 1.0
    updates = 0
    real = wall.update

    def spy(dept: str, frame: np.ndarray) -> None:
        nonlocal updates
        updates += 1
        real(dept, frame)

    wall.update = spy  # type: ignore[method-assign]
    judged: set[float | None] = set()
    feed = mon.health.feeds["fire"]
    for i in range(120):  # 30 fps for 4 s, each frame also offered as a sample
        clock.t = i / 30
        mon.on_frame("fire", frame_of(clock.t))
        tap.send(900)
        mon.on_sample("fire", Pic(frame_of(clock.t)))
        judged.add(feed.last_sample_t)
    assert feed.last_frame_t == clock.t  # the stream is still judged frame by frame
    assert 4 <= updates <= 5  # 1 a second instead of 5
    assert len(judged) == 2  # a sample judged every 2 s at most: at 0 s and at 2 s
    assert tap.requests <= 3
    mon.set_shedding(False)
    assert mon.tile_fps == 5.0
    await mon.stop()


async def test_ticker_reports_a_live_feed_lost_and_asks_for_samples() -> None:
    clock = Clock()
    logged: list[str] = []
    mon = FeedMonitor(lambda e: logged.append(e.kind), clock=clock)
    tap = FakeTap()
    mon.start_feed("water", tap)
    tap.send(900)
    clock.t = 10.0
    ticker = asyncio.ensure_future(mon.run_ticker())
    await asyncio.sleep(0.01)
    ticker.cancel()
    assert logged == ["video.lost"]
    assert tap.requests >= 1  # no sample yet: one is wanted
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

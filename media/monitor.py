"""Shell around health and the wall: reads decoded frames from feed taps, emits log events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from av import VideoFrame

from media.frames import to_bgr, to_gray
from media.health import RESOLUTION, RESTORED, HealthConfig, HealthEvent, HealthMonitor
from media.wall import VideoWall

Emit = Callable[[str, Mapping[str, Any]], None]
# kinds that docs/events.md defines; others (RESOLUTION) go to `on_other` only
LOGGED = frozenset({"video.lost", "video.frozen", "video.black", RESTORED})


class FrameStream(Protocol):
    def __aiter__(self) -> AsyncIterator[Any]: ...
    def close(self) -> None: ...


class FrameSource(Protocol):
    """A feed's decoded frames (`hub.tap.FeedTap` fits)."""

    def frames(self, max_items: int = 2) -> FrameStream: ...


class FeedMonitor:
    """Watches feeds: health per department (events to `emit`), latest frames into the wall.

    Each decoded frame is counted for fps and liveness; a gray copy is analysed at the
    health sampling rate; a BGR copy goes to the wall at most `wall_fps` times a second.
    `run_ticker()` reports feeds that stop delivering frames (or never start) as lost.
    """

    def __init__(
        self,
        emit: Emit,
        wall: VideoWall | None = None,
        config: HealthConfig | None = None,
        wall_fps: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        on_other: Callable[[HealthEvent], None] | None = None,
    ) -> None:
        self.health = HealthMonitor(config)
        self.wall = wall
        self.emit = emit
        self.wall_fps = wall_fps
        self.clock = clock
        self.on_other = on_other
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wall_last: dict[str, float] = {}

    def watch(self, dept: str, source: FrameSource) -> asyncio.Task[None]:
        """Start watching `dept`'s feed (replaces an earlier watch of the same department)."""
        old = self._tasks.pop(dept, None)
        if old is not None:
            old.cancel()
        self.health.add(dept, self.clock())
        task = asyncio.ensure_future(self._consume(dept, source))
        self._tasks[dept] = task
        return task

    async def run_ticker(self) -> None:
        """Periodic lost detection at the health sampling rate (run as a task; cancel to stop)."""
        period = 1.0 / self.health.config.sample_fps
        while True:
            self.handle(self.health.tick(self.clock()))
            await asyncio.sleep(period)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def uptime(self) -> dict[str, float]:
        return self.health.uptime(self.clock())

    def process(self, dept: str, frame: VideoFrame) -> list[HealthEvent]:
        """One decoded frame of `dept` (called for every frame)."""
        t = self.clock()
        feed = self.health.add(dept, t)
        events = feed.count(t)
        if feed.due(t):
            events += feed.observe(t, to_gray(frame))
        if self.wall is not None:
            last = self._wall_last.get(dept)
            if last is None or t - last >= 0.95 / self.wall_fps:
                self._wall_last[dept] = t
                self.wall.update(dept, to_bgr(frame))
        self.handle(events)
        return events

    def handle(self, events: list[HealthEvent]) -> None:
        """Log the events and show them on the wall."""
        for ev in events:
            if self.wall is not None and ev.kind != RESOLUTION:
                if ev.kind == RESTORED:
                    self.wall.set_state(ev.dept, frozen=False, black=False, lost=False)
                else:
                    state = ev.kind.removeprefix("video.")
                    flags = {"frozen": False, "black": False, "lost": False, state: True}
                    self.wall.set_state(ev.dept, **flags)
            if ev.kind in LOGGED:
                self.emit(ev.kind, ev.payload())
            elif self.on_other is not None:
                self.on_other(ev)

    async def _consume(self, dept: str, source: FrameSource) -> None:
        stream = source.frames()
        try:
            async for frame in stream:
                self.process(dept, frame)
        finally:
            stream.close()
            # no more frames: the ticker reports the feed lost after lost_after_s
            if self._tasks.get(dept) is asyncio.current_task():
                del self._tasks[dept]

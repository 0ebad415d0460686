"""Shell around health and the wall: reads a feed's forwarded frames and sampled pictures,
emits health events, feeds the wall's tiles while the wall is in use."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from av import VideoFrame

from media.encoded import coded_bytes
from media.frames import to_bgr, to_gray
from media.health import (
    RESOLUTION,
    RESTORED,
    HealthConfig,
    HealthEvent,
    HealthMonitor,
    analyse,
)
from media.wall import VideoWall

Emit = Callable[[HealthEvent], None]
TICK_S = 0.25  # how often lost / held verdicts are checked
SHED_WALL_FPS = 1.0  # while shedding (a starved hub): wall tile updates a second per feed
SHED_SAMPLE_S = 2.0  # while shedding: at most one sample per feed this often is asked / judged


class Stream(Protocol):
    def __aiter__(self) -> AsyncIterator[Any]: ...
    def close(self) -> None: ...


class Packet(Protocol):
    """An encoded frame as forwarded (`media.encoded.EncodedPacket` fits)."""

    @property
    def data(self) -> bytes: ...
    @property
    def codec(self) -> str: ...
    @property
    def keyframe(self) -> bool: ...


class PictureSample(Protocol):
    """A decoded picture of a feed (`hub.sfu.tap.Sample` fits): a `VideoFrame`, or for the wall
    its BGR pixels, and when its frame arrived (monotonic clock)."""

    @property
    def frame(self) -> Any: ...
    @property
    def t(self) -> float: ...


class FeedSource(Protocol):
    """One feed's frames (`hub.sfu.tap.FeedTap` fits)."""

    def listen(self, fn: Callable[[Any], None]) -> Callable[[], None]: ...
    def samples(self, max_items: int = 2) -> Stream: ...
    def request_sample(self, within: float = 0.0) -> None: ...
    def frames(self, max_items: int = 2, *, max_fps: Callable[[], float] | None = None,
               convert: Callable[[Any], Any] | None = None) -> Stream: ...


@dataclass
class _Watch:
    source: FeedSource
    stop_listening: Callable[[], None]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    wall_task: asyncio.Task[None] | None = None


class FeedMonitor:
    """Health of the live feeds (events to `emit`) and their pictures on the wall.

    `start_feed(dept, source)` when a department's feed goes live, `end_feed(dept)` when it
    ends (deliberately or not: the hub logs the connection side; health just stops). Every
    forwarded frame feeds the health state machine with its size and arrival (no decoding);
    a decoded sample is asked for when the state machine wants one. The wall's tiles need
    every frame decoded: that runs only while `wall_active` (someone watches or records it),
    at most `wall_fps` tile updates a second per feed. While `shedding` (the hub is starved of
    CPU) the tiles update at SHED_WALL_FPS and a feed's picture is judged every SHED_SAMPLE_S
    at most; the stream itself (frame sizes, arrivals) is still judged frame by frame.
    """

    def __init__(
        self,
        emit: Emit,
        wall: VideoWall | None = None,
        config: HealthConfig | None = None,
        wall_fps: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        judge: bool = True,
    ) -> None:
        self.health = HealthMonitor(config)
        self.judge = judge  # False: the wall only (no health, so no samples asked for)
        self.wall = wall
        self.emit = emit
        self.wall_fps = wall_fps
        self.clock = clock
        self.wall_active = False
        self.shedding = False
        self._watches: dict[str, _Watch] = {}
        self._wall_last: dict[str, float] = {}
        self._asked: dict[str, float] = {}  # dept -> when a sample was last asked for (shedding)
        self._judged: dict[str, float] = {}  # dept -> when a sample was last judged (shedding)

    # -- feeds ------------------------------------------------------------------------------

    def start_feed(self, dept: str, source: FeedSource) -> None:
        """`dept`'s feed went live (replaces an earlier watch of the department)."""
        self.end_feed(dept)
        if self.judge:
            self.health.add(dept, self.clock())
            watch = _Watch(source, source.listen(lambda packet: self.on_packet(dept, packet)))
            watch.tasks.append(asyncio.ensure_future(self._consume_samples(dept, source)))
        else:
            watch = _Watch(source, lambda: None)
        self._watches[dept] = watch
        if self.wall_active and self._on_wall(dept):
            watch.wall_task = asyncio.ensure_future(self._consume_frames(dept, source))

    def end_feed(self, dept: str) -> None:
        """`dept`'s feed ended: no more health events for it, its wall flags cleared."""
        watch = self._watches.pop(dept, None)
        if watch is None:
            return
        watch.stop_listening()
        for task in [*watch.tasks, watch.wall_task]:
            if task is not None:
                task.cancel()
        self.health.end(dept, self.clock())
        if self.wall is not None:
            self.wall.set_state(dept, frozen=False, black=False, lost=False)

    def set_wall_active(self, active: bool) -> None:
        """Decode every frame of the live feeds for the wall (True) or stop doing so."""
        if active == self.wall_active:
            return
        self.wall_active = active
        for dept, watch in self._watches.items():
            if active and watch.wall_task is None and self._on_wall(dept):
                watch.wall_task = asyncio.ensure_future(self._consume_frames(dept, watch.source))
            elif not active and watch.wall_task is not None:
                watch.wall_task.cancel()
                watch.wall_task = None

    def set_shedding(self, on: bool) -> None:
        """Shed media work (fewer samples, a slower wall) while the hub is starved, or stop."""
        self.shedding = on

    @property
    def tile_fps(self) -> float:
        """Wall tile updates a second per feed, now."""
        return min(self.wall_fps, SHED_WALL_FPS) if self.shedding else self.wall_fps

    def _may_sample(self, dept: str, t: float, book: dict[str, float]) -> bool:
        """Whether to ask for (or judge) a sample of `dept` now, noted in `book`: always,
        unless shedding."""
        if not self.shedding:
            return True
        last = book.get(dept)
        if last is not None and t - last < SHED_SAMPLE_S:
            return False
        book[dept] = t
        return True

    def _on_wall(self, dept: str) -> bool:
        """Whether `dept` has a tile (the commander's own feed, say, has none: not decoded)."""
        return self.wall is not None and self.wall.tile_rect(dept) is not None

    @property
    def watched(self) -> list[str]:
        return list(self._watches)

    # -- inputs -----------------------------------------------------------------------------

    def on_packet(self, dept: str, packet: Packet) -> None:
        """A forwarded frame of `dept` (every one, on the event loop: cheap)."""
        feed = self.health.feeds.get(dept)
        watch = self._watches.get(dept)
        if feed is None or watch is None:
            return
        t = self.clock()
        self.handle(feed.frame(t, coded_bytes(packet.codec, packet.data), packet.keyframe))
        if feed.due(t) and self._may_sample(dept, t, self._asked):
            watch.source.request_sample(within=feed.sample_period())

    def on_sample(self, dept: str, sample: PictureSample) -> list[HealthEvent]:
        """A decoded picture of `dept`: analysed (a 32x24 thumbnail of the luma) and judged."""
        feed = self.health.feeds.get(dept)
        t = self.clock()
        if feed is None or not self._may_sample(dept, t, self._judged):
            return []
        # a keyframe decoded on its own says its size: a grey decode of a big one is no
        # black picture; the frame next to it says whether the picture moves now
        # (FeedHealth.sample)
        neighbour = getattr(sample, "neighbour", None)
        events = feed.sample(t, analyse(to_gray(sample.frame), feed.config),
                             key_bytes=getattr(sample, "key_bytes", None),
                             neighbour=None if neighbour is None
                             else analyse(to_gray(neighbour), feed.config))
        self.handle(events)
        return events

    def on_frame(self, dept: str, frame: VideoFrame | np.ndarray, t: float | None = None) -> None:
        """A decoded frame of `dept` for the wall (at most `wall_fps` a second are used), or
        its BGR pixels; `t` when it arrived (default: now)."""
        if self.wall is None:
            return
        t = self.clock() if t is None else t
        last = self._wall_last.get(dept)
        if last is None or t - last >= 0.95 / self.tile_fps:
            self._wall_last[dept] = t
            self.wall.update(dept, frame if isinstance(frame, np.ndarray) else to_bgr(frame))

    async def run_ticker(self) -> None:
        """Lost detection, held verdicts and due samples (run as a task; cancel to stop)."""
        while True:
            t = self.clock()
            self.handle(self.health.tick(t))
            for dept, watch in self._watches.items():
                feed = self.health.feeds.get(dept)
                if feed is not None and feed.due(t) and self._may_sample(dept, t, self._asked):
                    watch.source.request_sample(within=feed.sample_period())
            await asyncio.sleep(TICK_S)

    async def stop(self) -> None:
        tasks = [t for w in self._watches.values() for t in [*w.tasks, w.wall_task] if t]
        for dept in list(self._watches):
            self.end_feed(dept)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def uptime(self) -> dict[str, float]:
        return self.health.uptime(self.clock())

    # -- outputs ----------------------------------------------------------------------------

    def handle(self, events: list[HealthEvent]) -> None:
        """Show the events on the wall and hand them to `emit`."""
        for ev in events:
            if self.wall is not None and ev.kind != RESOLUTION:
                if ev.kind == RESTORED:
                    self.wall.set_state(ev.dept, frozen=False, black=False, lost=False)
                else:
                    state = ev.kind.removeprefix("video.")
                    flags = {"frozen": False, "black": False, "lost": False, state: True}
                    self.wall.set_state(ev.dept, **flags)
            self.emit(ev)

    @staticmethod
    async def _consume(stream: Stream, handle: Callable[[Any], Any]) -> None:
        try:
            async for item in stream:
                handle(item)
        finally:
            stream.close()

    def _consume_samples(self, dept: str, source: FeedSource) -> Any:
        return self._consume(source.samples(), lambda s: self.on_sample(dept, s))

    def _consume_frames(self, dept: str, source: FeedSource) -> Any:
        """The wall's frames of `dept`: picked (at `wall_fps`), converted and scaled to the
        tile where decoded."""
        self._wall_last.pop(dept, None)  # the tap picks by arrival time from here on
        wall = self.wall
        assert wall is not None  # only feeds with a tile get here

        def convert(frame: VideoFrame) -> np.ndarray:  # in the decoding thread, not the loop
            return wall.fit(dept, to_bgr(frame))

        stream = source.frames(max_fps=lambda: self.tile_fps, convert=convert)
        return self._consume(stream, lambda s: self.on_frame(dept, s.frame, s.t))

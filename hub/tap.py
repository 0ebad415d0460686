"""Shared access to one feed for media/ (health, wall, recording): encoded packets, decoded once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av

from hub.forward import EncodedPacket

if TYPE_CHECKING:
    from hub.peers import PacketSource

MAX_BACKLOG_S = 1.0


class TapClosedError(Exception):
    """The tap was closed (hub shutting down)."""


class _Subscription:
    """A bounded stream of items; when it lags more than `max_items`, the oldest are dropped."""

    def __init__(self, owner: set[_Subscription], max_items: int) -> None:
        self._owner = owner
        self._items: deque[Any] = deque(maxlen=max_items)
        self._ready = asyncio.Event()
        self.closed = False
        owner.add(self)

    def put(self, item: Any) -> None:
        self._items.append(item)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._owner.discard(self)
        self._ready.set()

    async def get(self) -> Any:
        while not self._items:
            if self.closed:
                raise TapClosedError
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        try:
            while True:
                yield await self.get()
        except TapClosedError:
            return


class FeedTap:
    """One department's video feed, for every media consumer.

    `packets()` gives the encoded frames as forwarded (for recording without re-encoding);
    `frames()` gives decoded `av.VideoFrame`s, decoded once in one worker thread shared by
    all frame subscribers, and only while there is at least one. The tap outlives the
    publisher's peer connection: after a reconnect it continues with the new one.
    """

    def __init__(self, dept: str, request_keyframe: Callable[[], None]) -> None:
        self.dept = dept
        self._request_keyframe = request_keyframe
        self._packet_subs: set[_Subscription] = set()
        self._frame_subs: set[_Subscription] = set()
        self._listeners: list[Callable[[EncodedPacket], None]] = []
        self._pending: deque[EncodedPacket] = deque()
        self._wake = asyncio.Event()
        self._decoder_task: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._waiting_keyframe = True
        self.latest_frame: av.VideoFrame | None = None
        self.latest_frame_at: float | None = None
        self.frames_decoded = 0
        self.decode_errors = 0
        self.closed = False

    @property
    def active(self) -> bool:
        return bool(self._packet_subs or self._frame_subs)

    def packets(self, max_items: int = 256) -> _Subscription:
        """Subscribe to encoded frames (`EncodedPacket`); iterate with `async for`, then close()."""
        self._check_open()
        return _Subscription(self._packet_subs, max_items)

    def frames(self, max_items: int = 2) -> _Subscription:
        """Subscribe to decoded frames (`av.VideoFrame`); iterate with `async for`, then close()."""
        self._check_open()
        sub = _Subscription(self._frame_subs, max_items)
        if self._decoder_task is None:
            self._waiting_keyframe = True
            self._executor = concurrent.futures.ThreadPoolExecutor(1, f"tap-{self.dept}")
            self._decoder_task = asyncio.ensure_future(self._decode_loop())
            self._request_keyframe()
        return sub

    def attach(self, source: PacketSource) -> None:
        """Receive `source`'s frames: once each, however often the source is attached."""
        if self.on_packet not in source.taps:
            source.taps.append(self.on_packet)

    def listen(self, callback: Callable[[EncodedPacket], None]) -> None:
        """Call `callback(packet)` for every frame, as it is forwarded (keep it cheap: a queue put)."""
        self._listeners.append(callback)

    def request_keyframe(self) -> None:
        """Ask the feed's publisher for a keyframe (rate-limited by the publisher's source)."""
        self._request_keyframe()

    def _check_open(self) -> None:
        if self.closed:
            raise TapClosedError(f"tap {self.dept} closed")

    def on_packet(self, packet: EncodedPacket) -> None:
        """Called by the hub for every frame of this feed."""
        for listener in self._listeners:
            listener(packet)
        for sub in self._packet_subs:
            sub.put(packet)
        if not self._frame_subs:
            return
        if self._waiting_keyframe:
            if not packet.keyframe:
                self._request_keyframe()
                return
            self._waiting_keyframe = False
        if self._pending and packet.arrival - self._pending[0].arrival > MAX_BACKLOG_S:
            self._pending.clear()  # decoding cannot keep up: restart at a keyframe
            self._waiting_keyframe = True
            self._request_keyframe()
            return
        self._pending.append(packet)
        self._wake.set()

    async def _decode_loop(self) -> None:
        loop = asyncio.get_running_loop()
        codec_name: str | None = None
        context: Any = None
        try:
            while self._frame_subs and not self.closed:
                if not self._pending:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), 1.0)
                    except TimeoutError:
                        continue
                    continue
                packet = self._pending.popleft()
                if packet.codec != codec_name:
                    codec_name = packet.codec
                    context = av.CodecContext.create(
                        "libvpx" if codec_name == "VP8" else codec_name.lower(), "r"
                    )
                frames = await loop.run_in_executor(self._executor, _decode, context, packet)
                if frames is None:
                    self.decode_errors += 1
                    self._waiting_keyframe = True
                    self._pending.clear()
                    self._request_keyframe()
                    continue
                for frame in frames:
                    self.frames_decoded += 1
                    self.latest_frame = frame
                    self.latest_frame_at = time.monotonic()
                    for sub in list(self._frame_subs):
                        sub.put(frame)
        finally:
            self._decoder_task = None
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    def close(self) -> None:
        self.closed = True
        for sub in list(self._packet_subs | self._frame_subs):
            sub.close()
        self._wake.set()
        if self._decoder_task is not None:
            self._decoder_task.cancel()


def _decode(context: Any, packet: EncodedPacket) -> list[av.VideoFrame] | None:
    av_packet: av.Packet[Any] = av.Packet(packet.data)
    av_packet.pts = packet.pts
    av_packet.time_base = Fraction(1, packet.clock_rate)
    try:
        return list(context.decode(av_packet))
    except av.FFmpegError:
        return None

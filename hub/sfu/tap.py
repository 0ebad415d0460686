"""Shared access to one feed for media/ (health, wall, recording): encoded packets, sampled
pictures (a keyframe decoded now and then), every frame decoded once while someone needs that."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av

from media.encoded import EncodedPacket, coded_bytes, h264_nal_types

if TYPE_CHECKING:
    from hub.sfu.peers import PacketSource

MAX_BACKLOG_S = 1.0
MAX_SAMPLE_FPS = 2.0  # decoded samples per second at most (natural and requested keyframes)
DECODERS = {"VP8": "vp8", "H264": "h264"}
DECODE_THREADS = 2  # threads that decode every frame of the taps with frame subscribers
DECODE_POLL_S = 0.04  # how often they look for queued frames (the loop never wakes them)
_decode_threads: list[_DecodeThread] = []
_decode_lock = threading.Lock()
# keyframes to decode on their own (samples), with the frame after each: (tap, packet, data,
# next frame's data), taken by the decoding threads at their next poll (a thread woken per
# sample, run_in_executor, cost the loop more)
_sample_jobs: deque[tuple[FeedTap, EncodedPacket, bytes, bytes]] = deque()


@dataclass(frozen=True)
class Sample:
    """A decoded picture of a feed: `t` is when its frame arrived (hub monotonic clock).
    `frame` is an `av.VideoFrame`, or what a `frames(convert=...)` subscriber made of it;
    `neighbour` the frame next to it in the stream (just before or after), for a sample: a
    picture moving now differs from it, whatever an earlier sample showed."""

    frame: Any
    t: float
    keyframe: bool
    key_bytes: int | None = None  # decoded on its own from a keyframe of this many coded bytes
    neighbour: Any = None


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


class _FrameSubscription(_Subscription):
    """Decoded frames at most `max_fps()` a second (by arrival), each passed through `convert`
    in the decoding thread (e.g. to the BGR pixels the wall scales)."""

    def __init__(self, owner: set[_Subscription], max_items: int,
                 max_fps: Callable[[], float] | None, convert: Callable[[Any], Any] | None) -> None:
        super().__init__(owner, max_items)
        self.max_fps = max_fps
        self.convert = convert
        self.last_t: float | None = None  # arrival of the last frame taken (decoding thread)

    def take(self, t: float) -> bool:
        """Whether the frame that arrived at `t` is for this subscriber (decoding thread)."""
        if self.closed:
            return False
        rate = self.max_fps() if self.max_fps is not None else 0.0
        if rate > 0 and self.last_t is not None and t - self.last_t < 0.95 / rate:
            return False
        self.last_t = t
        return True


class _DecodeThread:
    """Decodes, in order, the frames queued by its taps; found by polling every DECODE_POLL_S
    (a hand-off per frame, waking a thread from the event loop, costs the loop more than the
    decoding saves), results handed back to each tap's loop once per round."""

    def __init__(self, name: str) -> None:
        self.taps: list[FeedTap] = []
        self._contexts: dict[int, tuple[str, Any]] = {}  # id(tap) -> (codec, decoder)
        self._previous: dict[int, Any] = {}  # id(tap) -> the frame it decoded last
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(DECODE_POLL_S)
            self._decode_samples()
            for tap in list(self.taps):
                if tap.closed:
                    self.taps.remove(tap)
                    self._contexts.pop(id(tap), None)
                    self._previous.pop(id(tap), None)
                    continue
                if tap._pending and tap._loop is not None:
                    results = self._decode_pending(tap)
                    if results:
                        with contextlib.suppress(RuntimeError):  # its loop is closed
                            tap._loop.call_soon_threadsafe(tap._deliver, results)

    @staticmethod
    def _decode_samples() -> None:
        """Decode the queued sample keyframes; hand them back, one call per event loop."""
        done: dict[asyncio.AbstractEventLoop, list[tuple[FeedTap, EncodedPacket, Any, Any]]] = {}
        while True:
            try:
                tap, packet, data, following = _sample_jobs.popleft()
            except IndexError:
                break
            if tap._loop is not None:
                done.setdefault(tap._loop, []).append(
                    (tap, packet, *_decode_keyframe(packet.codec, data, following)))
        for loop, results in done.items():
            with contextlib.suppress(RuntimeError):  # its loop is closed
                loop.call_soon_threadsafe(_deliver_samples, results)

    def _decode_pending(self, tap: FeedTap) -> list[tuple[EncodedPacket, Any, list[Any], Any]]:
        results: list[tuple[EncodedPacket, Any, list[Any], Any]] = []
        while True:
            try:
                packet = tap._pending.popleft()
            except IndexError:
                return results
            codec, context = self._contexts.get(id(tap), ("", None))
            if codec != packet.codec or context is None:
                context = av.CodecContext.create(DECODERS.get(packet.codec, "vp8"), "r")
                self._contexts[id(tap)] = (packet.codec, context)
            frames = _decode(context, packet)
            if frames is None:
                del self._contexts[id(tap)]  # a decoder that failed may be stuck (EOF): afresh
                self._previous.pop(id(tap), None)
                results.append((packet, None, [], None))
                continue
            subs = tap._frame_specs
            for frame in frames:
                tap.frames_decoded += 1
                items = [(sub, Sample(sub.convert(frame) if sub.convert else frame,
                                      packet.arrival, packet.keyframe))
                         for sub in subs if sub.take(packet.arrival)]
                previous, self._previous[id(tap)] = self._previous.get(id(tap)), frame
                if items or tap._sample_wanted or (tap._sample_subs
                                                   and tap._sample_due(packet.arrival)):
                    results.append((packet, frame, items, previous))


def _decode_thread(index: int) -> _DecodeThread:
    with _decode_lock:
        while len(_decode_threads) < DECODE_THREADS:
            _decode_threads.append(_DecodeThread(f"tap-decode-{len(_decode_threads)}"))
    return _decode_threads[index % DECODE_THREADS]


_tap_numbers = itertools.count()  # spreads the taps over the decoding threads


def _deliver_samples(results: list[tuple[FeedTap, EncodedPacket, Any, Any]]) -> None:
    """On the loop: the sample keyframes (and the frames after them) decoded in a thread."""
    for tap, packet, frame, following in results:
        tap._sampled(packet, frame, following)


class FeedTap:
    """One department's video feed, for every media consumer.

    - `listen(fn)`: `fn(packet)` for every forwarded frame, synchronously (cheap observers:
      health reads sizes and arrival times).
    - `packets()`: the encoded frames as forwarded (for recording without re-encoding).
    - `samples()` / `request_sample()` / `fresh_sample()`: decoded pictures now and then, at
      most MAX_SAMPLE_FPS a second: a keyframe decoded on its own (one the publisher sent, or
      one `request_sample` asks it for), or, while every frame is decoded anyway for
      `frames()`, the next decoded frame.
    - `frames()`: every frame decoded, once, in a decoding thread (DECODE_THREADS shared by
      all taps), and only while there is a frame subscriber (the wall); each subscriber gets
      them at the rate it asks for, converted in that thread.

    The tap outlives the publisher's peer connection: after a reconnect it continues with the
    new one.
    """

    def __init__(self, dept: str, request_keyframe: Callable[[], None]) -> None:
        self.dept = dept
        self._request_keyframe = request_keyframe
        self._listeners: list[Callable[[EncodedPacket], None]] = []
        self._packet_subs: set[_Subscription] = set()
        self._frame_subs: set[_Subscription] = set()
        self._sample_subs: set[_Subscription] = set()
        self._sample_wanted = False
        self._sampling = False  # a keyframe is being decoded
        self._sample_key: tuple[EncodedPacket, bytes] | None = None  # waits for the next frame
        self._sample_waiters: list[asyncio.Future[Sample]] = []
        self._parameter_sets = b""  # the latest H264 SPS/PPS, for an IDR that comes without
        self.latest_sample: Sample | None = None
        self.samples_decoded = 0
        self.sample_requests = 0
        self._pending: deque[EncodedPacket] = deque()  # frames for the decoding thread
        self._frame_specs: tuple[_FrameSubscription, ...] = ()  # what that thread reads
        self._decoder: _DecodeThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting_keyframe = True
        self._last_t = 0.0  # arrival of the latest frame
        self._last_key_t: float | None = None  # arrival of the latest keyframe
        self._asked_since_key = False  # a keyframe was asked for since the latest one came
        self.natural_key_s: float | None = None  # the publisher's own keyframe interval, if seen
        self.frames_decoded = 0
        self.decode_errors = 0
        self.closed = False

    @property
    def active(self) -> bool:
        return bool(self._packet_subs or self._frame_subs or self._sample_subs or self._listeners)

    def listen(self, fn: Callable[[EncodedPacket], None]) -> Callable[[], None]:
        """Call `fn` with every frame from now on; returns the function that stops it."""
        self._listeners.append(fn)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(fn)
        return stop

    def samples(self, max_items: int = 2) -> _Subscription:
        """Subscribe to sampled pictures (`Sample`); iterate with `async for`, then close()."""
        self._check_open()
        return _Subscription(self._sample_subs, max_items)

    def request_sample(self, within: float = 0.0) -> None:
        """Have the next picture decoded: the next frame while all are decoded, else the next
        keyframe, which the publisher is asked for (rate-limited by its source) unless its own
        keyframes come every `within` s or more often and the next is not overdue (a camera
        with a short GOP is then sampled at its keyframes, never sent a PLI)."""
        if self.closed:
            return
        if not self._sample_wanted:
            self.sample_requests += 1
        self._sample_wanted = True
        if not self._frame_subs and not self._keyframe_expected(within):
            self._ask_keyframe()

    def _keyframe_expected(self, within: float) -> bool:
        """The publisher's own keyframes come every `within` s or more often, the next is due."""
        cadence, last = self.natural_key_s, self._last_key_t
        if cadence is None or last is None or cadence > within:
            return False
        if self._last_t - last <= 1.25 * cadence:
            return True
        self.natural_key_s = None  # overdue: the cadence did not hold (learnt again when it does)
        return False

    def _ask_keyframe(self) -> None:
        self._asked_since_key = True
        self._request_keyframe()

    async def fresh_sample(self, max_age: float = 1.0, timeout: float = 2.0,
                           fallback_age: float = 10.0) -> Sample | None:
        """A picture at most `max_age` s old, decoding a new one if needed (waiting up to
        `timeout`); else the latest one if younger than `fallback_age`; None if there is none."""
        latest = self.latest_sample
        if latest is not None and time.monotonic() - latest.t <= max_age:
            return latest
        if not self.closed:
            waiter: asyncio.Future[Sample] = asyncio.get_running_loop().create_future()
            self._sample_waiters.append(waiter)
            self.request_sample()
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(waiter, timeout)
        latest = self.latest_sample
        if latest is not None and time.monotonic() - latest.t <= fallback_age:
            return latest
        return None

    def packets(self, max_items: int = 256) -> _Subscription:
        """Subscribe to encoded frames (`EncodedPacket`); iterate with `async for`, then close()."""
        self._check_open()
        return _Subscription(self._packet_subs, max_items)

    def frames(self, max_items: int = 2, *, max_fps: Callable[[], float] | None = None,
               convert: Callable[[Any], Any] | None = None) -> _Subscription:
        """Subscribe to decoded frames (`Sample`s of `av.VideoFrame`, or of `convert(frame)`),
        at most `max_fps()` a second; iterate with `async for`, then close()."""
        self._check_open()
        starting = not self._frame_subs
        sub = _FrameSubscription(self._frame_subs, max_items, max_fps, convert)
        self._frame_specs = (*self._frame_specs, sub)
        if self._decoder is None:
            self._loop = asyncio.get_running_loop()
            self._decoder = _decode_thread(next(_tap_numbers))
            self._decoder.taps.append(self)
        if starting:
            self._pending.clear()
            self._waiting_keyframe = True
            self._ask_keyframe()
        return sub

    def attach(self, source: PacketSource) -> None:
        """Receive `source`'s frames: once each, however often the source is attached."""
        if self.on_packet not in source.taps:
            source.taps.append(self.on_packet)

    def request_keyframe(self) -> None:
        """Ask the feed's publisher for a keyframe (rate-limited by the publisher's source)."""
        self._ask_keyframe()

    def _check_open(self) -> None:
        if self.closed:
            raise TapClosedError(f"tap {self.dept} closed")

    def on_packet(self, packet: EncodedPacket) -> None:
        """Called by the hub for every frame of this feed."""
        self._last_t = packet.arrival
        if packet.keyframe:
            if self._last_key_t is not None and not self._asked_since_key:
                self.natural_key_s = packet.arrival - self._last_key_t
            self._last_key_t, self._asked_since_key = packet.arrival, False
        for fn in list(self._listeners):
            fn(packet)
        for sub in self._packet_subs:
            sub.put(packet)
        if packet.keyframe and packet.codec == "H264":
            self._keep_parameter_sets(packet.data)
        if not self._frame_subs:
            if self._frame_specs:
                self._frame_specs = ()  # the last frame subscriber left: decoding stops
            if self._sample_key is not None:
                self._decode_sample(packet)
            elif packet.keyframe and self._wants_keyframe(packet.arrival):
                self._keep_sample_key(packet)
            return
        if self._waiting_keyframe:
            if not packet.keyframe:
                self._ask_keyframe()
                return
            self._waiting_keyframe = False
        pending = self._pending
        try:
            oldest = pending[0].arrival
        except IndexError:  # empty (the decoding thread may just have taken the last one)
            oldest = packet.arrival
        if packet.arrival - oldest > MAX_BACKLOG_S:
            pending.clear()  # decoding cannot keep up: restart at a keyframe
            self._waiting_keyframe = True
            self._ask_keyframe()
            return
        pending.append(packet)

    def _deliver(self, results: list[tuple[EncodedPacket, Any, list[Any], Any]]) -> None:
        """On the loop: what the decoding thread made of the queued frames."""
        if self.closed:
            return
        self._frame_specs = tuple(s for s in self._frame_specs if not s.closed)
        for packet, frame, items, previous in results:
            if frame is None:  # the decoder failed: start again at a keyframe
                self.decode_errors += 1
                self._waiting_keyframe = True
                self._pending.clear()
                self._ask_keyframe()
                continue
            for sub, item in items:
                if not sub.closed:
                    sub.put(item)
            if self._sample_wanted or (self._sample_subs and self._sample_due(packet.arrival)):
                self._publish_sample(Sample(frame, packet.arrival, packet.keyframe,
                                            neighbour=previous))

    # -- sampled pictures ----------------------------------------------------------------------

    def _sample_due(self, t: float) -> bool:
        latest = self.latest_sample
        return latest is None or t - latest.t >= 0.95 / MAX_SAMPLE_FPS

    def _wants_keyframe(self, t: float) -> bool:
        """Decode this keyframe? When a sample was asked for, or a subscriber takes the
        publisher's own keyframes (at most MAX_SAMPLE_FPS); one decode at a time."""
        if self._sampling:
            return False
        return self._sample_wanted or bool(self._sample_subs and self._sample_due(t))

    def _keep_parameter_sets(self, data: bytes) -> None:
        sets = _h264_parameter_sets(data)
        if sets:
            self._parameter_sets = sets

    def _keep_sample_key(self, packet: EncodedPacket) -> None:
        """A keyframe to sample: decoded with the frame after it, once that comes."""
        self._sampling = True
        prefix = b""
        if packet.codec == "H264" and 7 not in h264_nal_types(packet.data):
            prefix = self._parameter_sets
        self._sample_key = (packet, prefix + packet.data)

    def _decode_sample(self, following: EncodedPacket) -> None:
        """Queue the kept keyframe and `following` (the next frame) for a decoding thread."""
        assert self._sample_key is not None
        packet, data = self._sample_key
        self._sample_key = None
        after = following.data if following.codec == packet.codec else b""
        self._loop = self._loop or asyncio.get_running_loop()
        _decode_thread(0)  # the decoding threads exist
        _sample_jobs.append((self, packet, data, after))

    def _sampled(self, packet: EncodedPacket, frame: av.VideoFrame | None,
                 following: av.VideoFrame | None) -> None:
        """On the loop: a sample keyframe decoded (None: it could not be), and the frame
        after it (None: not decoded)."""
        self._sampling = False
        if frame is None:
            self.decode_errors += 1
        elif not self.closed:
            self._publish_sample(Sample(frame, packet.arrival, True,
                                        coded_bytes(packet.codec, packet.data), following))

    def _publish_sample(self, sample: Sample) -> None:
        self._sample_wanted = False
        self.samples_decoded += 1
        self.latest_sample = sample
        for sub in list(self._sample_subs):
            sub.put(sample)
        waiters, self._sample_waiters = self._sample_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(sample)

    def close(self) -> None:
        self.closed = True
        for sub in list(self._packet_subs | self._frame_subs | self._sample_subs):
            sub.close()
        self._listeners.clear()
        self._pending.clear()
        self._frame_specs = ()
        for waiter in self._sample_waiters:
            waiter.cancel()


def _decode(context: Any, packet: EncodedPacket) -> list[av.VideoFrame] | None:
    if not packet.data:
        return []  # an empty packet would end the decoder's stream
    av_packet: av.Packet[Any] = av.Packet(packet.data)
    av_packet.pts = packet.pts
    av_packet.time_base = Fraction(1, packet.clock_rate)
    try:
        return list(context.decode(av_packet))
    except av.FFmpegError:
        return None


def _decode_keyframe(codec: str, data: bytes, following: bytes = b""
                     ) -> tuple[av.VideoFrame | None, av.VideoFrame | None]:
    """Decode one keyframe on its own, and the frame after it (`following`, if any), with a
    fresh decoder flushed at once (no output delay): (keyframe's picture, next picture)."""
    name = DECODERS.get(codec)
    if name is None or not data:
        return None, None
    try:
        context: Any = av.CodecContext.create(name, "r")
        frames = list(context.decode(av.Packet(data)))
    except av.FFmpegError:
        return None, None
    try:
        if following:
            frames += context.decode(av.Packet(following))
        frames += context.decode(None)
    except av.FFmpegError:
        pass  # the keyframe's picture stands alone
    if not frames:
        return None, None
    return frames[0], frames[1] if len(frames) > 1 else None


def _h264_parameter_sets(data: bytes) -> bytes:
    """The SPS and PPS NAL units of an Annex B access unit, with their start codes."""
    out = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        nxt = data.find(b"\x00\x00\x01", pos + 3)
        if data[pos + 3] & 0x1F in (7, 8):
            end = len(data) if nxt == -1 else nxt
            out.append(b"\x00" + data[pos:end].rstrip(b"\x00"))
        pos = nxt
    return b"".join(out)

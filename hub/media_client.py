"""Python media client (bots, tests, CLI): publishes a source to the hub and reads routed slots."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hub.client import HubClient
from hub.sfu import forward
from hub.sfu.ice import IceConfig

Signal = Callable[[str], Awaitable[str]]  # offer SDP -> answer SDP (WebSocket or VideoHub)
StampReader = Callable[[Any], Any]  # decoded frame -> stamp (media.stamp.read_frame_stamp)


class MediaClientError(Exception):
    """The client could not connect (signaling failed, no answer, peer connection failed)."""


@dataclass
class SlotView:
    """What one receive slot shows: frames, the department the hub says it carries, stamps."""

    index: int
    kind: str
    transceiver: RTCRtpTransceiver
    dept: str | None = None
    frames: int = 0
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    last_stamp: Any = None
    stamped_at: float | None = None
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    dept_changed_at: float | None = None


class MediaClient:
    """Joins the hub with one peer connection: 1 video + 1 audio sent, N video + M audio slots.

    Every received track is drained (aiortc decodes it); with `stamp_reader` each decoded
    video frame's stamp is read, giving the department seen and the one-way latency.
    """

    def __init__(
        self, *, ice: IceConfig, video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None, video_slots: int = 4, audio_slots: int = 1,
        codecs: tuple[str, ...] = ("video/VP8",), stamp_reader: StampReader | None = None,
        stamp_numbers: dict[int, str] | None = None, wall_clock: Callable[[], float] = time.time,
        read_every: int = 1,
    ) -> None:
        self.pc = RTCPeerConnection(ice.rtc_configuration())
        self._codecs = codecs
        self._stamp_reader = stamp_reader
        self._numbers = stamp_numbers or {}
        self._wall = wall_clock
        self._read_every = max(1, read_every)
        self.slots: dict[str, list[SlotView]] = {"video": [], "audio": []}
        self._tasks: list[asyncio.Task[None]] = []
        self.slot_updates = 0
        self.slot_version = 0
        for track in (video, audio):
            if track is not None:
                self._preferred(self.pc.addTransceiver(track, direction="sendonly"))
        for kind, count in (("video", video_slots), ("audio", audio_slots)):
            for i in range(count):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                self._preferred(transceiver)
                forward.install_low_latency(transceiver.receiver)
                self.slots[kind].append(SlotView(i, kind, transceiver))

    def _preferred(self, transceiver: RTCRtpTransceiver) -> None:
        if transceiver.kind != "video":
            return
        caps = RTCRtpSender.getCapabilities("video").codecs
        wanted = [c for mime in self._codecs for c in caps if c.mimeType.lower() == mime.lower()]
        rtx = [c for c in caps if c.mimeType.lower() == "video/rtx"]
        if wanted:
            transceiver.setCodecPreferences(wanted + rtx)

    async def connect(self, signal: Signal, timeout: float = 15.0) -> None:
        """Offer (fully gathered), get the answer through `signal`, wait until connected."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        local = self.pc.localDescription
        assert local is not None
        answer = await signal(local.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for kind, views in self.slots.items():
            for view in views:
                track = view.transceiver.receiver.track
                if track is not None:
                    reader = self._drain_video if kind == "video" else self._drain_audio
                    self._tasks.append(asyncio.ensure_future(reader(view, track)))
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if self.pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise MediaClientError(f"peer connection {self.pc.connectionState}")
            await asyncio.sleep(0.02)

    async def connect_over(self, client: HubClient, timeout: float = 15.0) -> None:
        """Connect through the hub's WebSocket: the `rtc.offer` request's ack carries the
        answer and the first slot map (later maps come as frames: see `on_frame`)."""

        async def signal(sdp: str) -> str:
            ack = await client.request("rtc.offer", sdp=sdp)
            self.apply_slots(ack.get("slots") or {})
            return str(ack["sdp"])

        await self.connect(signal, timeout)

    def on_frame(self, frame: dict[str, Any]) -> None:
        """Feed it the hub's frames (`HubClient.on_frame`): applies each `rtc.slots` map."""
        if frame.get("type") == "rtc.slots":
            self.apply_slots(frame)

    def apply_slots(self, info: dict[str, Any]) -> None:
        """Apply an `rtc.slots` frame: which department each slot carries (an older map than
        the one applied, by `version`, is ignored: frames and acks can cross)."""
        version = int(info.get("version", 0))
        if version < self.slot_version:
            return
        self.slot_version = version
        now = time.monotonic()
        self.slot_updates += 1
        for kind in ("video", "audio"):
            for entry in info.get(kind, []):
                index = int(entry["slot"])
                if 0 <= index < len(self.slots[kind]):
                    view = self.slots[kind][index]
                    if view.dept != entry.get("dept"):
                        view.dept = entry.get("dept")
                        view.dept_changed_at = now

    async def _drain_video(self, view: SlotView, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                view.frames += 1
                view.first_frame_at = view.first_frame_at or now
                view.last_frame_at = now
                view.frame_times.append(now)
                if self._stamp_reader is None or view.frames % self._read_every:
                    continue
                try:
                    stamp = self._stamp_reader(frame)
                except Exception:  # unreadable (e.g. a frame before the keyframe settled)
                    continue
                view.last_stamp = stamp
                view.stamped_at = now
                age = getattr(stamp, "time_ms", None)
                if age is not None:
                    view.latencies_ms.append(self._wall() * 1000 % (1 << 36) - age)

    async def _drain_audio(self, view: SlotView, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                view.frames += 1
                view.last_frame_at = time.monotonic()
                view.first_frame_at = view.first_frame_at or view.last_frame_at

    def seen(self, kind: str = "video", fresh: float = 1.0) -> dict[int, str | None]:
        """Slot -> department read from the stamp within the last `fresh` seconds."""
        now = time.monotonic()
        out: dict[int, str | None] = {}
        for view in self.slots[kind]:
            if view.stamped_at is not None and now - view.stamped_at <= fresh:
                number = int(getattr(view.last_stamp, "dept", -1))
                out[view.index] = self._numbers.get(number, str(number))
        return out

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()

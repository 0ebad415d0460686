"""One participant's peer connection at the hub: its published feeds and its receive slots."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver

from hub.sfu import forward
from media.encoded import EncodedPacket

Clock = Callable[[], float]
PLI_MIN_INTERVAL = 0.3  # seconds between keyframe requests to one publisher
RATE_WINDOW = 3.0  # seconds of arrivals kept for fps / bitrate


class PacketSource:
    """A published track at the hub: fans each encoded frame out to subscribers and taps."""

    def __init__(
        self, dept: str, kind: str, transceiver: RTCRtpTransceiver, clock: Clock
    ) -> None:
        self.dept = dept
        self.kind = kind
        self.transceiver = transceiver
        self.codec = forward.negotiated_codec(transceiver) or "?"
        self.subscribers: set[forward.ForwardTrack] = set()
        self.taps: list[Callable[[EncodedPacket], None]] = []
        self.on_first_frame: Callable[[], None] | None = None  # the feed starts (VideoHub)
        self._clock = clock
        self._last_pli = -1e9
        self._pli_tasks: set[asyncio.Task[bool]] = set()
        self._window: deque[tuple[float, int]] = deque()
        self.frames = 0
        self.keyframes = 0
        self.bytes = 0
        self.last_arrival: float | None = None
        self.freezes = 0
        self.closed = False
        # WebRTC video reaches subscribers packet by packet (`forward_rtp`), frames only taps
        self.rtp_forwarding = False

    def forward_rtp(self, packet: Any) -> None:
        """Sink of every RTP packet the publisher's receiver gets: on to each subscriber slot."""
        if self.closed:
            return
        ended = [track for track in self.subscribers if not track.push_rtp(packet, self.codec)]
        self.subscribers.difference_update(ended)  # stopped (a WHEP viewer that left)

    def deliver(self, packet: EncodedPacket) -> None:
        """Sink installed on the receiver: runs on the event loop for every complete frame."""
        if self.closed:
            return
        if self.frames == 0 and self.on_first_frame is not None:
            self.on_first_frame()
        if self.kind == "video" and self.last_arrival is not None and (
            packet.arrival - self.last_arrival > 0.5
        ):
            self.freezes += 1
        self.frames += 1
        self.keyframes += packet.keyframe
        self.bytes += len(packet.data)
        self.last_arrival = packet.arrival
        self._window.append((packet.arrival, len(packet.data)))
        while self._window and packet.arrival - self._window[0][0] > RATE_WINDOW:
            self._window.popleft()
        if not self.rtp_forwarding:
            for track in self.subscribers:
                track.push(packet)
        for tap in self.taps:
            tap(packet)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (PLI), at most every PLI_MIN_INTERVAL seconds."""
        now = self._clock()
        if self.closed or self.kind != "video" or now - self._last_pli < PLI_MIN_INTERVAL:
            return
        self._last_pli = now
        task = asyncio.ensure_future(forward.send_pli(self.transceiver.receiver))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    def rates(self) -> tuple[float, float]:
        """(frames per second, kilobits per second) over the recent window."""
        now = self._clock()
        recent = [(t, n) for t, n in self._window if now - t <= RATE_WINDOW]
        if len(recent) < 2:
            return 0.0, 0.0
        span = max(now - recent[0][0], 1e-3)
        return (len(recent) - 1) / span, sum(n for _, n in recent) * 8 / 1000 / span

    def close(self) -> None:
        self.closed = True
        for task in self._pli_tasks:
            task.cancel()
        self.subscribers.clear()
        self.taps.clear()


@dataclass
class Slot:
    """A receive slot of a participant: one sending transceiver at the hub, switched live."""

    index: int
    kind: str
    transceiver: RTCRtpTransceiver
    track: forward.ForwardTrack
    codecs: tuple[str, ...]  # what the hub may send on it (a VP8 or an H264 publisher, say)

    @property
    def source(self) -> str | None:
        return self.track.source


@dataclass
class Participant:
    """A participant's peer connection, what it publishes and its receive slots."""

    pid: str
    role: str
    dept: str | None
    pc: RTCPeerConnection
    joined: float
    published: dict[str, PacketSource] = field(default_factory=dict)  # kind -> source
    slots: dict[str, list[Slot]] = field(default_factory=lambda: {"video": [], "audio": []})
    connected: bool = False
    closing: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    source: str = "webrtc"  # how it publishes: "webrtc" (WebSocket signaling) or "whip"
    session: str = ""  # the publishing session named in media.published (WS session / WHIP id)
    slot_version: int = 0  # raised (hub-wide counter) whenever its slots change; clients drop older maps

    def slot_map(self, kind: str = "video") -> dict[int, str]:
        return {s.index: s.source for s in self.slots[kind] if s.source is not None}

    def all_slots(self) -> list[Slot]:
        return self.slots["video"] + self.slots["audio"]

    async def close(self) -> None:
        """Close the peer connection and release its transports, tasks and sources."""
        self.closing = True
        for source in self.published.values():
            source.close()
        for slot in self.all_slots():
            slot.track.stop()
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        await self.pc.close()

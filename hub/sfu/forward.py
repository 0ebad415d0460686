"""aiortc 1.16 (and pylibsrtp) internals for forwarding media without transcoding, in one place."""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import queue
import random
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import aioice.ice
import aioice.stun
import aiortc
import av
import pylibsrtp
from aiortc import RTCPeerConnection
from aiortc import clock as aiortc_clock
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import get_encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RTCP_RTPFB_NACK, HeaderExtensionsMap, RtcpRtpfbPacket, RtpPacket
from aiortc.utils import uint16_add
from pylibsrtp._binding import ffi as srtp_ffi

from hub.sfu import rtp
from media.encoded import EncodedPacket, is_keyframe

# The internals below were read from aiortc 1.16; pyproject pins aiortc>=1.16,<1.17.
SUPPORTED_AIORTC = ("1.16.",)

Clock = Callable[[], float]


class ForwardingUnsupportedError(Exception):
    """The installed aiortc is not a version whose internals this module was written against."""


def check_aiortc_version(version: str = aiortc.__version__) -> None:
    """Raise unless `version` is one whose receiver/sender internals forward.py knows."""
    if not any(version.startswith(prefix) for prefix in SUPPORTED_AIORTC):
        raise ForwardingUnsupportedError(
            f"aiortc {version} is not supported by hub/sfu/forward.py (needs {SUPPORTED_AIORTC})"
        )


class AioiceOriginal:
    """aioice's own methods, kept before install_consent_check() replaces them (their source
    is what check_internals() reads)."""

    query_consent = aioice.ice.Connection.query_consent


# What this module relies on inside aiortc, beyond its public API: (object, attribute or
# method, text its source must contain). check_internals() verifies every entry.
_SOURCE_FACTS: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (JitterBuffer, "add", ("self._remove_frame(packet.sequence_number)",)),
    (RTCRtpReceiver, "_handle_rtp_packet", ("self.__jitter_buffer.add(packet)",
                                            "self.__decoder_queue.put((codec, encoded_frame))",
                                            "packet._data = depayload(codec, packet.payload)",
                                            "packet = unwrap_rtx(packet, payload_type=apt")),
    (RTCRtpSender, "_next_encoded_frame", ("data = await self.__track.recv()",)),
    (RTCRtpSender, "_run_rtp", ("enc_frame = await self._next_encoded_frame(codec)",)),
    (RTCRtpSender, "send", ("self._run_rtp(parameters.codecs[0])",
                            "self.__rtp_header_extensions_map.configure(parameters)")),
    (RTCRtpSender, "_handle_rtcp_packet", ("self._send_keyframe()",
                                           "packet.fmt == RTCP_RTPFB_NACK")),
    (RTCRtpSender, "_run_rtcp", ("ntp_timestamp=self.__ntp_timestamp",
                                 "rtp_timestamp=self.__rtp_timestamp",
                                 "packet_count=self.__packet_count",
                                 "octet_count=self.__octet_count")),
    (RTCDtlsTransport, "_send_rtp", ("data = self._tx_srtp.protect(data)",
                                     "await self.transport._send(data)")),
    (pylibsrtp.Session, "__init__", ('self._cdata = ffi.new("char[]", 1500)',
                                     "self._buffer = ffi.buffer(self._cdata)")),
    (pylibsrtp.Session, "_Session__process", ("len(self._cdata) - trailer",)),
    (RTCDtlsTransport, "_handle_rtcp_data", ("await recipient._handle_rtcp_packet(packet)",)),
    (RTCCertificate, "_create_ssl_context", ("ctx.set_cipher_list(",)),
    (RTCDtlsTransport, "start", ('if self._role == "server":',)),
    (AioiceOriginal, "query_consent", ("retransmissions=0",
                                        "failures >= CONSENT_FAILURES",
                                        "return await self.close()")),
    (aioice.ice.Connection, "build_request", ("def build_request(self, pair",)),
)
_INSTANCE_FACTS = {
    "receiver": ("_RTCRtpReceiver__jitter_buffer", "_RTCRtpReceiver__decoder_queue",
                 "_RTCRtpReceiver__started", "_RTCRtpReceiver__kind",
                 "_RTCRtpReceiver__timestamp_mapper",
                 "_RTCRtpReceiver__active_ssrc", "_send_rtcp_pli"),
    "sender": ("_send_keyframe", "_handle_rtcp_packet", "_ssrc", "transport",
               "_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp",
               "_RTCRtpSender__packet_count", "_RTCRtpSender__octet_count"),
    "transceiver": ("_codecs", "_offerDirection"),
    "dtls": ("_role", "_set_role", "_send_rtp"),
}


@functools.cache
def check_internals() -> None:
    """Fail loudly (ForwardingUnsupportedError) when an aiortc internal this module touches is
    gone or no longer does what it did in 1.16: checked once per process, at hub start."""
    check_aiortc_version()
    missing: list[str] = []
    for owner, name, needles in _SOURCE_FACTS:
        member = getattr(owner, name, None)
        if member is None:
            missing.append(f"{owner.__name__}.{name}")
            continue
        source = inspect.getsource(member)
        missing += [f"{owner.__name__}.{name}: {n!r}" for n in needles if n not in source]
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="sendrecv")
    objects = {"receiver": transceiver.receiver, "sender": transceiver.sender,
               "transceiver": transceiver, "dtls": transceiver.receiver.transport}
    for label, names in _INSTANCE_FACTS.items():
        missing += [f"{label}.{n}" for n in names if not hasattr(objects[label], n)]
    if missing:
        raise ForwardingUnsupportedError(
            f"aiortc {aiortc.__version__} internals changed; hub/sfu/forward.py needs: {missing}")


MAX_HOLE_S = 0.5  # a packet missing this long (NACK did not bring it) is given up


class MarkerJitterBuffer(JitterBuffer):
    """Video jitter buffer that releases a frame when its marker-bit packet completes it.

    aiortc's buffer only releases a frame when the next frame's first packet arrives, which
    adds one frame interval (67 ms at 15 fps) at every receiver; and a packet that never comes
    (lost, its retransmission too) holds back every later frame until 512 packets pile up
    (8-10 s of video). Here a hole older than MAX_HOLE_S is given up: the frames around it are
    dropped, `broken` is set (the passthrough then waits for a keyframe) and a PLI requested.
    aiortc takes one frame per packet added; with `drain`, the further frames that are
    complete at once (after a retransmission fills a hole, say) wait in `ready` for the
    passthrough to take, instead of each adding a frame of latency for good.
    """

    def __init__(self, clock: Clock = time.monotonic, drain: bool = False,
                 on_packet: Callable[[RtpPacket], None] | None = None) -> None:
        super().__init__(capacity=512, is_video=True)
        self._clock = clock
        self._on_packet = on_packet  # every packet as it arrives (RTX unwrapped), first
        self._drain = drain
        self._hole_since: float | None = None
        self._gave_up = False
        self.broken = False
        self.holes_skipped = 0
        self.ready: collections.deque[JitterFrame] = collections.deque()
        self._newest: int | None = None  # the highest sequence number added

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._on_packet is not None:
            self._on_packet(packet)
        seq = packet.sequence_number
        if self._newest is None or uint16_add(seq, -self._newest) < 0x8000:
            self._newest = seq
        pli, frame = super().add(packet)
        if self._origin is not None and uint16_add(self._newest, -self._origin) >= self.capacity:
            self._newest = seq  # the buffer restarted behind the newest (a sender's restart)
        if self._gave_up:
            self._gave_up = False
            pli = True  # aiortc's receiver sends it to the publisher
        return pli, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        first = self._next_media_frame()
        while self._drain and first is not None and (more := self._next_media_frame()):
            self.ready.append(more)
        return first

    def _next_media_frame(self) -> JitterFrame | None:
        while True:
            frame = self._next_frame()
            if frame is None or frame.data:
                return frame
            # Padding-only packets (e.g. Chromium's bandwidth probes) carry no media: a frame of
            # them is no frame. Handed on, an empty packet would flush (end) a decoder.

    def _next_frame(self) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        origin = self._origin
        if origin is None:
            return None
        timestamp: int | None = None
        for count in range(self.capacity):
            packet = self._packets[(origin + count) % self.capacity]
            if packet is None:
                return self._skip_hole(count)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # A new frame began before a marker (marker lost): release what we have.
                return self._release(packets, count)
            packets.append(packet)
            if packet.marker:
                return self._release(packets, count + 1)
        return None

    def _release(self, packets: list[RtpPacket], count: int) -> JitterFrame:
        data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
        self.remove(count)
        self._hole_since = None
        return JitterFrame(data=data, timestamp=packets[0].timestamp)

    def _skip_hole(self, hole: int) -> JitterFrame | None:
        """A packet is missing `hole` packets after the origin: wait for it, or give it up
        after MAX_HOLE_S (then try again from the frame after it)."""
        origin = self._origin
        assert origin is not None
        # Only the slots up to the newest packet can hold one: after a frame is released the
        # next packet is usually just not here yet, and the rest of the ring is empty.
        span = self.capacity - 1 if self._newest is None else uint16_add(self._newest, -origin)
        if span >= self.capacity:  # the newest is behind the origin (all of it was released)
            return None
        after = next((k for k in range(hole + 1, span + 1)
                      if self._packets[(origin + k) % self.capacity] is not None), None)
        if after is None:
            return None  # nothing after the gap: it is just the next packet not yet here
        now = self._clock()
        if self._hole_since is None:
            self._hole_since = now
        if now - self._hole_since < MAX_HOLE_S:
            return None
        # drop up to the packet after the hole, and the rest of that packet's frame
        self.remove(after)
        stale = self._packets[(origin + after) % self.capacity]
        while (p := self._packets[(origin + after) % self.capacity]) is not None and \
                stale is not None and p.timestamp == stale.timestamp:
            self.remove(1)
            after += 1
        self._hole_since = None
        self._gave_up = self.broken = True
        self.holes_skipped += 1
        return self._next_frame()


class ImmediateJitterBuffer(JitterBuffer):
    """Audio buffer for forwarding: each packet is a frame, released at once; late ones dropped."""

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._last: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last is not None and uint16_add(seq, -self._last) >= 0x8000:
            return False, None  # older than what was already released
        if self._last is not None and seq == self._last:
            return False, None  # duplicate
        self._last = seq
        data: bytes = packet._data  # type: ignore[attr-defined]
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


PacketSink = Callable[[EncodedPacket], None]


class _PassthroughQueue(queue.Queue[Any]):
    """Stands in for the receiver's decoder queue: frames go to `sink` on the event loop thread.

    The receiver's decoder thread still starts and blocks on this queue; it only ever gets
    the `None` that stops it, which also ends the receiver's track as usual.
    """

    def __init__(self, sink: PacketSink, clock: Clock, buffer: JitterBuffer | None = None,
                 mapper: Any = None) -> None:
        super().__init__()
        self._sink = sink
        self._clock = clock
        self._buffer = buffer if isinstance(buffer, MarkerJitterBuffer) else None
        self._mapper = mapper  # the receiver's TimestampMapper, for the frames in `ready`

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, frame = item
        assert isinstance(codec, RTCRtpCodecParameters) and isinstance(frame, JitterFrame)
        self._forward(codec, frame)
        while self._buffer is not None and self._buffer.ready:
            more = self._buffer.ready.popleft()
            if self._mapper is not None:
                more.timestamp = self._mapper.map(more.timestamp)
            self._forward(codec, more)

    def _forward(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if not frame.data:
            return  # padding: nothing to forward
        keyframe = is_keyframe(codec.name, frame.data)
        if self._buffer is not None and self._buffer.broken:
            if not keyframe:
                return  # a frame was given up: what follows cannot be decoded until a keyframe
            self._buffer.broken = False
        self._sink(
            EncodedPacket(
                data=frame.data,
                pts=frame.timestamp,
                clock_rate=codec.clockRate,
                codec=codec.name,
                keyframe=keyframe,
                arrival=self._clock(),
            )
        )


def _receiver_attr(receiver: RTCRtpReceiver, name: str) -> Any:
    return getattr(receiver, "_RTCRtpReceiver__" + name)


def _set_receiver_attr(receiver: RTCRtpReceiver, name: str, value: Any) -> None:
    if not hasattr(receiver, "_RTCRtpReceiver__" + name):
        raise ForwardingUnsupportedError(f"RTCRtpReceiver has no attribute {name}")
    setattr(receiver, "_RTCRtpReceiver__" + name, value)


def install_passthrough(
    receiver: RTCRtpReceiver, sink: PacketSink, clock: Clock = time.monotonic,
    on_packet: Callable[[RtpPacket], None] | None = None,
) -> None:
    """Make `receiver` hand complete encoded frames to `sink` instead of decoding them, and
    (video) every RTP packet to `on_packet` as it arrives, before it joins a frame.

    Call after setRemoteDescription and before the connection starts the receiver.
    """
    check_aiortc_version()
    if _receiver_attr(receiver, "started"):
        raise ForwardingUnsupportedError("receiver already started")
    kind = _receiver_attr(receiver, "kind")
    buffer: JitterBuffer = MarkerJitterBuffer(clock, drain=True, on_packet=on_packet) \
        if kind == "video" else ImmediateJitterBuffer()
    _set_receiver_attr(receiver, "jitter_buffer", buffer)
    queue = _PassthroughQueue(sink, clock, buffer, _receiver_attr(receiver, "timestamp_mapper"))
    _set_receiver_attr(receiver, "decoder_queue", queue)


def install_low_latency(receiver: RTCRtpReceiver) -> None:
    """Keep decoding but release video frames on the marker bit (for clients that decode)."""
    check_aiortc_version()
    if _receiver_attr(receiver, "kind") == "video" and not _receiver_attr(receiver, "started"):
        _set_receiver_attr(receiver, "jitter_buffer", MarkerJitterBuffer())


def receiver_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC most recently seen by `receiver` (None before the first packet)."""
    active: dict[int, Any] = _receiver_attr(receiver, "active_ssrc")
    if not active:
        return None
    return max(active, key=lambda ssrc: active[ssrc])


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote sender of `receiver` for a keyframe (RTCP PLI). False if nothing to ask."""
    ssrc = receiver_ssrc(receiver)
    if ssrc is None:
        return False
    await receiver._send_rtcp_pli(ssrc)
    return True


def pin_codec(transceiver: RTCRtpTransceiver, mime_types: list[str]) -> str | None:
    """Keep only the first of `mime_types` (e.g. "video/VP8") the transceiver negotiated.

    Call between setRemoteDescription(offer) and createAnswer: the answer then carries that
    codec (and its RTX) only, so the remote sender must use it. Returns the codec name or
    None when nothing in common.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    for mime in mime_types:
        chosen = [c for c in codecs if c.mimeType.lower() == mime.lower()]
        if chosen:
            base = chosen[0]
            rtx = [
                c for c in codecs
                if c.name.lower() == "rtx" and c.parameters.get("apt") == base.payloadType
            ]
            transceiver._codecs = [base, *rtx]
            return base.name
    return None


def pin_codecs(transceiver: RTCRtpTransceiver, mime_types: list[str]) -> list[str]:
    """Keep every one of `mime_types` the transceiver negotiated, in that order, without RTX.

    For the hub's sending slots: the answer then lets the hub send any of them on the m-line
    (the payload type says which), so a slot can carry a VP8 or an H264 publisher. Without
    RTX a retransmission repeats the original packet, payload type included.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    kept = [c for mime in mime_types for c in codecs if c.mimeType.lower() == mime.lower()]
    kept = list({c.mimeType.lower(): c for c in reversed(kept)}.values())[::-1]  # one per mime
    if kept:
        transceiver._codecs = kept
    return [c.name for c in kept]


def negotiated_codec(transceiver: RTCRtpTransceiver) -> str | None:
    """Name of the codec the transceiver sends/receives with (first negotiated), or None."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return codecs[0].name if codecs else None


# -------------------------------------------------------------------------------- DTLS
# aiortc 1.16 offers only ECDHE-ECDSA suites. As the DTLS client it then cannot talk to a
# server with an RSA certificate (GStreamer webrtcbin, many SIP/WebRTC gateways): "no shared
# cipher". The hub's own certificate stays ECDSA; the RSA suites only matter when the peer is
# the server.
DTLS_CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    b"ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
)
_original_ssl_context = RTCCertificate._create_ssl_context


def _ssl_context(self: RTCCertificate, srtp_profiles: Any) -> Any:
    ctx = _original_ssl_context(self, srtp_profiles)
    ctx.set_cipher_list(DTLS_CIPHERS)
    return ctx


def install_dtls_ciphers() -> None:
    """Let every aiortc DTLS endpoint in this process offer ECDHE-RSA as well as ECDHE-ECDSA."""
    check_internals()
    RTCCertificate._create_ssl_context = _ssl_context  # type: ignore[method-assign]


# ICE consent freshness (RFC 7675): aioice sends one STUN request every 4-6 s, gives each
# 0.5 s for an answer and closes the connection after 6 unanswered in a row. A peer whose
# answers come late (a browser or a hub starved of CPU; a socket that dropped a burst) lost
# its connection while media still flowed: a live Chromium page's ICE closed 13-33 s into a
# test on a busy machine, 13 of 16 publishers in the media-cost run. Here each check is
# retransmitted (0.5, 1.5, 3.5 s: a late answer to any copy counts) and consent expires as
# the RFC says: after CONSENT_EXPIRY_S without an answer.
CONSENT_EXPIRY_S = 30.0
CONSENT_RETRANSMISSIONS = 2


async def _query_consent(self: aioice.ice.Connection) -> None:
    assert self.remote_password is not None
    loop = asyncio.get_running_loop()
    answered = loop.time()
    while True:
        await asyncio.sleep(aioice.ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in self._nominated.values():
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request, pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=CONSENT_RETRANSMISSIONS)
                answered = loop.time()
            except aioice.stun.TransactionError:
                pass
        if loop.time() - answered >= CONSENT_EXPIRY_S:
            self._query_consent_task = None
            await self.close()
            return


def install_consent_check() -> None:
    """Every aioice connection in this process keeps consent until 30 s without an answer."""
    check_internals()
    aioice.ice.Connection.query_consent = _query_consent  # type: ignore[method-assign]


def answer_dtls_passive(pc: RTCPeerConnection) -> int:
    """Before createAnswer: take the DTLS server role (`a=setup:passive`) wherever the offer
    says `actpass`, so the offerer (whatever its certificate) picks the cipher suites it knows
    as the client. aiortc would answer `active`. Returns how many transports were set."""
    remote = pc.remoteDescription
    if remote is None:
        return 0
    media = aiortc_sdp.SessionDescription.parse(remote.sdp).media
    offered = {m.rtp.muxId: m.dtls.role for m in media if m.dtls is not None}
    done = 0
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if offered.get(transceiver.mid or "") == "auto" and transport._role == "auto":
            transport._set_role("server")
            done += 1
    return done


def dtls_failed(pc: RTCPeerConnection) -> bool:
    """Whether the peer connection failed in its DTLS handshake (ICE itself got through)."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport.state == "failed" and transport.transport.state != "failed":
            return True
    return False


KeyframeRequest = Callable[[], None]


def _extension_block(parameters: Any) -> bytes:
    """The RTP header extension block (the sdes:mid element only) a slot's packets carry,
    with the ids the subscriber negotiated; empty when it negotiated none."""
    ids = HeaderExtensionsMap()
    ids.configure(parameters)
    probe = RtpPacket()
    probe.extensions.mid = parameters.muxId
    raw = probe.serialize(ids)
    return raw[12:] if raw[0] & 0x10 else b""


SRTP_BUFFER = 2048  # pylibsrtp's session buffer (1500) minus its trailer reserve: 1356 bytes


def _widen_srtp(session: pylibsrtp.Session) -> None:
    """Let `session` protect packets up to SRTP_BUFFER - trailer bytes: a publisher packetizing
    for a 1400-byte MTU (GStreamer's default) sends payloads that aiortc's own packetizer
    (1300 bytes) never makes, and they are forwarded as they are."""
    session._cdata = srtp_ffi.new("char[]", SRTP_BUFFER)
    session._buffer = srtp_ffi.buffer(session._cdata)


def _send_now(dtls: RTCDtlsTransport, data: bytes, retry: bool = True) -> bool:
    """SRTP-protect and send one RTP packet on `dtls` synchronously (False: not sent).

    aiortc's `_send_rtp` is a coroutine that never suspends (protect, then the ICE pair's
    datagram `sendto`); running it to completion here spares a task per packet and subscriber.
    """
    step = dtls._send_rtp(data)
    try:
        step.send(None)
    except StopIteration:
        return True
    except (ConnectionError, pylibsrtp.Error):
        return False  # not connected yet, or closing
    except ValueError:  # "packet is too long" for the session's buffer
        session = dtls._tx_srtp
        if not retry or len(session._cdata) >= SRTP_BUFFER:
            return False
        _widen_srtp(session)
        return _send_now(dtls, data, retry=False)
    step.close()  # it would have waited: drop the packet rather than block the loop
    return False


class ForwardTrack(MediaStreamTrack):
    """What the hub sends on one subscriber slot, switched live between sources.

    Video is forwarded at the RTP level: each packet of the slot's source (`push_rtp`, after
    the hub's SRTP unprotect) is sent again with its header rewritten (the slot's SSRC,
    sequence numbers and timestamps continuous across switches, the payload type the
    subscriber negotiated for that codec) through the subscriber's DTLS transport; frames of
    sources that are not RTP (a camera ingest, a WHEP viewer's tap) are packetized once here
    (`push`). aiortc's sender loop then idles on `recv()`; its RTCP loop keeps sending sender
    reports from the counters updated here; NACKs are answered from the slot's `History`, and
    PLI/FIR go to `on_keyframe_request` (the source's publisher). After `switch()` video waits
    for a keyframe, which is requested. Audio keeps aiortc's path (frames, packed by the sender).
    """

    def __init__(self, kind: str, *, max_delay: float = 0.5, clock: Clock = time.monotonic):
        super().__init__()
        self.kind = kind
        self.source: str | None = None
        self.on_keyframe_request: KeyframeRequest | None = None
        self._max_delay = max_delay
        self._clock = clock
        self._queue: collections.deque[EncodedPacket] = collections.deque()  # audio
        self._ready = asyncio.Event()
        self._gated = kind == "video"
        self._offset: int | None = None  # audio: out_pts = in_pts + offset
        self._last_out: int | None = None
        self.frames_forwarded = 0
        self.frames_dropped = 0
        self.keyframe_requests = 0
        # video, RTP level
        self._sender: RTCRtpSender | None = None
        self._codecs: dict[str, RTCRtpCodecParameters] = {}  # negotiated, by name
        self._extension = b""
        self._rewriter = rtp.Rewriter()
        self._history = rtp.History()
        self._packers: dict[str, Any] = {}
        self._frame_seq = 0  # sequence numbers of the packets packed here from frames
        self._sr_ts: int | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.nacks = 0
        self.retransmits = 0

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Route the subscriber's PLI/FIR (which aiortc turns into an encoder flag) to us;
        for video, learn the negotiated codecs and header extensions when the sender starts,
        and answer the subscriber's NACKs from this slot's history."""
        sender._send_keyframe = self._keyframe_requested  # type: ignore[method-assign]
        if self.kind != "video":
            return
        self._sender = sender
        original_send = sender.send
        original_rtcp = sender._handle_rtcp_packet

        async def send(parameters: Any) -> None:
            self._codecs = {c.name: c for c in parameters.codecs if c.name.lower() != "rtx"}
            self._extension = _extension_block(parameters)
            await original_send(parameters)

        async def handle_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.nacks += 1
                for seq in packet.lost:
                    self._resend(seq)
                return
            await original_rtcp(packet)

        sender.send = send  # type: ignore[method-assign]
        sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]

    def _keyframe_requested(self) -> None:
        self.keyframe_requests += 1
        if self.kind == "video" and self.on_keyframe_request is not None:
            self.on_keyframe_request()

    def switch(self, source: str | None) -> None:
        """Forward `source` from now on (None: send nothing). Video waits for a keyframe."""
        if source == self.source:
            return
        self.source = source
        self._queue.clear()
        self._offset = None
        self._rewriter.rebase()
        self._gated = self.kind == "video"
        if source is not None:
            self._keyframe_requested()

    def restart(self) -> None:
        """Drop what is queued and start again at a keyframe (e.g. once the link is up)."""
        self._queue.clear()
        if self.kind == "video" and self.source is not None:
            self._gated = True
            self._rewriter.rebase()
            self._keyframe_requested()

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._gated

    # -- video: RTP level ---------------------------------------------------------------------

    def push_rtp(self, packet: RtpPacket, codec: str) -> bool:
        """Forward one RTP packet of the current source (`codec`: its codec's name);
        False once the track is stopped."""
        if self.readyState != "live":
            return False
        payload = packet.payload
        if self._gated:
            if not rtp.keyframe_start(codec, payload):
                if packet.marker:
                    self.frames_dropped += 1
                    self._keyframe_requested()  # the source rate-limits the PLIs it sends
                return True
            self._gated = False
        self._emit(payload, bool(packet.marker), packet.sequence_number, packet.timestamp,
                   codec, packet.padding_size)
        self.frames_forwarded += packet.marker
        return True

    def _emit(self, payload: bytes, marker: bool, seq: int, ts: int, codec: str,
              padding: int) -> None:
        params = self._codecs.get(codec)
        sender = self._sender
        if params is None or params.payloadType is None or sender is None:
            return  # not negotiated on this m-line (or not started): nothing to send
        mapped = self._rewriter.map(seq, ts, self._clock())
        if mapped is None:
            return  # from before the slot started this source
        out_seq, out_ts = mapped
        data = rtp.rtp_packet(marker=marker, payload_type=params.payloadType, seq=out_seq,
                              ts=out_ts, ssrc=sender._ssrc, payload=payload,
                              extension=self._extension, padding=padding)
        self._history.add(out_seq, data)
        if not _send_now(sender.transport, data):
            return
        self.packets_sent += 1
        self.octets_sent += len(payload)
        if out_ts != self._sr_ts:  # a new frame: what the sender's reports say
            self._sr_ts = out_ts
            sender._RTCRtpSender__ntp_timestamp = aiortc_clock.current_ntp_time()  # type: ignore[attr-defined]
            sender._RTCRtpSender__rtp_timestamp = out_ts  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count = self.packets_sent  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count = self.octets_sent  # type: ignore[attr-defined]

    def _resend(self, seq: int) -> None:
        data = self._history.get(seq)
        if data is not None and self._sender is not None and \
                _send_now(self._sender.transport, data):
            self.retransmits += 1

    def _push_frame(self, packet: EncodedPacket) -> None:
        params = self._codecs.get(packet.codec)
        if params is None:
            return
        packer = self._packers.get(packet.codec)
        if packer is None:
            packer = self._packers[packet.codec] = get_encoder(params)
        frame: av.Packet[Any] = av.Packet(packet.data)
        frame.pts = packet.pts
        frame.time_base = Fraction(1, packet.clock_rate)
        payloads, ts = packer.pack(frame)
        for i, payload in enumerate(payloads):
            self._frame_seq = (self._frame_seq + 1) & 0xFFFF
            self._emit(payload, i == len(payloads) - 1, self._frame_seq, ts, packet.codec, 0)
        self.frames_forwarded += 1

    # -- frames ---------------------------------------------------------------------------------

    def push(self, packet: EncodedPacket) -> None:
        """Forward a frame from the current source (called on the event loop thread)."""
        if self.readyState != "live":
            return
        if self._gated:
            if not packet.keyframe:
                self.frames_dropped += 1
                self._keyframe_requested()  # the source rate-limits the PLIs it sends
                return
            self._gated = False
        if self.kind == "video":
            self._push_frame(packet)
            return
        if self._queue and packet.arrival - self._queue[0].arrival > self._max_delay:
            self.frames_dropped += len(self._queue)  # the subscriber is not keeping up
            self._queue.clear()
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._queue:
                return self._to_av(self._queue.popleft())
            self._ready.clear()
            await self._ready.wait()  # video: until stopped (its packets bypass this loop)

    def _to_av(self, packet: EncodedPacket) -> av.Packet[Any]:
        if self._offset is None:
            # Continue the outgoing timestamps smoothly across a source switch.
            start = 0 if self._last_out is None else self._last_out + packet.clock_rate // 30
            self._offset = start - packet.pts
        pts = packet.pts + self._offset
        if self._last_out is not None and pts <= self._last_out:
            pts = self._last_out + 1
        self._last_out = pts
        out: av.Packet[Any] = av.Packet(packet.data)
        out.pts = pts
        out.time_base = Fraction(1, packet.clock_rate)
        self.frames_forwarded += 1
        return out

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._ready.set()

"""RTP-level forwarding, pure: keyframes seen in payloads, header rewriting, a resend history."""

from __future__ import annotations

import random
import struct

HISTORY_SIZE = 512  # rewritten packets a slot keeps to answer NACKs
_HEADER = struct.Struct("!BBHII")


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether a VP8 RTP payload (RFC 7741) starts a keyframe: the payload descriptor says
    start of partition 0 (S=1, PID=0) and the VP8 frame header's P bit is 0."""
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # S bit, partition index
        return False
    pos = 1
    if first & 0x80:  # X: an extension byte follows
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if pos >= len(payload):
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return pos < len(payload) and not payload[pos] & 0x01


_H264_KEY_NALS = (5, 7)  # IDR slice, SPS


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether an H264 RTP payload (RFC 6184) begins a keyframe: an IDR slice or an SPS as a
    single NAL unit, inside a STAP-A, or at the start of a FU-A."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in _H264_KEY_NALS:
        return True
    if nal == 24:  # STAP-A: (16-bit size, NAL unit) ...
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos:pos + 2], "big")
            if payload[pos + 2] & 0x1F in _H264_KEY_NALS:
                return True
            pos += 2 + size
        return False
    if nal == 28 and len(payload) > 1:  # FU-A: start bit and the fragmented NAL's type
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in _H264_KEY_NALS
    return False


def keyframe_start(codec: str, payload: bytes) -> bool:
    """Whether `payload` (an RTP payload of `codec`) is the first packet of a keyframe."""
    name = codec.upper()
    if name == "VP8":
        return vp8_keyframe_start(payload)
    if name == "H264":
        return h264_keyframe_start(payload)
    return False


class Rewriter:
    """Maps the (sequence number, timestamp) of whichever source feeds a slot onto one
    continuous outgoing stream: after `rebase()` the next packet follows the last one sent."""

    def __init__(self, clock_rate: int = 90000, rng: random.Random | None = None) -> None:
        pick = rng or random.Random()
        self.clock_rate = clock_rate
        self.last_seq = pick.getrandbits(16)  # as if a packet had been sent (RFC 3550 5.1)
        self.last_ts = pick.getrandbits(32)
        self._last_time: float | None = None
        self._seq_offset: int | None = None
        self._ts_offset = 0
        self._start = 0  # the source's first sequence number since rebase

    @property
    def based(self) -> bool:
        return self._seq_offset is not None

    def rebase(self) -> None:
        """The next packet mapped starts a new source (or a restart of this one)."""
        self._seq_offset = None

    def map(self, seq: int, ts: int, now: float) -> tuple[int, int] | None:
        """Outgoing (sequence number, timestamp) of a source packet; None for a packet older
        than the one the slot started this source at."""
        if self._seq_offset is None:
            gap = 1 if self._last_time is None else max(
                1, round((now - self._last_time) * self.clock_rate))
            self._seq_offset = (self.last_seq + 1 - seq) & 0xFFFF
            self._ts_offset = (self.last_ts + gap - ts) & 0xFFFFFFFF
            self._start = seq
        if (seq - self._start) & 0xFFFF >= 0x8000:
            return None
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        if (out_seq - self.last_seq) & 0xFFFF < 0x8000:
            self.last_seq = out_seq
            self.last_ts = out_ts
            self._last_time = now
        return out_seq, out_ts


def rtp_packet(*, marker: bool, payload_type: int, seq: int, ts: int, ssrc: int,
               payload: bytes, extension: bytes = b"", padding: int = 0) -> bytes:
    """A serialized RTP packet; `extension` is a whole header extension block (profile,
    length, elements) or empty; `padding` bytes of padding (RFC 3550 5.1), 0 for none."""
    first = 0x80 | (0x10 if extension else 0) | (0x20 if padding else 0)
    header = _HEADER.pack(first, (0x80 if marker else 0) | payload_type, seq, ts, ssrc)
    if padding:
        return header + extension + payload + bytes(padding - 1) + bytes((padding,))
    return header + extension + payload


class History:
    """The last HISTORY_SIZE packets a slot sent, by outgoing sequence number."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self._size = size
        self._packets: list[tuple[int, bytes] | None] = [None] * size

    def add(self, seq: int, data: bytes) -> None:
        self._packets[seq % self._size] = (seq, data)

    def get(self, seq: int) -> bytes | None:
        entry = self._packets[seq % self._size]
        return entry[1] if entry is not None and entry[0] == seq else None

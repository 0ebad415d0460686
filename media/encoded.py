"""Encoded media as the hub forwards it, records and checks it: one frame, its codec's keyframe test."""

from __future__ import annotations

from dataclasses import dataclass

# A recording asks the publisher for a key frame after this long without one (a WebRTC sender
# sends few): the replay decodes from the key frame before a moment, so this bounds a seek's
# work (16 tiles x 75 frames at 15 fps; 10 s made a seek to another part of a drill 0.6 s).
# It costs about 4% more bits than 10 s for 320x240 VP8 (2 s: 17%).
RECORD_KEYFRAME_S = 5.0


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One complete encoded frame as received: the unit the hub forwards."""

    data: bytes
    pts: int  # RTP timestamp, unwrapped to start at 0 by aiortc's TimestampMapper
    clock_rate: int
    codec: str  # "VP8", "H264", "opus", ...
    keyframe: bool
    arrival: float  # the hub clock when the frame was completed


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether a depayloaded frame starts a picture (VP8 key frame, H264 IDR or SPS; audio: yes)."""
    name = codec.upper()
    if name == "VP8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
        return bool(data) and (data[0] & 0x01) == 0
    if name == "H264":
        return any(nal in (5, 7) for nal in h264_nal_types(data))
    return True


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex B byte stream (as aiortc's H264 depayloader produces)."""
    types: list[int] = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        types.append(data[pos + 3] & 0x1F)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return types


def coded_bytes(codec: str, data: bytes) -> int:
    """Bytes of an encoded frame that code the picture: H264 filler NAL units (type 12, a CBR
    camera's padding) do not count."""
    if codec.upper() != "H264" or b"\x00\x00\x01\x0c" not in data:
        return len(data)
    size, pos = 0, data.find(b"\x00\x00\x01")
    while pos != -1:
        nxt = data.find(b"\x00\x00\x01", pos + 3)
        end = len(data) if nxt == -1 else nxt
        if pos + 3 < len(data) and data[pos + 3] & 0x1F != 12:
            size += end - pos
        pos = nxt
    return size

"""Machine-readable pixel stamp (department number, frame counter, send time) surviving VP8/H264."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Layout: 16x16 blocks aligned to codec macroblocks, row by row from the top-left corner,
# each block one bit (white = 1, black = 0): a flat macroblock codes as DC only and survives
# low bitrates (8 px blocks did not, at 320x240 VP8). 320 wide: 20 per row, 4 rows (64 px);
# 640 wide: 40 per row, 2 rows. Bits, most significant first:
#   4 magic (0b1010) | 8 dept number | 16 frame counter | 36 send time (ms, mod 2**36) | 16 CRC
BLOCK = 16
NBITS = 80
MAGIC = 0b1010
TIME_BITS = 36
TIME_MOD = 1 << TIME_BITS


class StampError(Exception):
    """A stamp could not be written or read back (frame too small, checksum mismatch)."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a frame carries: who sent it, which frame, when (wall clock ms, mod 2**36)."""

    dept: int  # 0..255
    frame: int  # 0..65535 (wraps)
    time_ms: int  # milliseconds since the epoch, mod 2**36


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _payload(stamp: Stamp) -> int:
    return (
        (MAGIC << 60)
        | ((stamp.dept & 0xFF) << 52)
        | ((stamp.frame & 0xFFFF) << 36)
        | (stamp.time_ms % TIME_MOD)
    )


def encode_bits(stamp: Stamp) -> np.ndarray:
    """The NBITS bits of `stamp` as a uint8 array of 0/1."""
    if not 0 <= stamp.dept <= 0xFF:
        raise StampError(f"dept number {stamp.dept} out of range 0..255")
    payload = _payload(stamp)
    word = (payload << 16) | crc16(payload.to_bytes(8, "big"))
    return np.array([(word >> (NBITS - 1 - i)) & 1 for i in range(NBITS)], dtype=np.uint8)


def layout(width: int) -> tuple[int, int]:
    """(columns, rows) of stamp blocks in a frame `width` pixels wide."""
    cols = min(NBITS, width // BLOCK)
    if cols < 8:
        raise StampError(f"frame width {width} too small for a stamp")
    return cols, -(-NBITS // cols)


def stamp_height(width: int) -> int:
    """Pixel rows the stamp occupies at the top of a frame `width` wide."""
    return layout(width)[1] * BLOCK


def write_stamp(plane: np.ndarray, stamp: Stamp) -> None:
    """Draw `stamp` in place into the top rows of a luma (HxW) or HxWx3 uint8 image."""
    height, width = plane.shape[:2]
    cols, rows = layout(width)
    if height < rows * BLOCK:
        raise StampError(f"frame {width}x{height} too small for a stamp")
    bits = np.zeros(cols * rows, dtype=np.uint8)
    bits[:NBITS] = encode_bits(stamp) * 255
    blocks = np.repeat(np.repeat(bits.reshape(rows, cols), BLOCK, axis=0), BLOCK, axis=1)
    region = plane[: rows * BLOCK, : cols * BLOCK]
    if plane.ndim == 3:
        region[:] = blocks[:, :, None]
    else:
        region[:] = blocks


def read_stamp(plane: np.ndarray) -> Stamp:
    """Read the stamp back from a decoded luma (HxW) or HxWx3 image; StampError if unreadable."""
    if plane.ndim == 3:
        plane = plane[:, :, 1]  # green tracks luma well enough for black/white blocks
    height, width = plane.shape[:2]
    cols, rows = layout(width)
    if height < rows * BLOCK:
        raise StampError(f"frame {width}x{height} too small for a stamp")
    q = BLOCK // 4
    region = plane[: rows * BLOCK, : cols * BLOCK].astype(np.float32)
    cells = region.reshape(rows, BLOCK, cols, BLOCK)[:, q : BLOCK - q, :, q : BLOCK - q]
    means = cells.mean(axis=(1, 3)).reshape(-1)[:NBITS]
    bits = (means >= 128).astype(np.uint64)
    word = 0
    for bit in bits:
        word = (word << 1) | int(bit)
    payload, crc = word >> 16, word & 0xFFFF
    if crc16(payload.to_bytes(8, "big")) != crc or payload >> 60 != MAGIC:
        raise StampError("stamp checksum mismatch")
    return Stamp(
        dept=(payload >> 52) & 0xFF, frame=(payload >> 36) & 0xFFFF, time_ms=payload % TIME_MOD
    )


def age_ms(stamp: Stamp, now_ms: int) -> int:
    """Milliseconds between the stamp's send time and `now_ms` (both wall clock), mod 2**36."""
    diff = (now_ms - stamp.time_ms) % TIME_MOD
    return diff if diff < TIME_MOD // 2 else diff - TIME_MOD


def read_frame_stamp(frame: Any) -> Stamp:
    """Read the stamp from a decoded `av.VideoFrame` using only the top rows of its luma plane."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "nv12", "gray"):
        return read_stamp(frame.to_ndarray(format="gray"))
    plane = frame.planes[0]
    rows = min(frame.height, stamp_height(frame.width))
    data = np.frombuffer(plane, dtype=np.uint8, count=plane.line_size * rows)
    return read_stamp(data.reshape(rows, plane.line_size)[:, : frame.width])

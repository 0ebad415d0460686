"""A long recorded drill made synthetically (for `commandhub bench replay`): stamped VP8 parts per
department, laid out and logged as the hub's recorder does (`media.recording` per file)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from media.source import render_background
from media.stamp import Stamp, write_stamp

WIDTH, HEIGHT = 320, 240


def encode_part(path: Path, seconds: float, fps: int, keyframe_s: float, number: int,
                t0_ms: int) -> int:
    """Write a WebM (VP8, Cues) of `seconds` of stamped frames; return the frame count."""
    background = render_background(WIDTH, HEIGHT, number, f"部门{number}", f"dept {number}")
    frames = int(seconds * fps)
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = max(1, int(keyframe_s * fps))
        stream.codec_context.bit_rate = 300_000
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for i in range(frames):
            img = background.copy()
            x = (i * 4) % (WIDTH - 16)
            img[HEIGHT - 24:HEIGHT - 8, x:x + 16] = 255
            write_stamp(img, Stamp(number, i & 0xFFFF, t0_ms + i * 1000 // fps))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return frames


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (the parts of the synthetic drill share one encoded file), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())

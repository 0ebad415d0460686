"""The frame index of Matroska / WebM recordings (hub/replay/webm.py) against PyAV's demuxer: VP8
in WebM and H.264 in Matroska as the recorder writes them, a file cut short, and not a file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from hub.replay.webm import IndexCache, WebmError, read_index
from media.replaydrill import encode_part


def demuxed(path: Path) -> list[tuple[int, bytes, bool]]:
    with av.open(str(path)) as c:
        base = c.streams.video[0].time_base
        return [(round(p.pts * base * 1_000_000), bytes(p), p.is_keyframe)
                for p in c.demux(video=0) if p.size]


def indexed(path: Path) -> list[tuple[int, bytes, bool]]:
    ix = read_index(path)
    data = path.read_bytes()
    return [(t, data[o:o + n], k) for t, o, n, k in zip(ix.t_us, ix.offset, ix.size, ix.key,
                                                         strict=True)]


def h264_mkv(path: Path, frames: int = 40) -> None:
    with av.open(str(path), "w", format="matroska") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.codec_context.gop_size = 10
        s.options = {"tune": "zerolatency", "preset": "ultrafast"}
        for i in range(frames):
            img = np.full((120, 160, 3), (i * 6) % 256, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 10)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def test_vp8_webm_frames_are_the_demuxers(tmp_path: Path) -> None:
    path = tmp_path / "part.webm"
    encode_part(path, 6, 15, 2.0, 3, 0)
    ix = read_index(path)
    assert (ix.codec_id, ix.width, ix.height, ix.private) == ("V_VP8", 320, 240, b"")
    assert indexed(path) == demuxed(path)
    assert len(ix.t_us) == 90 and sum(ix.key) == 3 and ix.key[0] and ix.key[30] and ix.key[60]


def test_h264_matroska_frames_and_avcc_are_the_demuxers(tmp_path: Path) -> None:
    path = tmp_path / "part.mkv"
    h264_mkv(path)
    ix = read_index(path)
    assert ix.codec_id == "V_MPEG4/ISO/AVC" and ix.private[0] == 1  # an avcC record
    with av.open(str(path)) as c:
        assert ix.private == bytes(c.streams.video[0].codec_context.extradata)
    assert indexed(path) == demuxed(path) and len(ix.t_us) == 40


def test_a_file_cut_short_keeps_its_whole_frames(tmp_path: Path) -> None:
    path = tmp_path / "part.webm"
    encode_part(path, 4, 15, 2.0, 1, 0)
    whole = indexed(path)
    cut = tmp_path / "cut.webm"
    ix = read_index(path)
    cut.write_bytes(path.read_bytes()[:ix.offset[40] + ix.size[40] // 2])  # in frame 40
    assert indexed(cut) == whole[:40]


def test_not_matroska_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.webm"
    bad.write_bytes(b"RIFF....WAVEfmt " * 4)
    with pytest.raises(WebmError, match="not an EBML file"):
        read_index(bad)
    bad.write_bytes(b"")
    with pytest.raises(WebmError, match="empty"):
        read_index(bad)


def test_the_cache_reads_a_changed_file_again(tmp_path: Path) -> None:
    path = tmp_path / "part.webm"
    encode_part(path, 2, 15, 1.0, 1, 0)
    cache = IndexCache(limit=1)
    first = cache(path)
    assert cache(path) is first
    encode_part(path, 3, 15, 1.0, 1, 0)
    assert len(cache(path).t_us) == 45

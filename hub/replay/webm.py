"""The frame index of a Matroska / WebM recording (stdlib only): every video frame's media time,
byte range and key flag, read from the file's own block headers, so the replay page fetches and
decodes only the frames from the key frame before a moment to that moment."""

from __future__ import annotations

import base64
import mmap
import sys
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EBML, SEGMENT, INFO, TIMECODE_SCALE = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x2AD7B1
TRACKS, TRACK_ENTRY, TRACK_NUMBER, TRACK_TYPE = 0x1654AE6B, 0xAE, 0xD7, 0x83
CODEC_ID, CODEC_PRIVATE, VIDEO, PIXEL_WIDTH, PIXEL_HEIGHT = 0x86, 0x63A2, 0xE0, 0xB0, 0xBA
CLUSTER, CLUSTER_TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK = 0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1
REFERENCE_BLOCK = 0xFB
# level-1 elements: one of them ends a cluster of unknown size (a file cut short while written)
TOP_LEVEL = frozenset({CLUSTER, 0x1C53BB6B, 0x114D9B74, 0x1254C367, 0x1043A770, 0x1941A469,
                       INFO, TRACKS})
UNKNOWN = -1
MAX_FRAMES = 2_000_000  # 37 h at 15 fps: a bound on what one index holds


class WebmError(Exception):
    """The file is not a Matroska / WebM file this index can read (what, at which byte)."""


@dataclass(frozen=True)
class FrameIndex:
    """The first video track of a recording: codec, size and every frame (in file order)."""

    codec_id: str  # Matroska CodecID: V_VP8, V_VP9, V_MPEG4/ISO/AVC, ...
    private: bytes  # CodecPrivate (H.264: the avcC record), b"" when absent
    width: int
    height: int
    t_us: list[int]  # media time of each frame (block timecode), µs
    offset: list[int]  # byte offset of each frame's data in the file
    size: list[int]  # bytes of each frame's data
    key: list[bool]

    def to_json(self) -> dict[str, Any]:
        """The index as JSON; the per-frame columns packed (base64 of little-endian float64
        t_us, offset and size, one byte per key flag): a part has thousands of frames."""
        def packed(values: list[int]) -> str:
            a = array("d", values)
            if sys.byteorder != "little":
                a.byteswap()
            return base64.b64encode(a.tobytes()).decode()

        return {"codec_id": self.codec_id, "private": base64.b64encode(self.private).decode(),
                "width": self.width, "height": self.height, "frames": len(self.t_us),
                "t_us": packed(self.t_us), "offset": packed(self.offset),
                "size": packed(self.size), "key": base64.b64encode(bytes(self.key)).decode()}


def _vint(buf: Any, pos: int, keep_marker: bool) -> tuple[int, int]:
    """(value, length) of the EBML variable-size integer at `pos`; UNKNOWN for an all-ones size."""
    if pos >= len(buf):
        raise WebmError(f"truncated at byte {pos}")
    b = buf[pos]
    length = 1
    while length <= 8 and not b & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise WebmError(f"bad EBML number at byte {pos}")
    if pos + length > len(buf):
        raise WebmError(f"truncated at byte {pos}")
    value = b if keep_marker else b & (0xFF >> length)
    for c in buf[pos + 1:pos + length]:
        value = (value << 8) | c
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return UNKNOWN, length
    return value, length


def _header(buf: Any, pos: int) -> tuple[int, int, int]:
    """(id, size, data offset) of the element at `pos`."""
    ident, a = _vint(buf, pos, True)
    size, b = _vint(buf, pos + a, False)
    return ident, size, pos + a + b


def _uint(buf: Any, at: int, size: int) -> int:
    return int.from_bytes(buf[at:at + size], "big") if 0 < size <= 8 else 0


def _children(buf: Any, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        ident, size, data = _header(buf, pos)
        if size == UNKNOWN:
            raise WebmError(f"element {ident:#x} of unknown size at byte {pos}")
        out.append((ident, size, data))
        pos = data + size
    return out


def _track(buf: Any, start: int, end: int) -> dict[str, Any]:
    t: dict[str, Any] = {"number": 0, "type": 0, "codec": "", "private": b"", "w": 0, "h": 0}
    for ident, size, data in _children(buf, start, end):
        if ident == TRACK_NUMBER:
            t["number"] = _uint(buf, data, size)
        elif ident == TRACK_TYPE:
            t["type"] = _uint(buf, data, size)
        elif ident == CODEC_ID:
            t["codec"] = bytes(buf[data:data + size]).decode("ascii", "replace").rstrip("\0")
        elif ident == CODEC_PRIVATE:
            t["private"] = bytes(buf[data:data + min(size, 1 << 16)])
        elif ident == VIDEO:
            for vid, vsize, vdata in _children(buf, data, data + size):
                if vid == PIXEL_WIDTH:
                    t["w"] = _uint(buf, vdata, vsize)
                elif vid == PIXEL_HEIGHT:
                    t["h"] = _uint(buf, vdata, vsize)
    return t


def read_index(path: Path) -> FrameIndex:
    """The frame index of the first video track of `path` (raises WebmError)."""
    with open(path, "rb") as fh:
        if path.stat().st_size == 0:
            raise WebmError("empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _read(buf)


def _read(buf: Any) -> FrameIndex:
    file_size = len(buf)
    ident, size, data = _header(buf, 0)
    if ident != EBML:
        raise WebmError("not an EBML file")
    pos = data + size
    ident, size, data = _header(buf, pos)
    if ident != SEGMENT:
        raise WebmError(f"no Segment at byte {pos}")
    end = file_size if size == UNKNOWN else min(file_size, data + size)
    scale_ns = 1_000_000
    track: dict[str, Any] | None = None
    t_us: list[int] = []
    offset: list[int] = []
    sizes: list[int] = []
    key: list[bool] = []
    pos = data
    while pos < end:
        ident, size, data = _header(buf, pos)
        if ident == INFO and size != UNKNOWN:
            for cid, csize, cdata in _children(buf, data, data + size):
                if cid == TIMECODE_SCALE:
                    scale_ns = _uint(buf, cdata, csize) or 1_000_000
        elif ident == TRACKS and size != UNKNOWN:
            for cid, csize, cdata in _children(buf, data, data + size):
                if cid == TRACK_ENTRY:
                    t = _track(buf, cdata, cdata + csize)
                    if t["type"] == 1 and track is None:
                        track = t
        elif ident == CLUSTER:
            if track is None:
                raise WebmError(f"a Cluster before the video track, at byte {pos}")
            pos = _cluster(buf, data, size, end, track["number"], scale_ns,
                           (t_us, offset, sizes, key))
            continue
        if size == UNKNOWN:
            raise WebmError(f"element {ident:#x} of unknown size at byte {pos}")
        pos = data + size
    if track is None:
        raise WebmError("no video track")
    return FrameIndex(track["codec"], track["private"], track["w"], track["h"], t_us, offset,
                      sizes, key)


def _cluster(buf: Any, start: int, size: int, end: int, number: int, scale_ns: int,
             out: tuple[list[int], list[int], list[int], list[bool]]) -> int:
    """Adds the cluster's frames of track `number` to `out`; returns where the cluster ends."""
    stop = end if size == UNKNOWN else min(end, start + size)
    base = 0
    pos = start
    while pos < stop:
        if buf[pos] == SIMPLE_BLOCK and pos + 8 <= stop and buf[pos + 1] & 0xC0:
            # the common case, read inline (a part holds thousands): 1- or 2-byte size
            s0 = buf[pos + 1]
            if s0 & 0x80:
                csize, data = s0 & 0x7F, pos + 2
            else:
                csize, data = ((s0 & 0x3F) << 8) | buf[pos + 2], pos + 3
        else:
            try:
                ident, csize, data = _header(buf, pos)
            except WebmError:
                if size == UNKNOWN:  # a file cut short: what came before stands
                    return stop
                raise
            if size == UNKNOWN and ident in TOP_LEVEL:
                return pos
            if csize == UNKNOWN or data + csize > end:
                return stop  # the last block of a file cut short
            if ident == CLUSTER_TIMECODE:
                base = _uint(buf, data, csize)
            elif ident == BLOCK_GROUP:
                block = None
                referenced = False
                for gid, gsize, gdata in _children(buf, data, data + csize):
                    if gid == BLOCK:
                        block = (gdata, gsize)
                    elif gid == REFERENCE_BLOCK:
                        referenced = True
                if block is not None:
                    _block(buf, block[0], block[1], number, base, scale_ns, not referenced, out)
            if ident != SIMPLE_BLOCK:
                pos = data + csize
                continue
        if data + csize > end:
            return stop  # the last block of a file cut short
        _block(buf, data, csize, number, base, scale_ns, None, out)
        pos = data + csize
    return stop


def _block(buf: Any, at: int, size: int, number: int, base: int, scale_ns: int,
           keyed: bool | None, out: tuple[list[int], list[int], list[int], list[bool]]) -> None:
    b = buf[at]
    track, n = (b & 0x7F, 1) if b & 0x80 else _vint(buf, at, False)
    if track != number:
        return
    if n + 3 > size:
        raise WebmError(f"truncated block at byte {at}")
    flags = buf[at + n + 2]
    if flags & 0x06:
        raise WebmError(f"laced block at byte {at} (not indexed)")
    if len(out[0]) >= MAX_FRAMES:
        raise WebmError(f"more than {MAX_FRAMES} frames")
    rel = (buf[at + n] << 8) | buf[at + n + 1]
    out[0].append((base + (rel - 0x10000 if rel & 0x8000 else rel)) * scale_ns // 1000)
    out[1].append(at + n + 3)
    out[2].append(size - n - 3)
    out[3].append(bool(flags & 0x80) if keyed is None else keyed)


class IndexCache:
    """`read_index` once per (file, size, mtime, inode), the last `limit` files kept."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._cache: OrderedDict[tuple[str, int, int, int], FrameIndex] = OrderedDict()

    def __call__(self, path: Path) -> FrameIndex:
        st = path.stat()
        k = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        got = self._cache.get(k)
        if got is None:
            got = read_index(path)
            self._cache[k] = got
            while len(self._cache) > self.limit:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(k)
        return got

"""Recording: encoded packets remuxed into bounded segments, JPEG snapshots, write-error events."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Protocol

import av
import cv2
import numpy as np

log = logging.getLogger("commandhub.media")

# codec -> (container format, file extension, codec name for the muxer)
CONTAINERS = {"VP8": ("webm", ".webm", "vp8"), "H264": ("matroska", ".mkv", "h264")}


class Packet(Protocol):
    """An encoded video frame (`hub.forward.EncodedPacket` fits)."""

    @property
    def data(self) -> bytes: ...
    @property
    def pts(self) -> int: ...
    @property
    def clock_rate(self) -> int: ...
    @property
    def codec(self) -> str: ...
    @property
    def keyframe(self) -> bool: ...
    @property
    def arrival(self) -> float: ...


@dataclass(frozen=True)
class Segment:
    """A closed recording file; `payload()` is the `media.recording` event payload."""

    name: str  # department id or "wall"
    path: Path
    sha256: str
    start_ts_us: int  # log clock time of the first frame
    end_ts_us: int  # log clock time of the last frame
    frames: int
    size: int

    def payload(self) -> dict[str, Any]:
        return {
            "dept": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "start_ts_us": self.start_ts_us,
            "end_ts_us": self.end_ts_us,
        }


@dataclass(frozen=True)
class Snapshot:
    """A JPEG written to disk; `payload()` is the `media.snapshot` event payload."""

    dept: str
    path: Path
    sha256: str
    ts_us: int
    command_id: str | None = None
    report_id: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "dept": self.dept,
            "path": str(self.path),
            "sha256": self.sha256,
            "command_id": self.command_id,
            "report_id": self.report_id,
        }


@dataclass(frozen=True)
class MediaError:
    """A failed write (disk full, I/O error, permission); `payload()` for a `media.error` event."""

    name: str
    path: str
    op: str  # "open", "write", "close", "snapshot"
    errno: str  # symbolic, e.g. "ENOSPC"; "" when not an OS error
    message: str

    def payload(self) -> dict[str, Any]:
        return {
            "dept": self.name,
            "path": self.path,
            "op": self.op,
            "errno": self.errno,
            "message": self.message,
        }


class MediaWriteError(Exception):
    """A media file could not be written; `.error` describes it for the log."""

    def __init__(self, error: MediaError) -> None:
        super().__init__(f"{error.op} {error.path}: {error.message}")
        self.error = error


def media_error(name: str, path: Path | str, op: str, exc: BaseException) -> MediaError:
    code = getattr(exc, "errno", None)
    sym = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    return MediaError(name, str(path), op, sym, str(exc) or type(exc).__name__)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def monotonic_to_wall_us() -> Callable[[float], int]:
    """Map `time.monotonic()` readings to wall-clock microseconds (offset taken now)."""
    offset = time.time() - time.monotonic()
    return lambda t: round((t + offset) * 1e6)


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 key frame header, None for an inter frame or bad data."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return (data[6] | data[7] << 8) & 0x3FFF, (data[8] | data[9] << 8) & 0x3FFF


def keyframe_size(codec: str, data: bytes) -> tuple[int, int] | None:
    """Picture size of a key frame: parsed for VP8, decoded once for H264."""
    if codec == "VP8":
        return vp8_size(data)
    ctx: Any = av.CodecContext.create(CONTAINERS[codec][2], "r")
    try:
        for frame in ctx.decode(av.Packet(data)):
            return int(frame.width), int(frame.height)
    except av.FFmpegError:
        return None
    return None


Opener = Callable[[Path], IO[bytes]]


def _open_file(path: Path) -> IO[bytes]:
    return path.open("wb")


class _OpenSegment:
    def __init__(self, path: Path, file: IO[bytes], container: Any, stream: Any) -> None:
        self.path, self.file, self.container, self.stream = path, file, container, stream
        self.first_pts = 0
        self.last_pts = -1
        self.start_us = 0
        self.clock_rate = 90000
        self.frames = 0


class SegmentRecorder:
    """Writes one feed's encoded frames into segment files without re-encoding.

    A segment starts on a key frame and is closed at the first key frame after
    `max_segment_s` (a key frame is requested when that time is reached, since WebRTC senders
    send few). Each closed file is reported to `on_segment` with its SHA-256 and log-clock
    start/end. Write errors (ENOSPC, EIO, ...) go to `on_error` and a console warning; the
    segment is abandoned and recording resumes at a key frame after `retry_after_s`.
    """

    def __init__(
        self,
        directory: Path | str,
        name: str,
        *,
        on_segment: Callable[[Segment], None],
        on_error: Callable[[MediaError], None],
        to_log_us: Callable[[float], int] | None = None,
        request_keyframe: Callable[[], None] | None = None,
        max_segment_s: float = 60.0,
        retry_after_s: float = 5.0,
        opener: Opener = _open_file,
    ) -> None:
        if max_segment_s <= 0:
            raise ValueError("max_segment_s must be > 0")
        self.directory = Path(directory)
        self.name = name
        self.on_segment = on_segment
        self.on_error = on_error
        self.to_log_us = to_log_us or monotonic_to_wall_us()
        self.request_keyframe = request_keyframe or (lambda: None)
        self.max_segment_s = max_segment_s
        self.retry_after_s = retry_after_s
        self.opener = opener
        self._seg: _OpenSegment | None = None
        self._seq = 0
        self._paused_until = float("-inf")
        self._asked_keyframe = False
        self.segments: list[Segment] = []
        self.errors: list[MediaError] = []

    @property
    def recording(self) -> bool:
        return self._seg is not None

    def push(self, packet: Packet) -> None:
        """One encoded frame of the feed."""
        if packet.codec not in CONTAINERS:
            return  # audio or an unsupported codec: not recorded here
        seg = self._seg
        if seg is not None:
            elapsed = (packet.pts - seg.first_pts) / seg.clock_rate
            if elapsed >= self.max_segment_s:
                if packet.keyframe:
                    self.close()
                    seg = None
                elif not self._asked_keyframe:
                    self._asked_keyframe = True
                    self.request_keyframe()
        if seg is None:
            if packet.arrival < self._paused_until:
                return
            if not packet.keyframe:
                if not self._asked_keyframe:
                    self._asked_keyframe = True
                    self.request_keyframe()
                return
            seg = self._start(packet)
            if seg is None:
                return
        self._write(seg, packet)

    def close(self) -> Segment | None:
        """Close the open segment (if any) and report it."""
        seg, self._seg = self._seg, None
        if seg is None:
            return None
        try:
            seg.container.close()
            seg.file.close()
            digest = sha256_file(seg.path)
            size = seg.path.stat().st_size
        except (OSError, av.FFmpegError) as exc:
            self._fail(seg, "close", exc)
            return None
        end_us = seg.start_us + round((seg.last_pts - seg.first_pts) * 1e6 / seg.clock_rate)
        segment = Segment(self.name, seg.path, digest, seg.start_us, end_us, seg.frames, size)
        self.segments.append(segment)
        self.on_segment(segment)
        return segment

    # -- internals ------------------------------------------------------------------------

    def _start(self, packet: Packet) -> _OpenSegment | None:
        fmt, ext, codec_name = CONTAINERS[packet.codec]
        start_us = self.to_log_us(packet.arrival)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(start_us / 1e6))
        self._seq += 1
        path = self.directory / f"{self.name}-{stamp}-{self._seq:04d}{ext}"
        size = keyframe_size(packet.codec, packet.data)
        if size is None:
            return None  # not a decodable key frame: wait for the next one
        file: IO[bytes] | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            file = self.opener(path)
            container: Any = av.open(file, "w", format=fmt)
            stream = container.add_mux_stream(codec_name, width=size[0], height=size[1])
            stream.time_base = Fraction(1, packet.clock_rate)
        except (OSError, av.FFmpegError) as exc:
            if file is not None:
                _quiet_close(file)
            self._report(media_error(self.name, path, "open", exc), packet.arrival)
            return None
        seg = _OpenSegment(path, file, container, stream)
        seg.first_pts, seg.start_us, seg.clock_rate = packet.pts, start_us, packet.clock_rate
        self._seg = seg
        self._asked_keyframe = False
        return seg

    def _write(self, seg: _OpenSegment, packet: Packet) -> None:
        pts = max(packet.pts - seg.first_pts, seg.last_pts - seg.first_pts + 1)
        p = av.Packet(packet.data)
        p.pts = p.dts = pts
        p.time_base = seg.stream.time_base
        p.stream = seg.stream
        if packet.keyframe:
            p.is_keyframe = True
        try:
            seg.container.mux(p)
        except (OSError, av.FFmpegError) as exc:
            self._seg = None
            self._fail(seg, "write", exc, packet.arrival)
            return
        seg.last_pts = seg.first_pts + pts
        seg.frames += 1

    def _fail(self, seg: _OpenSegment, op: str, exc: BaseException, at: float | None = None) -> None:
        _quiet_close(seg.container)
        _quiet_close(seg.file)
        self._report(media_error(self.name, seg.path, op, exc), at)

    def _report(self, error: MediaError, at: float | None) -> None:
        self.errors.append(error)
        log.warning(
            "recording %s: %s %s failed: %s %s",
            error.name,
            error.op,
            error.path,
            error.errno,
            error.message,
        )
        if at is not None:
            self._paused_until = at + self.retry_after_s
        self.on_error(error)


def _quiet_close(obj: Any) -> None:
    try:
        obj.close()
    except Exception:  # already failing: the first error is the one reported
        log.debug("close after a failed write also failed", exc_info=True)


class FrameEncoder:
    """Encodes composed frames (the wall) to VP8 packets for a `SegmentRecorder`.

    A key frame every `keyframe_s` so segments can roll over; one encoder thread (libvpx's
    worker threads spin and waste CPU on shared cores).
    """

    def __init__(
        self, width: int, height: int, fps: float = 15.0, bitrate: int = 1_500_000, keyframe_s: float = 10.0
    ) -> None:
        self.clock_rate = 90000
        self.fps = fps
        self._ctx: Any = av.CodecContext.create("libvpx", "w")
        ctx = self._ctx
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, self.clock_rate)
        ctx.bit_rate = bitrate
        ctx.gop_size = max(1, round(fps * keyframe_s))
        ctx.thread_count = 1
        ctx.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}

    def encode(self, bgr: np.ndarray, t: float) -> list[EncodedFrame]:
        """Encode the frame shown at monotonic time `t`."""
        yuv = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = round(t * self.clock_rate)
        frame.time_base = Fraction(1, self.clock_rate)
        return [
            EncodedFrame(bytes(p), int(p.pts or 0), self.clock_rate, "VP8", bool(p.is_keyframe), t)
            for p in self._ctx.encode(frame)
        ]


@dataclass(frozen=True)
class EncodedFrame:
    """An encoded frame made here (same fields as the hub's `EncodedPacket`)."""

    data: bytes
    pts: int
    clock_rate: int
    codec: str
    keyframe: bool
    arrival: float


def write_snapshot(
    directory: Path | str,
    dept: str,
    frame: np.ndarray,
    ts_us: int,
    *,
    command_id: str | None = None,
    report_id: str | None = None,
    quality: int = 85,
) -> Snapshot:
    """Write `frame` (HxWx3 BGR) as a JPEG and return its record; raises MediaWriteError."""
    directory = Path(directory)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(ts_us / 1e6))
    ref = report_id or command_id or "manual"
    path = directory / f"{dept}-{stamp}-{ts_us % 1_000_000:06d}-{_safe(ref)}.jpg"
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaWriteError(MediaError(dept, str(path), "snapshot", "", "JPEG encoding failed"))
    data = buf.tobytes()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        error = media_error(dept, path, "snapshot", exc)
        log.warning("snapshot %s: %s %s", dept, error.errno, error.message)
        raise MediaWriteError(error) from exc
    return Snapshot(dept, path, hashlib.sha256(data).hexdigest(), ts_us, command_id, report_id)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]

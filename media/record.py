"""Recording: forwarded frames remuxed into one file per session and codec, JPEG snapshots, write errors."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Protocol

import av
import cv2
import numpy as np

from media.encoded import RECORD_KEYFRAME_S, EncodedPacket

log = logging.getLogger("commandhub.media")

# codec -> (container format, file extension, codec name for the muxer). Both are Matroska:
# Cues index every key frame (seeking by the file's own index), clusters are written as they
# fill (a hub crash keeps what came before), and Debian's Chromium plays and seeks both.
CONTAINERS = {"VP8": ("webm", ".webm", "vp8"), "H264": ("matroska", ".mkv", "h264")}


class Packet(Protocol):
    """An encoded video frame (`media.encoded.EncodedPacket` fits)."""

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
    """A closed recording file; `payload()` is the `media.recording` event payload.

    Times: `start_ts_us`/`end_ts_us` are the hub (log) clock when the first and the last frame
    arrived; `duration_s` is the file's own media duration (first frame to the end of the last),
    `last_s` the last frame's media time (its arrival is `end_ts_us`).
    """

    name: str  # department id or "wall"
    path: Path
    sha256: str
    start_ts_us: int
    end_ts_us: int
    frames: int
    size: int
    codec: str = "VP8"
    session: str = ""  # one publishing session: its files share this id, numbered by `part`
    part: int = 1
    duration_s: float = 0.0
    last_s: float = 0.0

    def payload(self, base: Path | None = None) -> dict[str, Any]:
        """The event payload; `path` relative to `base` (the data folder) when it lies inside."""
        path = self.path
        if base is not None and path.is_relative_to(base):
            path = path.relative_to(base)
        return {
            "dept": self.name,
            "path": path.as_posix(),
            "sha256": self.sha256,
            "start_ts_us": self.start_ts_us,
            "end_ts_us": self.end_ts_us,
            "frames": self.frames,
            "size": self.size,
            "codec": self.codec,
            "session": self.session,
            "part": self.part,
            "duration_s": round(self.duration_s, 3),
            "last_s": round(self.last_s, 6),
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
ASK_AGAIN_S = 2.0  # a key frame request not answered within this long is sent again


def _open_file(path: Path) -> IO[bytes]:
    return path.open("xb")  # never overwrite a recording


def _stamp(ts_us: int) -> str:
    """UTC time with milliseconds for file names and session ids: 20250601T140322.123Z."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ts_us // 1_000_000)) + f".{ts_us // 1000 % 1000:03d}Z"


class _OpenFile:
    """The file being written."""

    def __init__(self, path: Path, file: IO[bytes], container: Any, stream: Any, packet: Packet,
                 start_us: int, part: int) -> None:
        self.path, self.file, self.container, self.stream = path, file, container, stream
        self.codec = packet.codec
        self.clock_rate = packet.clock_rate
        self.first_pts = packet.pts
        self.start_us = self.end_us = start_us
        self.part = part
        self.last_pts = packet.pts - 1  # pts of the last written frame
        self.last_key_pts = packet.pts
        self.interval = packet.clock_rate // 15  # the last frame interval (a frame's duration)
        self.frames = 0
        self.muxed_until = 0  # end of the last written frame, in clock ticks from first_pts


class SegmentRecorder:
    """Writes one feed's encoded frames into files without re-encoding (only the muxer runs).

    One file per publishing session and codec: `end_session()` ends a session (the publisher
    left), the next frame starts a new one (a new `session` id; files are numbered `part` 1, 2,
    ... within it). A file starts on a key frame and holds one codec; a new part starts when
    the codec changes, when the timeline restarts, after `close()` (idle feed) and at the first
    key frame after `max_segment_s` (a key frame is requested then, since WebRTC senders send
    few; one is also requested after `keyframe_s` without one, so that the Cues, the file's
    seek index, have an entry at least that often). Timestamps are the packets' own (RTP
    clock), so files play at the speed they were sent. Each closed file is reported to
    `on_segment` with its SHA-256, hub-clock span and media duration. Write errors (ENOSPC,
    EIO, ...) go to `on_error` and a console warning; the file is abandoned and recording
    resumes at a key frame after `retry_after_s`.

    Not thread-safe: call it from one thread (the hub's media worker).
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
        keyframe_s: float = RECORD_KEYFRAME_S,
        retry_after_s: float = 5.0,
        opener: Opener = _open_file,
    ) -> None:
        if max_segment_s <= 0 or keyframe_s <= 0:
            raise ValueError("max_segment_s and keyframe_s must be > 0")
        self.directory = Path(directory)
        self.name = name
        self.on_segment = on_segment
        self.on_error = on_error
        self.to_log_us = to_log_us or monotonic_to_wall_us()
        self.request_keyframe = request_keyframe or (lambda: None)
        self.max_segment_s = max_segment_s
        self.keyframe_s = keyframe_s
        self.retry_after_s = retry_after_s
        self.opener = opener
        self._file: _OpenFile | None = None
        self._session = ""  # "" between sessions
        self._part = 0
        self._paused_until = float("-inf")
        self._asked_at: float | None = None  # when a key frame was last asked for (arrival clock)
        self.duplicates = 0  # frames seen twice (same timestamp), not written again
        self.segments: list[Segment] = []
        self.errors: list[MediaError] = []

    @property
    def recording(self) -> bool:
        return self._file is not None

    @property
    def session(self) -> str:
        """The current session id ("" when none is open)."""
        return self._session

    def push(self, packet: Packet) -> None:
        """One encoded frame of the feed (as forwarded)."""
        if packet.codec not in CONTAINERS:
            return  # audio or an unsupported codec: not recorded here
        f = self._file
        if f is not None:
            if packet.codec != f.codec or packet.clock_rate != f.clock_rate or packet.pts < f.last_pts:
                self.close()  # another codec, or the sender's timeline restarted: a new file
                f = None
            elif packet.pts == f.last_pts:
                self.duplicates += 1  # the same frame again: it is in the file once
                return
            elif (packet.pts - f.first_pts) / f.clock_rate >= self.max_segment_s and packet.keyframe:
                self.close()
                f = None
            elif not packet.keyframe and self._may_ask(packet.arrival) and (
                    (packet.pts - f.first_pts) / f.clock_rate >= self.max_segment_s
                    or (packet.pts - f.last_key_pts) / f.clock_rate >= self.keyframe_s):
                self._ask_keyframe(packet.arrival)  # to roll over, or to keep the seek index dense
        if f is None:
            if packet.arrival < self._paused_until:
                return
            if not packet.keyframe:
                if self._may_ask(packet.arrival):
                    self._ask_keyframe(packet.arrival)
                return
            f = self._start(packet)
            if f is None:
                return
        self._write(f, packet)

    def close(self) -> Segment | None:
        """Close the open file (if any) and report it; the session goes on (next part)."""
        f, self._file = self._file, None
        if f is None:
            return None
        try:
            f.container.close()
            f.file.close()
            digest = sha256_file(f.path)
            size = f.path.stat().st_size
        except (OSError, av.FFmpegError) as exc:
            self._fail(f, "close", exc)
            return None
        segment = Segment(self.name, f.path, digest, f.start_us, f.end_us, f.frames, size, f.codec,
                          self._session, f.part, f.muxed_until / f.clock_rate,
                          (f.last_pts - f.first_pts) / f.clock_rate)
        self.segments.append(segment)
        self.on_segment(segment)
        return segment

    def end_session(self) -> Segment | None:
        """The publisher is gone: close its file; the next frame starts a new session."""
        segment = self.close()
        self._session, self._part = "", 0
        self._asked_at = None
        return segment

    # -- internals ------------------------------------------------------------------------

    def _may_ask(self, now: float) -> bool:
        """No key frame request is pending (or the last one, `ASK_AGAIN_S` ago, was lost)."""
        return self._asked_at is None or now - self._asked_at >= ASK_AGAIN_S

    def _ask_keyframe(self, now: float) -> None:
        self._asked_at = now
        self.request_keyframe()

    def _start(self, packet: Packet) -> _OpenFile | None:
        fmt, ext, codec_name = CONTAINERS[packet.codec]
        size = keyframe_size(packet.codec, packet.data)
        if size is None:
            return None  # not a decodable key frame: wait for the next one
        start_us = self.to_log_us(packet.arrival)
        if not self._session:
            self._session = f"{self.name}-{_stamp(start_us)}"
        self._part += 1
        path = self.directory / f"{self._session}-{self._part:03d}{ext}"
        file: IO[bytes] | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            file = self.opener(path)
            container: Any = av.open(file, "w", format=fmt)
            stream = container.add_mux_stream(codec_name, width=size[0], height=size[1])
            stream.time_base = Fraction(1, packet.clock_rate)  # the muxer may pick its own (1/1000)
        except (OSError, av.FFmpegError) as exc:
            if file is not None:
                _quiet_close(file)
            self._report(media_error(self.name, path, "open", exc), packet.arrival)
            return None
        f = _OpenFile(path, file, container, stream, packet, start_us, self._part)
        self._file = f
        self._asked_at = None
        return f

    def _write(self, f: _OpenFile, packet: Packet) -> None:
        """Mux one frame; its duration is taken as the interval before it (for the last frame)."""
        if f.frames:
            f.interval = packet.pts - f.last_pts
        p = av.Packet(packet.data)
        p.pts = p.dts = packet.pts - f.first_pts
        p.duration = f.interval
        p.time_base = Fraction(1, f.clock_rate)  # the packet's own clock; mux() rescales it
        p.stream = f.stream
        if packet.keyframe:
            p.is_keyframe = True
            f.last_key_pts = packet.pts
            self._asked_at = None
        try:
            f.container.mux(p)
        except (OSError, av.FFmpegError) as exc:
            self._file = None
            self._fail(f, "write", exc, packet.arrival)
            return
        f.frames += 1
        f.last_pts = packet.pts
        f.end_us = self.to_log_us(packet.arrival)
        f.muxed_until = packet.pts - f.first_pts + f.interval

    def _fail(self, f: _OpenFile, op: str, exc: BaseException, at: float | None = None) -> None:
        _quiet_close(f.container)
        _quiet_close(f.file)
        self._report(media_error(self.name, f.path, op, exc), at)

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


class MediaWorker:
    """One thread that runs media jobs in order (muxing, hashing, the wall's encoder).

    The event loop only queues: `submit()` per frame (dropped, returning False, when more than
    `max_backlog` jobs wait: a stalled disk must not grow memory), found by the thread when it
    next looks (every `poll_s`: waking a thread per frame costs the loop more than the muxing),
    `call()` for jobs that must run (closing files, the wall's frames), which wakes the thread
    and whose Future the loop can await (`asyncio.wrap_future`).
    """

    def __init__(self, name: str = "media-record", max_backlog: int = 2048,
                 poll_s: float = 0.05) -> None:
        self.max_backlog = max_backlog
        self.poll_s = poll_s
        self.dropped = 0
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...], Future[Any] | None] | None]
        self._jobs = deque()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        if len(self._jobs) >= self.max_backlog:
            self.dropped += 1
            return False
        self._jobs.append((fn, args, None))
        return True

    def call(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.append((fn, args, future))
        self._wake.set()
        return future

    def stop(self) -> None:
        """Run what is queued, then end the thread (does not wait)."""
        self._jobs.append(None)
        self._wake.set()

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.popleft()
            except IndexError:
                self._wake.wait(self.poll_s)
                self._wake.clear()  # a job queued meanwhile is in the deque: taken next
                continue
            if job is None:
                return
            fn, args, future = job
            try:
                result = fn(*args)
            except Exception as exc:  # a job's failure must not end the worker
                log.exception("media job %s failed", getattr(fn, "__qualname__", fn))
                if future is not None:
                    future.set_exception(exc)
            else:
                if future is not None:
                    future.set_result(result)


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
        self._want_keyframe = False

    def request_keyframe(self) -> None:
        """Make the next encoded frame a key frame (a recorder starting a file asks for one)."""
        self._want_keyframe = True

    def encode(self, bgr: np.ndarray, t: float) -> list[EncodedPacket]:
        """Encode the frame shown at monotonic time `t`."""
        yuv = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = round(t * self.clock_rate)
        frame.time_base = Fraction(1, self.clock_rate)
        if self._want_keyframe:
            self._want_keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        return [
            EncodedPacket(bytes(p), int(p.pts or 0), self.clock_rate, "VP8", bool(p.is_keyframe), t)
            for p in self._ctx.encode(frame)
        ]


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

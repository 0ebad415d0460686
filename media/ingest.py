"""Camera/file ingest through PyAV: H264/VP8 forwarded as demuxed (no re-encoding), reconnect with backoff."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import av

from media.encoded import EncodedPacket, is_keyframe
from media.redact import redact_text, redact_url, url_secrets

RTP_CLOCK = 90000
PASSTHROUGH = {"h264": "H264", "vp8": "VP8"}
MAX_SIZE = (1280, 720)  # transcoded sources are scaled down to fit


class IngestError(Exception):
    """A source could not be opened or read (bad URL, no video stream, network, decode)."""


@dataclass(frozen=True)
class IngestConfig:
    """Reconnect and I/O settings (the `ingest:` section of the media config).

    `backoff_initial_s` doubles after every failed attempt up to `backoff_max_s`; it resets
    once a connection delivered frames for `stable_s`. `max_attempts` consecutive failures
    end the ingest (None: keep trying). Files loop (`loop_files`) without a lost event.
    """

    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_attempts: int | None = None
    stable_s: float = 10.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    loop_files: bool = True
    transcode_bitrate: int = 1_000_000

    def __post_init__(self) -> None:
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or null")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> IngestConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown ingest settings: {sorted(unknown)}")
        return cls(**dict(data))

    def backoff(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failed attempts (>= 1)."""
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(failures - 1, 30)))


@dataclass(frozen=True)
class StreamInfo:
    """What an opened source carries; `payload()` goes into `ingest.connected`."""

    url: str
    codec: str  # as forwarded: "H264" or "VP8"
    source_codec: str  # as in the source, e.g. "h264", "mjpeg"
    passthrough: bool
    width: int
    height: int

    def payload(self) -> dict[str, Any]:
        return {"url": redact_url(self.url), "codec": self.codec, "source_codec": self.source_codec,
                "passthrough": self.passthrough, "width": self.width, "height": self.height}


def is_file_url(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter


def _av_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path if parts.scheme.lower() == "file" else url


Unit = tuple[bytes, int, bool]  # (data, pts, keyframe)


def whole_frames(units: Iterable[Unit], hold: bool) -> Iterator[Unit]:
    """One unit per frame, from the first key frame on: units with the same pts are one frame.

    FFmpeg's H264 parser splits an access unit where a camera repeats SPS/PPS in front of
    each slice (gst rtph264pay config-interval=-1 with a multi-slice encoder does): the parts
    share a pts and are joined here (`hold`: a frame is released when the next one begins,
    one frame interval later). Frames before the first key frame decode to nothing anywhere.
    """
    pending: Unit | None = None
    started = False
    for data, pts, key in units:
        if pending is not None and pending[1] == pts:
            pending = (pending[0] + data, pts, pending[2] or key)
            continue
        if pending is not None:
            started = started or pending[2]
            if started:
                yield pending
        pending = (data, pts, key)
        if not hold:
            started = started or key
            if started:
                yield pending
            pending = None
    if pending is not None and (started or pending[2]):
        yield pending


class _Transcoder:
    """Decodes a non-H264/VP8 source and encodes VP8 (one thread, realtime)."""

    def __init__(self, width: int, height: int, bitrate: int) -> None:
        scale = min(1.0, MAX_SIZE[0] / max(width, 1), MAX_SIZE[1] / max(height, 1))
        self.width, self.height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
        ctx: Any = av.CodecContext.create("libvpx", "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
        ctx.time_base = Fraction(1, RTP_CLOCK)
        ctx.bit_rate = bitrate
        ctx.thread_count = 1
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self.ctx = ctx
        self.want_keyframe = True

    def encode(self, frame: av.VideoFrame, pts: int) -> list[tuple[bytes, bool]]:
        out = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        out.pts, out.time_base = pts, Fraction(1, RTP_CLOCK)
        if self.want_keyframe:
            out.pict_type = av.video.frame.PictureType.I
            self.want_keyframe = False
        return [(bytes(p), bool(p.is_keyframe)) for p in self.ctx.encode(out)]


class Ingest:
    """One department's camera: open, forward packets, reconnect with backoff; run() until stopped.

    Callbacks run on the event loop: `on_connected(info)` after each successful open,
    `on_packet(packet)` per video frame (arrival stamped on the loop), `on_lost(reason)` when
    an open fails or a connection ends (files loop instead, unless `loop_files` is off).
    """

    def __init__(
        self, dept: str, url: str, *, config: IngestConfig | None = None,
        on_connected: Callable[[StreamInfo], None], on_packet: Callable[[EncodedPacket], None],
        on_lost: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dept, self.url = dept, url
        self.config = config or IngestConfig()
        self.on_connected, self.on_packet, self.on_lost = on_connected, on_packet, on_lost
        self.clock = clock
        self.attempts = 0
        self.failures = 0
        self.frames = 0
        self.connected = False
        self.last_error = ""
        self.info: StreamInfo | None = None
        self._stop = threading.Event()
        self._wake = asyncio.Event()
        self._keyframe = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, f"ingest-{dept}")

    def request_keyframe(self) -> None:
        """Passthrough sources cannot be asked; a transcoded one sends a key frame next."""
        self._keyframe.set()

    def status(self) -> dict[str, Any]:
        return {"url": redact_url(self.url), "connected": self.connected, "attempts": self.attempts,
                "failures": self.failures, "frames": self.frames, "last_error": self.last_error,
                "codec": self.info.codec if self.info else None,
                "passthrough": self.info.passthrough if self.info else None}

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._executor.shutdown(wait=False)

    async def run(self) -> bool:
        """Connect and reconnect until stopped; True when it gave up after `max_attempts`."""
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        try:
            while not self._stop.is_set():
                self.attempts += 1
                started = self.clock()
                try:
                    await self._loop.run_in_executor(self._executor, self._session)
                    reason = "end of stream"
                except IngestError as exc:
                    reason = redact_text(str(exc), url_secrets(self.url))  # FFmpeg quotes URLs
                except RuntimeError:  # executor shut down by stop()
                    break
                self.connected = False
                if self._stop.is_set():
                    break
                if self.frames and self.clock() - started >= cfg.stable_s:
                    self.failures = 0
                self.failures += 1
                self.last_error = reason
                self.on_lost(reason)
                if cfg.max_attempts is not None and self.failures >= cfg.max_attempts:
                    return True
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), cfg.backoff(self.failures))
        finally:
            self._executor.shutdown(wait=False)
        return False

    # -- the reading thread ----------------------------------------------------------------

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed() and not self._stop.is_set():
            loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, data: bytes, pts: int, codec: str, keyframe: bool) -> None:
        self.frames += 1
        self.on_packet(EncodedPacket(data, pts, RTP_CLOCK, codec, keyframe, self.clock()))

    def _connected(self, info: StreamInfo) -> None:
        self.connected = True
        self.info = info
        self.on_connected(info)

    def _session(self) -> None:
        """Open the source and forward its video until it ends (files: loop), fails or stop."""
        pts_base = 0
        first = True
        while not self._stop.is_set():
            last = self._play_once(pts_base, announce=first)
            first = False
            if not (is_file_url(self.url) and self.config.loop_files) or last is None:
                return
            pts_base = last + RTP_CLOCK // 15

    def _open(self) -> Any:
        cfg = self.config
        options = {"rtsp_transport": "tcp"} if self.url.lower().startswith("rtsp") else {}
        try:
            return av.open(_av_path(self.url), "r", options=options,
                           timeout=(cfg.open_timeout_s, cfg.read_timeout_s))
        except (av.FFmpegError, OSError) as exc:
            raise IngestError(f"open {redact_url(self.url)}: {exc}") from exc

    def _play_once(self, pts_base: int, announce: bool) -> int | None:
        """One pass over the source; returns the last forwarded pts (None: nothing forwarded)."""
        container = self._open()
        try:
            if not container.streams.video:
                raise IngestError(f"{redact_url(self.url)}: no video stream")
            stream = container.streams.video[0]
            name = stream.codec_context.name
            codec = PASSTHROUGH.get(name, "VP8")
            width, height = stream.codec_context.width, stream.codec_context.height
            transcoder = None if name in PASSTHROUGH else _Transcoder(
                width, height, self.config.transcode_bitrate)
            info = StreamInfo(self.url, codec, name, transcoder is None,
                              transcoder.width if transcoder else width,
                              transcoder.height if transcoder else height)
            if announce:
                self._call(self._connected, info)
            last: int | None = None
            for data, pts, keyframe in self._frames(container, stream, transcoder, pts_base):
                self._call(self._deliver, data, pts, codec, keyframe)
                last = pts
            return last
        except (av.FFmpegError, OSError) as exc:
            raise IngestError(f"read {redact_url(self.url)}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                container.close()

    def _frames(self, container: Any, stream: Any, transcoder: _Transcoder | None,
                pts_base: int) -> Iterator[tuple[bytes, int, bool]]:
        """(data, pts at 90 kHz, keyframe) per video frame, paced to real time by pts."""
        units = self._demuxed(container, stream, transcoder, pts_base)
        if transcoder is not None:
            return units
        return whole_frames(units, hold=stream.codec_context.name == "h264")

    def _demuxed(self, container: Any, stream: Any, transcoder: _Transcoder | None,
                 pts_base: int) -> Iterator[tuple[bytes, int, bool]]:
        """(data, pts at 90 kHz, keyframe) per demuxed packet (or encoded frame), paced by pts."""
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream) \
            if stream.codec_context.name == "h264" else None
        tb = stream.time_base or Fraction(1, RTP_CLOCK)
        codec = PASSTHROUGH.get(stream.codec_context.name, "VP8")
        first_pts: int | None = None
        wall0 = time.monotonic()
        for packet in container.demux(stream):
            if self._stop.is_set():
                return
            if packet.size == 0 or packet.pts is None:
                continue
            if first_pts is None:
                first_pts = packet.pts
            offset = float((packet.pts - first_pts) * tb)
            self._pace(wall0, offset)
            pts = pts_base + round(offset * RTP_CLOCK)
            if transcoder is not None:
                if self._keyframe.is_set():
                    self._keyframe.clear()
                    transcoder.want_keyframe = True
                for frame in packet.decode():
                    for data, key in transcoder.encode(frame, pts):
                        yield data, pts, key
                continue
            for out in (bsf.filter(packet) if bsf is not None else [packet]):
                data = bytes(out)
                yield data, pts, bool(packet.is_keyframe) or is_keyframe(codec, data)

    def _pace(self, wall0: float, offset: float) -> None:
        delay = wall0 + offset - time.monotonic()
        if delay > 0:
            self._stop.wait(min(delay, 2.0))

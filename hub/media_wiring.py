"""Wires media/ into the running hub: health and wall, recording, snapshots, camera ingest, WHIP/WHEP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from hub.eventlog import HUB
from hub.loadshed import Shedder, watch_loop_lag
from hub.logformat import Event
from hub.server import STATE_EXTRAS_KEY, authenticate
from hub.service import Hub
from hub.sfu.ice import IceConfig
from hub.sfu.tap import FeedTap
from hub.sfu.videohub import ExternalSource, Feed, VideoHub
from media.encoded import RECORD_KEYFRAME_S, EncodedPacket
from media.health import RESOLUTION, RESTORED, HealthConfig, HealthConfigError, HealthEvent
from media.ingest import Ingest, IngestConfig, StreamInfo
from media.monitor import SHED_WALL_FPS, FeedMonitor
from media.record import (
    FrameEncoder,
    MediaError,
    MediaWorker,
    Segment,
    SegmentRecorder,
)
from media.redact import CredentialStore, redact_url
from media.snapshots import Response, ResponseSnapshots
from media.wall import VideoWall, WallError

log = logging.getLogger("commandhub.media")

RESPONSES = frozenset({"command.acknowledged", "command.on_scene", "command.completed",
                       "command.declined"})
ERROR_REPEAT_S = 60.0  # the same (name, op, errno) media.error is logged at most this often
ENDED_POLL_S = 0.25  # how often recordings look for publishers that went away
IDLE_CLOSE_S = 10.0  # a feed with no frame for this long has its file closed (the next one opens anew)
MAX_HELD_FRAMES = 300  # camera frames held while its feed is being published


class MediaConfigError(Exception):
    """The media configuration (DATA/media.yaml or --media-config) is invalid."""


@dataclass(frozen=True)
class MediaOptions:
    """What the media wiring does; see docs/video.md ("Media in the hub") for the YAML file."""

    health: bool = True
    wall: bool = True
    record: bool = True
    record_wall: bool = False  # opt in (record: {wall: true}): composed, encoded while feeds are live
    snapshots: bool = True
    wall_layout: str = "4x4"
    wall_size: tuple[int, int] = (1280, 720)
    wall_fps: float = 15.0  # the WHEP wall track
    wall_record_fps: float = 5.0
    wall_viewers: int = 4  # WHEP wall viewers at once (each costs one VP8 encoder)
    segment_s: float = 60.0
    keyframe_s: float = RECORD_KEYFRAME_S  # a recording asks for a key frame after this long without one
    recordings: Path = Path("recordings")
    snapshot_dir: Path = Path("snapshots")
    health_config: HealthConfig = field(default_factory=HealthConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)

    @classmethod
    def load(cls, opts: Any, data: Path) -> MediaOptions:
        """From ServeOptions (`record`, `media_config` if present) and DATA/media.yaml."""
        path = getattr(opts, "media_config", None) or data / "media.yaml"
        doc: dict[str, Any] = {}
        if Path(path).is_file():
            try:
                loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise MediaConfigError(f"{path}: {exc}") from exc
            if not isinstance(loaded, dict):
                raise MediaConfigError(f"{path}: expected a mapping")
            doc = loaded
        try:
            return cls._from_doc(doc, opts, data)
        except (HealthConfigError, TypeError, ValueError, KeyError) as exc:
            raise MediaConfigError(f"{path}: {exc}") from exc

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], opts: Any, data: Path) -> MediaOptions:
        unknown = set(doc) - {"health", "wall", "record", "snapshots", "ingest"}
        if unknown:
            raise ValueError(f"unknown sections {sorted(unknown)}")
        wall, rec, snap = doc.get("wall") or {}, doc.get("record") or {}, doc.get("snapshots") or {}
        w, h = (int(v) for v in str(wall.get("size", "1280x720")).lower().split("x"))
        record = bool(rec.get("enabled", True)) and bool(getattr(opts, "record", True))
        return cls(
            health=bool((doc.get("health") or {}).get("enabled", True)),
            wall=bool(wall.get("enabled", True)),
            record=record,
            record_wall=record and bool(rec.get("wall", False)),
            snapshots=bool(snap.get("enabled", True)),
            wall_layout=str(wall.get("layout", "4x4")),
            wall_size=(w, h),
            wall_fps=float(wall.get("fps", 15.0)),
            wall_record_fps=float(wall.get("record_fps", 5.0)),
            wall_viewers=int(wall.get("viewers", 4)),
            segment_s=float(rec.get("segment_s", 60.0)),
            keyframe_s=float(rec.get("keyframe_s", RECORD_KEYFRAME_S)),
            recordings=data / str(rec.get("dir", "recordings")),
            snapshot_dir=data / str(snap.get("dir", "snapshots")),
            health_config=HealthConfig.from_mapping(
                {k: v for k, v in (doc.get("health") or {}).items() if k != "enabled"}),
            ingest=IngestConfig.from_mapping(doc.get("ingest") or {}),
        )


@dataclass
class _FeedRecording:
    """A department's recorder and the publisher whose session it is writing."""

    recorder: SegmentRecorder
    request_keyframe: Callable[[], None]
    source: object | None = None
    last_arrival: float = 0.0
    idle: bool = False
    resync: bool = False  # a frame was dropped (the worker lagged): wait for a key frame


@dataclass
class _IngestFeed:
    """One camera connection: its source, published once, and the frames that came first."""

    source: ExternalSource
    held: list[EncodedPacket] = field(default_factory=list)
    publishing: bool = False


class MediaWiring:
    """The media side of a running hub; every log event goes through `hub.emit` as the hub."""

    def __init__(self, hub: Hub, video: VideoHub, options: MediaOptions) -> None:
        self.hub, self.video, self.options = hub, video, options
        self.depts = list(hub.roster.ids)
        self._mono_offset_us = hub.clock.wall_us() - time.monotonic_ns() // 1000
        self._tasks: set[asyncio.Task[Any]] = set()
        self._io = concurrent.futures.ThreadPoolExecutor(1, "media-io")
        self._worker = MediaWorker("media-record")  # recording: muxing, hashing, the wall encoder
        self._recordings: dict[str, _FeedRecording] = {}
        self._ingest_outage: dict[str, float] = {}
        self._error_logged: dict[tuple[str, str, str], float] = {}
        self.errors_suppressed = 0
        self.recorders: dict[str, SegmentRecorder] = {}
        self.ingests: dict[str, Ingest] = {}
        self.credentials = CredentialStore(hub.data_dir)  # the only copy of camera passwords
        self._ingest_feeds: dict[str, _IngestFeed] = {}
        self._ingest_good: dict[str, float] = {}  # dept -> its camera's last good frame (monotonic)
        self.wall: VideoWall | None = None
        if options.wall:
            names = {d.id: d.name_zh for d in hub.roster.departments}
            try:
                self.wall = VideoWall(options.wall_layout, size=options.wall_size, names=names,
                                      order=self.depts)
            except WallError as exc:
                raise MediaConfigError(f"wall: {exc}") from exc
        self.monitor: FeedMonitor | None = None
        self.snapshots = ResponseSnapshots(
            options.snapshot_dir, self._io, emit=self.emit, on_error=self._media_error,
            spawn=lambda coro: self._spawn(coro, "snapshot"))
        self.shedder = Shedder()
        self.closed = False

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        opts = self.options
        if self.wall is not None:
            for dept in self.depts:
                self.wall.set_state(dept, online=self.hub.state.dept_online(dept))
        if opts.health or opts.wall:
            self.monitor = FeedMonitor(self._health_event, wall=self.wall,
                                       config=opts.health_config, judge=opts.health)
            self.set_wall_viewers(0)
            self.video.feed_listeners.append(self._on_feed)
            for dept, feed in self.video.feeds().items():
                if feed.live:
                    self.monitor.start_feed(dept, self.video.frame_tap(dept))
            self._spawn(self.monitor.run_ticker())
        if opts.record:
            for dept in self.depts:
                self._record_feed(dept, self.video.frame_tap(dept))
            self._spawn(self._close_ended_recordings())
            if opts.record_wall and self.wall is not None:
                self._spawn(self._record_wall(self.wall))
        if self.monitor is not None or opts.record:
            self._spawn(watch_loop_lag(self.shedder, self._shed), "media-shed")
        for d in self.hub.roster.departments:
            if d.source:
                await self.start_ingest(d.id, d.source, by="roster")

    async def stop(self) -> None:
        """Stop everything; close open recordings (registered in the log before it closes)."""
        self.closed = True
        for dept in list(self.ingests):
            await self.stop_ingest(dept, "hub_closed")
        if self.monitor is not None:
            await self.monitor.stop()
        tasks = [t for t in self._tasks if not t.get_name().startswith("media-emit")]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closing = [asyncio.wrap_future(self._worker.call(rec.end_session))
                   for rec in self.recorders.values()]
        if closing:
            await asyncio.wait(closing, timeout=10.0)
        self._worker.stop()
        await asyncio.sleep(0)  # the closed files' media.recording events are queued now
        emits = [t for t in self._tasks if not t.done()]
        if emits:
            await asyncio.wait(emits, timeout=5.0)
        self._io.shutdown(wait=False)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str = "media") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("media task %s failed", task.get_name(), exc_info=task.exception())

    def emit(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Log `kind` as the hub in the current operation (fire and forget, errors to the console)."""
        self._spawn(self.log_now(kind, payload), "media-emit")

    async def log_now(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Log `kind` as the hub and wait for the commit (errors to the console)."""
        try:
            await self.hub.emit(kind, dict(payload), HUB)
        except Exception as exc:  # the log closed or failed: the media side must not die
            log.warning("could not log %s: %s", kind, exc)

    def to_log_us(self, t: float) -> int:
        """A `time.monotonic()` reading as hub clock microseconds."""
        return round(t * 1e6) + self._mono_offset_us

    # -- health and the wall -----------------------------------------------------------------

    def _on_feed(self, change: str, feed: Feed, cause: str | None) -> None:
        """A department's feed went live or ended (VideoHub): health follows exactly that."""
        if self.monitor is None or self.closed:
            return
        if change == "published":
            self.monitor.start_feed(feed.dept, self.video.frame_tap(feed.dept))
        else:
            self.monitor.end_feed(feed.dept)

    def _health_event(self, ev: HealthEvent) -> None:
        """Log a picture-health event (`cause: picture`). Health only runs while a feed is
        live, so it never speaks for a publisher that is gone: that is the connection's or
        the ingest's `video.lost`, or a deliberate end (no outage)."""
        if not self.options.health:
            return
        if ev.kind == RESOLUTION:
            self.emit(RESOLUTION, ev.payload())
            return
        body = {**ev.payload(), "cause": "picture"}
        if ev.kind != RESTORED:
            body["since_us"] = self.to_log_us(ev.onset)
        self.emit(ev.kind, body)

    def set_wall_viewers(self, viewers: int) -> None:
        """Feed the wall's tiles only while someone uses them (WHEP wall viewers, or the wall
        recording when configured), and only as often: every frame of every live feed with a
        tile is decoded for the wall meanwhile. Nobody watching, nothing is decoded but
        health's samples, and the wall is neither composed nor encoded."""
        if self.monitor is not None:
            opts = self.options
            used = [opts.wall_fps] if viewers else []
            used += [opts.wall_record_fps] if opts.record_wall else []
            self.monitor.wall_fps = max(used, default=1.0)
            self.monitor.set_wall_active(self.wall is not None and bool(used))

    def _shed(self, on: bool) -> None:
        """The event loop runs late (the machine is starved) or has caught up again: media
        work (health samples, the wall's frame rate) gives way first."""
        log.warning("media: %s (event loop lag up to %.0f ms)",
                    "shedding health samples and wall frames" if on else "load shedding over",
                    self.shedder.max_lag_s * 1000)
        if self.monitor is not None:
            self.monitor.set_shedding(on)

    def uptime(self) -> dict[str, float]:
        return self.monitor.uptime() if self.monitor else {}

    # -- committed events: presence, overdue, snapshots ---------------------------------------

    def on_events(self, events: list[Event]) -> None:
        for ev in events:
            try:
                self._on_event(ev)
            except Exception:  # never break the hub's commit path
                log.exception("media: handling %s failed", ev.kind)

    def _on_event(self, ev: Event) -> None:
        wall, kind = self.wall, ev.kind
        if kind in ("presence.online", "presence.offline") and ev.role == "department" and ev.dept:
            if wall is not None:
                wall.set_state(ev.dept, online=self.hub.state.dept_online(ev.dept))
        elif kind in ("media.published", "media.unpublished") and wall is not None:
            dept = str(ev.payload.get("dept"))
            wall.set_state(dept, online=self.hub.state.dept_online(dept))
        elif kind == "command.overdue" and wall is not None:
            wall.set_state(str(ev.payload.get("dept")), overdue=True)
        elif kind in RESPONSES or kind == "report.field":
            dept = str(ev.payload.get("dept") or ev.dept)
            if wall is not None and kind in RESPONSES:
                wall.set_state(dept, overdue=False)
            if self.options.snapshots and not self.closed:
                command_id = ev.payload.get("command_id")
                report_id = ev.payload.get("report_id") if kind == "report.field" else None
                self.snapshot(dept, Response(ev.ts_us, str(command_id) if command_id else None,
                                             str(report_id) if report_id else None))

    def snapshot(self, dept: str, response: Response) -> bool:
        """JPEG of `dept`'s picture at the response, logged as media.snapshot (False: no
        publisher). A sample at most 1 s old, else a keyframe asked for and decoded (2 s at
        most), else the latest sample if younger than 10 s: any kind of publisher. Shared
        with the department's other responses meanwhile (media/snapshots.py)."""
        if self.video.video_source(dept) is None:
            return False
        self.snapshots.take(dept, self.video.frame_tap(dept).fresh_sample, response)
        return True

    # -- recording ---------------------------------------------------------------------------

    def _media_error(self, error: MediaError) -> None:
        key, now = (error.name, error.op, error.errno), time.monotonic()
        last = self._error_logged.get(key)
        if last is not None and now - last < ERROR_REPEAT_S:
            self.errors_suppressed += 1
            return
        self._error_logged[key] = now
        log.warning("MEDIA WRITE ERROR %s: %s %s: %s %s", error.name, error.op, error.path,
                    error.errno, error.message)
        self.emit("media.error", error.payload())

    def _recorder(self, name: str, request_keyframe: Callable[[], None]) -> SegmentRecorder:
        loop = asyncio.get_running_loop()
        data = self.hub.data_dir

        def on_segment(s: Segment) -> None:
            loop.call_soon_threadsafe(self.emit, "media.recording", s.payload(data))

        def on_error(e: MediaError) -> None:
            loop.call_soon_threadsafe(self._media_error, e)

        def keyframe() -> None:
            loop.call_soon_threadsafe(request_keyframe)

        rec = SegmentRecorder(self.options.recordings, name, on_segment=on_segment,
                              on_error=on_error, to_log_us=self.to_log_us, request_keyframe=keyframe,
                              max_segment_s=self.options.segment_s,
                              keyframe_s=self.options.keyframe_s)
        self.recorders[name] = rec
        return rec

    def _record_feed(self, dept: str, tap: FeedTap) -> None:
        """Record `dept`'s forwarded frames: one session per publisher (muxed in the worker)."""
        feed = _FeedRecording(self._recorder(dept, tap.request_keyframe), tap.request_keyframe)
        self._recordings[dept] = feed

        def on_packet(packet: EncodedPacket) -> None:  # on the loop, as the frame is forwarded
            source = self.video.video_source(dept)
            if source is not feed.source:  # another publisher: its own session and file
                if feed.source is not None:
                    self._worker.call(feed.recorder.end_session)
                feed.source = source
            feed.last_arrival, feed.idle = packet.arrival, False
            if feed.resync:
                if not packet.keyframe:
                    return
                feed.resync = False
            if not self._worker.submit(feed.recorder.push, packet):
                feed.resync = True  # a frame was lost: go on from the next key frame
                feed.request_keyframe()

        tap.listen(on_packet)

    async def _close_ended_recordings(self) -> None:
        """Close a feed's file soon after its publisher is gone (or its frames stopped)."""
        while not self.closed:
            now = time.monotonic()
            for dept, feed in self._recordings.items():
                if feed.source is None:
                    continue
                if self.video.video_source(dept) is not feed.source:
                    feed.source = None
                    self._worker.call(feed.recorder.end_session)
                elif not feed.idle and now - feed.last_arrival > IDLE_CLOSE_S:
                    feed.idle = True
                    self._worker.call(feed.recorder.close)
            await asyncio.sleep(ENDED_POLL_S)

    async def _record_wall(self, wall: VideoWall) -> None:
        """Compose the wall at `wall_record_fps`, encode VP8, record it while any feed publishes."""
        fps = self.options.wall_record_fps
        keyframe_s = min(self.options.keyframe_s, self.options.segment_s)
        encoder = FrameEncoder(*wall.size, fps=fps, keyframe_s=keyframe_s)
        rec = self._recorder("wall", encoder.request_keyframe)

        def encode_and_write(canvas: Any, t: float) -> None:
            for frame in encoder.encode(canvas, t):
                rec.push(frame)

        start, index, live, encoded = time.monotonic(), 0, False, -1e9
        pending: concurrent.futures.Future[None] | None = None
        while not self.closed:
            index += 1
            due = start + index / fps
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            if now - due > 1.0:
                start, index = now, 0  # fell behind: do not burst
            if not any(self.video.video_source(d) for d in self.hub.roster.ids):
                if live:  # nobody publishes any more: the wall's session ends
                    live = False
                    self._worker.call(rec.end_session)
                continue
            live = True
            if pending is not None and not pending.done():
                continue  # the encoder has not finished the last frame: skip this one
            if self.shedder.shedding and now - encoded < 0.95 / min(fps, SHED_WALL_FPS):
                continue  # the hub is starved: the wall's file gets fewer frames
            encoded = now
            canvas = wall.compose(time.strftime("%Y-%m-%d %H:%M:%S")).copy()
            pending = self._worker.call(encode_and_write, canvas, now)

    # -- camera ingest -----------------------------------------------------------------------

    async def start_ingest(self, dept: str, url: str, by: str = "api") -> None:
        """Ingest `url` as `dept`'s feed (replacing an earlier ingest of that department)."""
        url = self.credentials.resolve(dept, url)  # a redacted URL given back: the stored one
        self.credentials.remember(dept, url)
        if dept in self.ingests:
            await self.stop_ingest(dept, "replaced")
        ingest = Ingest(dept, url, config=self.options.ingest,
                        on_connected=lambda info: self._ingest_connected(dept, info),
                        on_packet=lambda p: self._ingest_packet(dept, p),
                        on_lost=lambda reason: self._ingest_lost(dept, reason))
        self.ingests[dept] = ingest
        self._ingest_good[dept] = time.monotonic()  # an outage before the first frame counts from here
        await self.log_now("ingest.started", {"dept": dept, "url": redact_url(url), "by": by})
        self._spawn(self._run_ingest(dept, ingest), f"ingest-{dept}")

    async def _run_ingest(self, dept: str, ingest: Ingest) -> None:
        gave_up = await ingest.run()
        if gave_up and self.ingests.get(dept) is ingest:
            del self.ingests[dept]
            self.emit("ingest.stopped", {"dept": dept, "reason": "gave_up",
                                         "attempts": ingest.attempts})

    async def stop_ingest(self, dept: str, reason: str = "stopped") -> bool:
        ingest = self.ingests.pop(dept, None)
        if ingest is None:
            return False
        await ingest.stop()
        feed = self._ingest_feeds.pop(dept, None)
        if feed is not None:
            await self.video.remove_external(dept, feed.source,
                                             "left" if reason == "stopped" else reason)
        self._ingest_outage.pop(dept, None)
        self._ingest_good.pop(dept, None)
        # logged before the caller (DELETE /api/ingest) answers: what it reads next shows it
        await self.log_now("ingest.stopped", {"dept": dept, "reason": reason,
                                              "attempts": ingest.attempts})
        return True

    def _ingest_connected(self, dept: str, info: StreamInfo) -> None:
        ingest = self.ingests.get(dept)
        if ingest is None:
            return
        old = self._ingest_feeds.pop(dept, None)
        if old is not None:
            self._spawn(self.video.remove_external(dept, old.source, "replaced"),
                        "ingest-unpublish")
        source = ExternalSource(dept, info.codec, on_keyframe_request=ingest.request_keyframe)
        self._ingest_feeds[dept] = _IngestFeed(source)
        self.emit("ingest.connected", {"dept": dept, **info.payload()})

    def _ingest_packet(self, dept: str, packet: EncodedPacket) -> None:
        """One camera frame: forwarded once, in order; held while the feed is being published."""
        feed = self._ingest_feeds.get(dept)
        if feed is None or feed.source.closed:
            return
        self._ingest_good[dept] = packet.arrival
        started = self._ingest_outage.pop(dept, None)
        if started is not None:  # the first frame after an outage
            self.emit("video.restored", {"dept": dept, "was": "lost", "cause": "ingest",
                                         "duration_s": round(packet.arrival - started, 3)})
        current = self.video.video_source(dept)
        if current is feed.source and not feed.publishing:
            feed.source.deliver(packet)
            return
        if current is not None and current is not feed.source:
            return  # a WebRTC publisher of the department has precedence
        if len(feed.held) >= MAX_HELD_FRAMES:
            feed.held.clear()  # publishing is stuck: start again at the next key frame
        if packet.keyframe or feed.held:
            feed.held.append(packet)
        if not feed.publishing and not self.closed:
            feed.publishing = True
            self._spawn(self._publish_ingest(dept, feed), "ingest-publish")

    async def _publish_ingest(self, dept: str, feed: _IngestFeed) -> None:
        """Publish the camera as `dept`'s video (once), then forward the frames held meanwhile."""
        try:
            if (self.video.video_source(dept) is None and not feed.source.closed
                    and self._ingest_feeds.get(dept) is feed):
                await self.video.add_external(dept, feed.source)
        finally:
            feed.publishing = False
            held, feed.held = feed.held, []
        if self.video.video_source(dept) is feed.source:
            for packet in held:
                feed.source.deliver(packet)

    def _ingest_lost(self, dept: str, reason: str) -> None:
        feed = self._ingest_feeds.pop(dept, None)
        if feed is not None:
            self._spawn(self.video.remove_external(dept, feed.source, "error"), "ingest-unpublish")
        if dept not in self._ingest_outage and dept in self.ingests:
            since = self._ingest_good.get(dept, time.monotonic())  # the last good frame
            self._ingest_outage[dept] = since
            url = self.ingests[dept].url
            self.emit("video.lost", {"dept": dept, "cause": "ingest", "since_us": self.to_log_us(since),
                                     "reason": reason[:200],
                                     "url": redact_url(url)})

    # -- state -------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "uptime": {d: round(u, 4) for d, u in self.uptime().items()},
            "health": {d: self.monitor.health.state(d) for d in self.depts} if self.monitor
            else {},
            "recording": {n: r.recording for n, r in self.recorders.items()},
            "segments": sum(len(r.segments) for r in self.recorders.values()),
            "record_dropped": self._worker.dropped,  # frames not recorded: the worker lagged
            "shedding": self.shedder.shedding,  # media work gives way to a starved event loop
            "shed_episodes": self.shedder.episodes,
            "loop_lag_max_ms": round(self.shedder.max_lag_s * 1000, 1),
            "ingest": {d: i.status() for d, i in self.ingests.items()},
            "errors_suppressed": self.errors_suppressed,
            "snapshots": self.snapshots.stats(),
        }


MEDIA_KEY = web.AppKey("media", MediaWiring)


async def _ingest_api(request: web.Request) -> web.Response:
    """POST /api/ingest {dept, url} starts, DELETE /api/ingest/{dept} stops (commander)."""
    if request.method not in ("GET", "POST", "DELETE"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST", "DELETE"])
    principal = await authenticate(request)
    principal.require("route.change")
    media = request.app[MEDIA_KEY]
    if request.method == "DELETE":
        dept = request.match_info.get("dept", "")
        if not await media.stop_ingest(dept):
            raise web.HTTPNotFound(reason=f"no ingest for {dept!r}")
        return web.json_response({"stopped": dept})
    if request.method == "GET":
        return web.json_response({"ingest": {d: i.status() for d, i in media.ingests.items()}})
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(reason="body must be JSON") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="body must be a JSON object {dept, url}")
    dept, url = str(body.get("dept")), body.get("url")
    if dept not in media.depts:
        raise web.HTTPNotFound(reason=f"unknown department {dept!r}")
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise web.HTTPBadRequest(reason="url: required")
    await media.start_ingest(dept, url, by=f"{principal.role}")
    return web.json_response({"started": dept, "url": redact_url(url)}, status=201)


def attach_media(app: web.Application, hub: Hub, video: VideoHub, opts: Any) -> None:
    """Health, wall, recording, snapshots, ingest and WHIP/WHEP for a hub's web app."""
    from hub.whip import WhipEndpoints

    options = MediaOptions.load(opts, hub.data_dir)
    media = MediaWiring(hub, video, options)
    app[MEDIA_KEY] = media
    app[STATE_EXTRAS_KEY].append(lambda: {"media": media.stats()})
    hub.listeners.append(media.on_events)
    whip = WhipEndpoints(hub, video, IceConfig(hosts=tuple(getattr(opts, "ice_hosts", ()))),
                         wall=media.wall, wall_fps=options.wall_fps,
                         max_wall_viewers=options.wall_viewers, on_wall_viewers=media.set_wall_viewers)
    whip.add_routes(app)
    app.router.add_route("*", "/api/ingest", _ingest_api)
    app.router.add_route("DELETE", "/api/ingest/{dept}", _ingest_api)

    async def start(_: web.Application) -> None:
        await media.start()

    async def stop(_: web.Application) -> None:
        await whip.close()
        await media.stop()

    app.on_startup.append(start)
    app.on_cleanup.insert(0, stop)

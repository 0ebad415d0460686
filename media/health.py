"""Stream health per feed (fps, frozen, black/blank, lost, resolution): a pure state machine."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

# Event kinds written to the log (docs/events.md, "Video and media").
LOST = "video.lost"
FROZEN = "video.frozen"
BLACK = "video.black"
RESTORED = "video.restored"
# Not (yet) a logged kind in docs/events.md: a feed's picture size changed.
RESOLUTION = "video.resolution"

State = Literal["ok", "frozen", "black", "lost"]
BAD_KIND: dict[str, str] = {"frozen": FROZEN, "black": BLACK, "lost": LOST}
MAX_SAMPLE_FPS = 2.0  # decoded samples per feed and second, at most


class HealthConfigError(ValueError):
    """A health threshold is out of range."""


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds for stream health; all times in seconds of the injected clock.

    Health is judged from two inputs (see `FeedHealth`): every forwarded frame's arrival time,
    size and keyframe flag (no decoding), and a few decoded pictures ("samples").

    - `sample_fps` 1.0: samples per second while the picture looks fine; `alert_sample_fps`
      2.0 while the stream looks static, a sample looked unchanged or black, or the picture is
      bad. At most 2 each: a sample is a decoded keyframe, which a WebRTC publisher is asked
      for (one more keyframe a second costs it some bitrate).
    - `frozen_samples` 3, `black_samples` 3: on a stream that codes change, a sample's
      verdict needs this many samples in agreement (unchanged since the reference, or
      black), besides the time: samples taken slowly (a publisher late with keyframes under
      load) are otherwise few enough to agree by chance. One unchanged sample suffices when
      it is also the same as the frame next to it (still now, not a periodic motion seen at
      one phase), or on a static stream (the encoder itself says nothing changes), where
      two black ones do too.
    - `static_s` 0.4, `static_bytes_per_kpx` 0.8, `static_min_bytes` 64, `change_frames` 2:
      the stream is static once its non-key frames have stayed at most
      max(`static_min_bytes`, `static_bytes_per_kpx` x kilopixels) bytes for `static_s` since
      the last run of `change_frames` larger ones: the encoder codes no change (a frozen or a
      black picture). The static stream dates a freeze or blackout to its first frame and
      keeps a sample's verdict valid between samples; `change_frames` larger frames end it.
      Encoders that keep refining a still picture (CBR VP8) never look static: samples alone
      judge them.
    - `thumb_size` (32, 24): frozen/black analysis runs on a gray thumbnail of this size
      (area-averaged, then a 3x3 Gaussian blur), which averages sensor noise away.
    - `frozen_after_s` 3.0: the picture has not changed for this long -> `video.frozen`.
    - `frozen_mean_diff` 1.5: "changed" if the mean absolute difference (0..255 gray levels)
      between the thumbnail and the previous sample's exceeds this, or if more than
      `frozen_changed_cells` 0.01 of the cells differ by more than `frozen_cell_diff` 12.0
      (so a small moving region, e.g. a clock stamp, counts as change).
    - `frozen_drift_factor` 2.0: the picture also counts as changed when it differs from the
      reference (the sample where it last changed) by this many times the thresholds above,
      so a slow drift made of sub-threshold steps still counts once it adds up.
    - `black_luma` 24.0 and `black_std` 4.0: mean and standard deviation of the thumbnail's luma
      below these -> black; `blank_std` 2.0: any uniform picture (e.g. a blue "no signal"
      screen) counts as blank, reported as `video.black`.
    - `black_after_s` 1.0: black/blank for this long -> `video.black`.
    - `uniform_key_bpp` 0.004, `uniform_key_base` 1000, `uniform_key_ratio` 0.5: a uniform
      picture compresses to a tiny keyframe (measured: VP8 0.0017-0.0021 bytes a pixel, x264
      900 bytes + 0.004 a pixel; Chromium's fake camera 0.007-0.022). A sample decoded on its
      own from a keyframe that looks black or blank is not believed when that keyframe is
      bigger than `uniform_key_base` + `uniform_key_bpp` a pixel and than `uniform_key_ratio`
      of the feed's usual keyframe (median of its last 8, once it has 3): the decoder failed
      (a grey picture, as from a damaged keyframe), the camera did not go dark; another
      sample is asked for.
    - `lost_after_s` 3.0: no frame for this long -> `video.lost` (`tick`).
    - `fps_window_s` 2.0: frames per second are counted over this sliding window.
    """

    sample_fps: float = 1.0
    alert_sample_fps: float = 2.0
    frozen_samples: int = 3
    black_samples: int = 3
    static_s: float = 0.4
    static_bytes_per_kpx: float = 0.8
    static_min_bytes: int = 64
    change_frames: int = 2
    thumb_size: tuple[int, int] = (32, 24)
    frozen_after_s: float = 3.0
    frozen_mean_diff: float = 1.5
    frozen_cell_diff: float = 12.0
    frozen_changed_cells: float = 0.01
    frozen_drift_factor: float = 2.0
    black_luma: float = 24.0
    black_std: float = 4.0
    blank_std: float = 2.0
    black_after_s: float = 1.0
    uniform_key_bpp: float = 0.004
    uniform_key_base: int = 1000
    uniform_key_ratio: float = 0.5
    lost_after_s: float = 3.0
    fps_window_s: float = 2.0

    def __post_init__(self) -> None:
        positive = {
            "static_s": self.static_s,
            "frozen_after_s": self.frozen_after_s,
            "black_after_s": self.black_after_s,
            "lost_after_s": self.lost_after_s,
            "fps_window_s": self.fps_window_s,
        }
        for name, value in positive.items():
            if not value > 0:
                raise HealthConfigError(f"{name} must be > 0, got {value}")
        for name, value in {"sample_fps": self.sample_fps,
                            "alert_sample_fps": self.alert_sample_fps}.items():
            if not 0 < value <= MAX_SAMPLE_FPS:
                raise HealthConfigError(f"{name} must be in (0, {MAX_SAMPLE_FPS}], got {value}")
        if self.alert_sample_fps < self.sample_fps:
            raise HealthConfigError("alert_sample_fps must be >= sample_fps")
        if self.frozen_samples < 1 or self.black_samples < 2:
            raise HealthConfigError("frozen_samples must be >= 1, black_samples >= 2")
        if self.change_frames < 1 or self.static_min_bytes < 0 or self.static_bytes_per_kpx < 0:
            raise HealthConfigError("change_frames must be >= 1, static byte limits >= 0")
        if min(self.thumb_size) < 4:
            raise HealthConfigError(f"thumb_size too small: {self.thumb_size}")
        if not 0 <= self.frozen_changed_cells < 1:
            raise HealthConfigError("frozen_changed_cells must be in [0, 1)")
        if self.frozen_drift_factor < 1:
            raise HealthConfigError("frozen_drift_factor must be >= 1")

    def static_limit(self, size: tuple[int, int] | None) -> float:
        """Largest non-key frame (bytes) that codes no change, for a picture of `size`."""
        w, h = size or (320, 240)
        return max(float(self.static_min_bytes), self.static_bytes_per_kpx * w * h / 1000)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> HealthConfig:
        """Build from a config mapping (e.g. the `health:` section of a YAML file)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise HealthConfigError(f"unknown health settings: {sorted(unknown)}")
        values = dict(data)
        if "thumb_size" in values:
            w, h = values["thumb_size"]
            values["thumb_size"] = (int(w), int(h))
        return cls(**values)


@dataclass(frozen=True)
class HealthEvent:
    """One health transition at time `t`; `onset` is when the condition began (<= t)."""

    kind: str
    dept: str
    t: float
    onset: float
    was: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.t - self.onset

    def payload(self) -> dict[str, Any]:
        """The log payload as docs/events.md defines it for this kind."""
        if self.kind == RESTORED:
            return {"dept": self.dept, "was": self.was, "duration_s": round(self.duration_s, 3)}
        return {"dept": self.dept, **self.detail}


@dataclass(frozen=True)
class Analysis:
    """What one sampled frame looked like: its gray thumbnail, luma statistics and size."""

    thumb: np.ndarray
    mean: float
    std: float
    size: tuple[int, int]


def analyse(frame: np.ndarray, config: HealthConfig) -> Analysis:
    """Thumbnail and luma stats of a BGR (HxWx3) or gray (HxW) uint8 frame."""
    if frame.ndim not in (2, 3) or frame.size == 0:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {frame.shape}")
    h, w = frame.shape[:2]
    small = cv2.resize(frame, config.thumb_size, interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    thumb = cv2.GaussianBlur(small.astype(np.float32), (3, 3), 0)
    mean, std = cv2.meanStdDev(thumb)
    return Analysis(thumb, float(mean[0, 0]), float(std[0, 0]), (w, h))


@dataclass(frozen=True)
class _Sample:
    t: float
    black: bool


class FeedHealth:
    """Health of one department's feed. Pure: time is passed in, nothing is read from clocks.

    Inputs: `frame(t, size, keyframe)` for every forwarded frame (arrival, bytes, keyframe:
    no decoding), `sample(t, analysis)` for a decoded picture (`due(t)` says when one is
    wanted: at most `alert_sample_fps` a second), and `tick(t)` a few times a second. Each
    returns the events it caused. `observe(t, image)` is a frame and a sample in one.

    - lost: no frame for `lost_after_s`; restored at the next frame.
    - black / frozen: a sample says so (dark or uniform; unchanged since the sample where the
      picture last changed). When the stream has been static since before the latest sample,
      that sample's verdict holds until the stream changes again, and the problem is dated to
      the stream's first still frame; otherwise a verdict holds at the sample's time only.
    - restored: a sample that is fine, or (for a problem found on a static stream) the stream
      changing again, which needs no decoding.

    States: ok, black, frozen, lost (priority lost > black > frozen). An outage starts with
    the first bad event and ends with `video.restored`, whose `was` is the state just before
    recovery and whose `duration_s` runs from the outage's onset (when the picture stopped
    changing, went black, or the last frame arrived), not from its detection. `end(t)` closes
    the feed (its publisher left): an open outage ends there, with no event.
    """

    def __init__(self, dept: str, config: HealthConfig | None = None, start: float = 0.0) -> None:
        self.dept = dept
        self.config = config or HealthConfig()
        self.start = start
        self.ended_at: float | None = None
        self.state: State = "ok"
        self.outage_onset: float | None = None
        self.outages: list[tuple[float, float]] = []  # closed outages (onset, end)
        self.size: tuple[int, int] | None = None
        self.last_frame_t: float | None = None
        self.last_sample_t: float | None = None
        self._arrivals: deque[float] = deque()
        self._ref: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._ref_t = start  # time the picture last changed, by the samples
        self._unchanged = 0  # samples since the reference that found the picture unchanged
        self._still = False  # the latest sample was the same as the frame next to it
        self._black_since: float | None = None  # first black sample of the current black run
        self._black_samples = 0  # black samples in that run: one alone is never a verdict
        self._sample: _Sample | None = None  # the latest sample's verdict inputs
        # the stream (frame sizes): consecutive larger frames, and the first of the small ones
        # since the last run of `change_frames` larger frames (None: the stream is changing)
        self._big_run = 0
        self._small_since: float | None = None
        self._key_sizes: deque[int] = deque(maxlen=8)  # bytes of the latest keyframes
        self.untrusted_samples = 0  # black-looking samples of keyframes too big to be uniform

    # -- inputs ---------------------------------------------------------------------------

    def frame(self, t: float, size: int | None = None, keyframe: bool = False) -> list[HealthEvent]:
        """A frame arrived at `t`: `size` in bytes of a non-key frame tells the stream's activity."""
        if self.ended_at is not None:
            return []
        self.last_frame_t = t
        self._arrivals.append(t)
        self._trim(t)
        events: list[HealthEvent] = []
        if self.state == "lost":
            events += self._restore(t)  # frames flow again; the picture is judged afresh
        if size is not None and keyframe:
            self._key_sizes.append(size)
        if size is not None and not keyframe:
            if size > self.config.static_limit(self.size):
                self._big_run += 1
                if self._big_run >= self.config.change_frames:
                    if self._static_since() is not None:
                        # a static stream changes: so did the picture; the samples are stale
                        self._ref_t, self._black_since, self._sample = t, None, None
                        self._black_samples = self._unchanged = 0
                        if self.state in ("frozen", "black"):
                            events += self._restore(t)
                    self._small_since = None
            else:
                self._big_run = 0
                if self._small_since is None:
                    self._small_since = t
            events += self._judge(t)
        return events

    def due(self, t: float) -> bool:
        """True when a decoded sample is wanted (at most `alert_sample_fps` per second)."""
        if self.ended_at is not None:
            return False
        if self.last_sample_t is None:
            return True
        # a little slack so that frames arriving at exactly the sampling period are taken
        return t - self.last_sample_t >= 0.95 * self.sample_period()

    def sample_period(self) -> float:
        """Seconds between samples now: 1 / `sample_fps` while the picture looks fine,
        1 / `alert_sample_fps` while in doubt (a static stream, an unchanged or dark sample,
        a problem)."""
        cfg = self.config
        if self.last_sample_t is None:
            return 1 / cfg.alert_sample_fps
        static = self._static_since()
        held = static is not None and self._sample is not None and static <= self._sample.t \
            and not self._unconfirmed_black()
        alert = not held and (self.state != "ok" or self._black_since is not None
                              or static is not None or self._ref_t < self.last_sample_t)
        return 1 / (cfg.alert_sample_fps if alert else cfg.sample_fps)

    def observe(self, t: float, frame: np.ndarray | None) -> list[HealthEvent]:
        """A frame at `t` that is also analysed as a sample; `None` means no frame (`tick`)."""
        if frame is None:
            return self.tick(t)
        events = self.frame(t) if self.last_frame_t != t else []
        return events + self.sample(t, analyse(frame, self.config))

    def sample(self, t: float, a: Analysis, key_bytes: int | None = None,
               neighbour: Analysis | None = None) -> list[HealthEvent]:
        """A decoded picture of the feed at `t`, already analysed (`analyse`); `key_bytes`:
        the size of the keyframe it was decoded from on its own (None: decoded in stream);
        `neighbour`: the frame next to it in the stream, if decoded. A picture that differs
        from its neighbour is moving now (not frozen, whatever the earlier samples showed);
        a black one is black only if its neighbour is too (a flicker, a sweep's dark start
        or the edge of an outage is not)."""
        if self.ended_at is not None:
            return []
        cfg = self.config
        if key_bytes is not None and self._decode_failed(a, key_bytes):
            self.untrusted_samples += 1
            return []  # says nothing; `due()` asks for the next sample at once
        self.last_sample_t = t
        events: list[HealthEvent] = []
        if self.size is not None and a.size != self.size:
            events.append(
                HealthEvent(
                    RESOLUTION,
                    self.dept,
                    t,
                    t,
                    detail={"from": _size_text(self.size), "to": _size_text(a.size)},
                )
            )
            self._ref = None  # a new picture geometry: judge freezing afresh
        self.size = a.size
        # frozen: compare with the neighbouring frame, the previous sample, and (with a wider
        # margin) the reference taken when the picture last changed
        moving = neighbour is not None and self._changed(a.thumb, neighbour.thumb, 1.0)
        self._still = neighbour is not None and not moving
        if (
            moving
            or self._ref is None
            or self._prev is None
            or self._changed(a.thumb, self._prev, 1.0)
            or self._changed(a.thumb, self._ref, cfg.frozen_drift_factor)
        ):
            self._ref = a.thumb
            self._ref_t = t
            self._unchanged = 0
        else:
            self._unchanged += 1
        self._prev = a.thumb
        black = self._looks_black(a) and (neighbour is None or self._looks_black(neighbour))
        if not black:
            self._black_since, self._black_samples = None, 0
        else:
            self._black_samples += 1
            if self._black_since is None:
                self._black_since = t
        self._sample = _Sample(t, black)
        return events + self._judge(t)

    def _decode_failed(self, a: Analysis, key_bytes: int) -> bool:
        """A black- or blank-looking picture from a keyframe too big to be uniform."""
        cfg = self.config
        if not self._looks_black(a) or len(self._key_sizes) < 3:
            return False
        w, h = a.size
        if key_bytes <= cfg.uniform_key_base + cfg.uniform_key_bpp * w * h:
            return False
        return key_bytes > cfg.uniform_key_ratio * statistics.median(self._key_sizes)

    def _looks_black(self, a: Analysis) -> bool:
        cfg = self.config
        return (a.mean < cfg.black_luma and a.std < cfg.black_std) or a.std < cfg.blank_std

    def tick(self, t: float) -> list[HealthEvent]:
        """Periodic check: lost when no frame came for `lost_after_s`; a static stream keeps
        the latest sample's verdict running."""
        if self.ended_at is not None:
            return []
        self._trim(t)
        last = self.last_frame_t if self.last_frame_t is not None else self.start
        if self.state != "lost" and t - last >= self.config.lost_after_s:
            return self._enter("lost", t, last)
        return self._judge(t)

    def end(self, t: float) -> None:
        """The feed ended (its publisher left or was replaced): no more events; an open
        outage ends at `t`."""
        if self.ended_at is not None:
            return
        if self.outage_onset is not None:
            self.outages.append((self.outage_onset, t))
        self.ended_at = t
        self.state, self.outage_onset = "ok", None

    # -- outputs --------------------------------------------------------------------------

    @property
    def fps(self) -> float:
        """Frames per second over the last `fps_window_s` (as of the latest input)."""
        return len(self._arrivals) / self.config.fps_window_s

    def downtime(self, t: float) -> float:
        """Seconds of outage between `start` and `t` (closed outages plus an ongoing one)."""
        t = min(t, self.ended_at) if self.ended_at is not None else t
        spans = [*self.outages]
        if self.outage_onset is not None:
            spans.append((self.outage_onset, t))
        return sum(max(0.0, min(end, t) - max(onset, self.start)) for onset, end in spans)

    def span(self, t: float) -> float:
        """Seconds watched, from `start` to `t` (or to the feed's end)."""
        end = min(t, self.ended_at) if self.ended_at is not None else t
        return max(0.0, end - self.start)

    def uptime(self, t: float) -> float:
        """Share of time from `start` to `t` without an outage, 0..1 (1.0 for an empty span)."""
        span = self.span(t)
        if span <= 0:
            return 1.0
        return max(0.0, 1.0 - self.downtime(t) / span)

    # -- internals ------------------------------------------------------------------------

    def _static_since(self) -> float | None:
        """The first frame that coded no change, if the stream has stayed static since (None:
        not static, or no sizes known)."""
        small, last = self._small_since, self.last_frame_t
        if small is None or last is None:
            return None
        return small if last - small >= self.config.static_s else None

    def _judge(self, t: float) -> list[HealthEvent]:
        """Black or frozen from the latest sample and the stream; restore when neither."""
        s = self._sample
        if s is None or self.state == "lost":
            return []
        cfg = self.config
        static = self._static_since()
        held = static is not None and static <= s.t  # unchanged since before the sample
        until = max(t, s.t) if held else s.t
        verdict: State = "ok"
        onset = t
        enough_black = self._black_samples >= (2 if held else cfg.black_samples)
        if s.black and self._black_since is not None and enough_black:
            since = min(self._black_since, static) if held and static is not None \
                else self._black_since
            if until - since >= cfg.black_after_s:
                verdict, onset = "black", since
        if verdict == "ok" and (held or self._unchanged >= cfg.frozen_samples
                                or (self._unchanged and self._still)):
            since = min(self._ref_t, static) if held and static is not None else self._ref_t
            if until - since >= cfg.frozen_after_s:
                verdict, onset = "frozen", since
        if verdict == "ok":
            return self._restore(t) if self.state in ("frozen", "black") else []
        return self._enter(verdict, t, onset)

    def _unconfirmed_black(self) -> bool:
        """The latest sample is the only black one so far: a picture decoded from a damaged
        key frame (grey concealment) looks just like that, so the next sample must agree."""
        return self._sample is not None and self._sample.black and self._black_samples < 2

    def _changed(self, thumb: np.ndarray, ref: np.ndarray, factor: float) -> bool:
        cfg = self.config
        if thumb.shape != ref.shape:
            return True
        diff = cv2.absdiff(thumb, ref)
        if float(diff.mean()) > cfg.frozen_mean_diff * factor:
            return True
        over = int(np.count_nonzero(diff > cfg.frozen_cell_diff * factor))
        return over > cfg.frozen_changed_cells * factor * diff.size

    def _enter(self, state: State, t: float, onset: float) -> list[HealthEvent]:
        if self.state == state:
            return []
        if self.state == "ok" or self.outage_onset is None:
            self.outage_onset = onset
        self.state = state
        return [HealthEvent(BAD_KIND[state], self.dept, t, onset)]

    def _restore(self, t: float) -> list[HealthEvent]:
        if self.state == "ok" or self.outage_onset is None:
            self.state = "ok"
            return []
        was, onset = self.state, self.outage_onset
        self.outages.append((onset, t))
        self.state, self.outage_onset = "ok", None
        self._black_since, self._black_samples = None, 0
        if was == "lost":
            # the picture may not have changed across the gap: judge it afresh
            self._ref = None
            self._ref_t = t
            self._unchanged = 0
            self._sample = None
            self._small_since, self._big_run = None, 0
        return [HealthEvent(RESTORED, self.dept, t, onset, was=was)]

    def _trim(self, t: float) -> None:
        horizon = t - self.config.fps_window_s
        while self._arrivals and self._arrivals[0] <= horizon:
            self._arrivals.popleft()


class HealthMonitor:
    """Health of many feeds keyed by department id, sharing one config.

    A department's feeds come and go (`add` when one starts, `end` when it ends); its uptime
    counts the time its feeds were live.
    """

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.feeds: dict[str, FeedHealth] = {}
        self._past: dict[str, tuple[float, float]] = {}  # dept -> (seconds watched, down)

    def add(self, dept: str, t: float) -> FeedHealth:
        """Watch `dept` from `t` (a new feed when its last one ended)."""
        feed = self.feeds.get(dept)
        if feed is not None and feed.ended_at is not None:
            span, down = self._past.get(dept, (0.0, 0.0))
            self._past[dept] = (span + feed.span(t), down + feed.downtime(t))
            feed = None
        if feed is None:
            feed = self.feeds[dept] = FeedHealth(dept, self.config, start=t)
        return feed

    def end(self, dept: str, t: float) -> None:
        """`dept`'s feed ended: no outage goes on, nothing more is reported for it."""
        feed = self.feeds.get(dept)
        if feed is not None:
            feed.end(t)

    def observe(self, dept: str, t: float, frame: np.ndarray | None) -> list[HealthEvent]:
        return self.add(dept, t).observe(t, frame)

    def tick(self, t: float) -> list[HealthEvent]:
        events: list[HealthEvent] = []
        for feed in self.feeds.values():
            events += feed.tick(t)
        return events

    def state(self, dept: str) -> str:
        """`ok`, `frozen`, `black`, `lost`, or `none` when no feed is live."""
        feed = self.feeds.get(dept)
        return "none" if feed is None or feed.ended_at is not None else feed.state

    def uptime(self, t: float, depts: Iterable[str] | None = None) -> dict[str, float]:
        """Uptime share per department over the time its feeds were live (watched ones only)."""
        names = self.feeds if depts is None else [d for d in depts if d in self.feeds]
        out = {}
        for d in names:
            span, down = self._past.get(d, (0.0, 0.0))
            feed = self.feeds[d]
            span, down = span + feed.span(t), down + feed.downtime(t)
            out[d] = 1.0 if span <= 0 else max(0.0, 1.0 - down / span)
        return out


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"

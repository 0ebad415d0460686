"""Stream health per feed (fps, frozen, black/blank, lost, resolution): a pure state machine."""

from __future__ import annotations

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


class HealthConfigError(ValueError):
    """A health threshold is out of range."""


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds for stream health; all times in seconds of the injected clock.

    Defaults (chosen for 4 sampled frames per second of a 320x240 .. 1280x720 feed):
    - `sample_fps` 4.0: how often the shell should hand a decoded frame to `observe` (see `due`).
    - `thumb_size` (32, 24): frozen/black analysis runs on a gray thumbnail of this size
      (area-averaged, then a 3x3 Gaussian blur), which averages sensor noise away.
    - `frozen_after_s` 3.0: the picture has not changed for this long -> `video.frozen`.
    - `frozen_mean_diff` 1.5: "changed" if the mean absolute difference (0..255 gray levels)
      between the thumbnail and the previous sample's exceeds this, or if more than
      `frozen_changed_cells` 0.01 of the cells differ by more than `frozen_cell_diff` 12.0
      (so a small moving region, e.g. a clock stamp, counts as change).
    - `frozen_drift_factor` 2.0: the picture also counts as changed when it differs from the
      reference (the sample where it last changed) by this many times the thresholds above,
      so a slow drift made of sub-threshold steps still counts once it adds up. The larger
      factor keeps sensor noise from tipping a borderline comparison repeated every sample.
    - `black_luma` 24.0 and `black_std` 4.0: mean and standard deviation of the thumbnail's luma
      below these -> black; `blank_std` 2.0: any uniform picture (e.g. a blue "no signal"
      screen) counts as blank, reported as `video.black`.
    - `black_after_s` 1.0: black/blank for this long -> `video.black`.
    - `lost_after_s` 3.0: no frame for this long -> `video.lost` (`tick` or `observe(t, None)`).
    - `fps_window_s` 2.0: frames per second are counted over this sliding window.
    """

    sample_fps: float = 4.0
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
    lost_after_s: float = 3.0
    fps_window_s: float = 2.0

    def __post_init__(self) -> None:
        positive = {
            "sample_fps": self.sample_fps,
            "frozen_after_s": self.frozen_after_s,
            "black_after_s": self.black_after_s,
            "lost_after_s": self.lost_after_s,
            "fps_window_s": self.fps_window_s,
        }
        for name, value in positive.items():
            if not value > 0:
                raise HealthConfigError(f"{name} must be > 0, got {value}")
        if min(self.thumb_size) < 4:
            raise HealthConfigError(f"thumb_size too small: {self.thumb_size}")
        if not 0 <= self.frozen_changed_cells < 1:
            raise HealthConfigError("frozen_changed_cells must be in [0, 1)")
        if self.frozen_drift_factor < 1:
            raise HealthConfigError("frozen_drift_factor must be >= 1")

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


class FeedHealth:
    """Health of one department's feed. Pure: time is passed in, nothing is read from clocks.

    Call `count(t)` for every decoded frame (cheap: fps and liveness), `observe(t, frame)` for
    sampled frames (`due(t)` says when one is wanted) and `tick(t)` periodically so a feed that
    stops delivering frames is reported lost. Each returns the events it caused.

    States: ok, black, frozen, lost (priority lost > black > frozen). An outage starts with
    the first bad event and ends with `video.restored`, whose `was` is the state just before
    recovery and whose `duration_s` runs from the outage's onset (when the picture stopped
    changing, went black, or the last frame arrived), not from its detection.
    """

    def __init__(self, dept: str, config: HealthConfig | None = None, start: float = 0.0) -> None:
        self.dept = dept
        self.config = config or HealthConfig()
        self.start = start
        self.state: State = "ok"
        self.outage_onset: float | None = None
        self.outages: list[tuple[float, float]] = []  # closed outages (onset, end)
        self.size: tuple[int, int] | None = None
        self.last_frame_t: float | None = None
        self.last_sample_t: float | None = None
        self._arrivals: deque[float] = deque()
        self._ref: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._ref_t = start  # time the picture last changed
        self._black_since: float | None = None

    # -- inputs ---------------------------------------------------------------------------

    def count(self, t: float) -> list[HealthEvent]:
        """A frame arrived at `t` (decoded, not necessarily analysed)."""
        self.last_frame_t = t
        self._arrivals.append(t)
        self._trim(t)
        if self.state == "lost":
            # frames flow again; the picture itself is judged by the next observe()
            return self._restore(t)
        return []

    def due(self, t: float) -> bool:
        """True when a sampled frame should be analysed (at most `sample_fps` per second)."""
        if self.last_sample_t is None:
            return True
        # a little slack so that frames arriving at exactly the sampling period are taken
        return t - self.last_sample_t >= 0.95 / self.config.sample_fps

    def observe(self, t: float, frame: np.ndarray | None) -> list[HealthEvent]:
        """Analyse the frame sampled at `t`; `None` means no frame (same as `tick`)."""
        if frame is None:
            return self.tick(t)
        events = self.count(t) if self.last_frame_t != t else []
        self.last_sample_t = t
        return events + self.observe_analysis(t, analyse(frame, self.config))

    def observe_analysis(self, t: float, a: Analysis) -> list[HealthEvent]:
        """Like `observe` with a precomputed analysis (lets the shell analyse off-thread)."""
        cfg = self.config
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

        # frozen: compare with the previous sample, and (with a wider margin) with the
        # reference taken when the picture last changed
        if (
            self._ref is None
            or self._prev is None
            or self._changed(a.thumb, self._prev, 1.0)
            or self._changed(a.thumb, self._ref, cfg.frozen_drift_factor)
        ):
            self._ref = a.thumb
            self._ref_t = t
            frozen = False
        else:
            frozen = t - self._ref_t >= cfg.frozen_after_s
        self._prev = a.thumb

        is_black = (a.mean < cfg.black_luma and a.std < cfg.black_std) or a.std < cfg.blank_std
        if is_black:
            if self._black_since is None:
                self._black_since = t
            black = t - self._black_since >= cfg.black_after_s
        else:
            self._black_since = None
            black = False

        if black:
            assert self._black_since is not None
            events += self._enter("black", t, self._black_since)
        elif frozen:
            events += self._enter("frozen", t, self._ref_t)
        elif self.state != "ok":
            events += self._restore(t)
        return events

    def tick(self, t: float) -> list[HealthEvent]:
        """Periodic check: report the feed lost when no frame came for `lost_after_s`."""
        self._trim(t)
        last = self.last_frame_t if self.last_frame_t is not None else self.start
        if self.state != "lost" and t - last >= self.config.lost_after_s:
            return self._enter("lost", t, last)
        return []

    # -- outputs --------------------------------------------------------------------------

    @property
    def fps(self) -> float:
        """Frames per second over the last `fps_window_s` (as of the latest input)."""
        return len(self._arrivals) / self.config.fps_window_s

    def downtime(self, t: float) -> float:
        """Seconds of outage between `start` and `t` (closed outages plus an ongoing one)."""
        spans = [*self.outages]
        if self.outage_onset is not None:
            spans.append((self.outage_onset, t))
        return sum(max(0.0, min(end, t) - max(onset, self.start)) for onset, end in spans)

    def uptime(self, t: float) -> float:
        """Share of time from `start` to `t` without an outage, 0..1 (1.0 for an empty span)."""
        span = t - self.start
        if span <= 0:
            return 1.0
        return max(0.0, 1.0 - self.downtime(t) / span)

    # -- internals ------------------------------------------------------------------------

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
        self._black_since = None
        if was == "lost":
            # the picture may not have changed across the gap: do not count the gap as frozen
            self._ref = None
        return [HealthEvent(RESTORED, self.dept, t, onset, was=was)]

    def _trim(self, t: float) -> None:
        horizon = t - self.config.fps_window_s
        while self._arrivals and self._arrivals[0] <= horizon:
            self._arrivals.popleft()


class HealthMonitor:
    """Health of many feeds keyed by department id, sharing one config."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.feeds: dict[str, FeedHealth] = {}

    def add(self, dept: str, t: float) -> FeedHealth:
        """Start watching `dept` at `t` (a feed that never delivers a frame goes lost)."""
        feed = self.feeds.get(dept)
        if feed is None:
            feed = self.feeds[dept] = FeedHealth(dept, self.config, start=t)
        return feed

    def observe(self, dept: str, t: float, frame: np.ndarray | None) -> list[HealthEvent]:
        return self.add(dept, t).observe(t, frame)

    def tick(self, t: float) -> list[HealthEvent]:
        events: list[HealthEvent] = []
        for feed in self.feeds.values():
            events += feed.tick(t)
        return events

    def uptime(self, t: float, depts: Iterable[str] | None = None) -> dict[str, float]:
        """Uptime share per department (only departments being watched)."""
        names = self.feeds if depts is None else [d for d in depts if d in self.feeds]
        return {d: self.feeds[d].uptime(t) for d in names}


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"

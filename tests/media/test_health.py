"""Stream health on synthetic feeds that move, freeze, go black, get lost and recover."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.health import (
    BLACK,
    FROZEN,
    LOST,
    RESOLUTION,
    RESTORED,
    FeedHealth,
    HealthConfig,
    HealthConfigError,
    HealthEvent,
    HealthMonitor,
    analyse,
)

CFG = HealthConfig()
DT = 1.0 / CFG.sample_fps  # one sampling interval

Picture = Callable[[float], "np.ndarray | None"]


def scene(t: float, w: int = 320, h: int = 240) -> np.ndarray:
    """A textured picture with a bright square that moves with time (no repeat within a test)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // w).astype(np.uint8)
    img[..., 1] = (yy * 255 // h).astype(np.uint8)
    img[..., 2] = 90
    x = int(t * 40) % (w - 40)
    y = int(t * 17) % (h - 40)
    img[y : y + 40, x : x + 40] = 250
    return img


def noisy(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = rng.normal(0.0, sigma, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def run(picture: Picture, until: float, sigma: float = 6.0, seed: int = 1) -> list[HealthEvent]:
    """Sample `picture` every DT seconds from 0 to `until`; None means no frame arrived."""
    rng = np.random.default_rng(seed)
    feed = FeedHealth("police", CFG, start=0.0)
    events: list[HealthEvent] = []
    for i in range(int(until / DT) + 1):
        t = i * DT
        img = picture(t)
        events += feed.observe(t, None if img is None else noisy(img, rng, sigma))
    return events


def kinds(events: list[HealthEvent]) -> list[str]:
    return [e.kind for e in events]


def test_moving_noisy_feed_stays_healthy() -> None:
    assert run(scene, 30.0, sigma=10.0) == []


def test_freeze_under_sensor_noise_is_detected_and_recovers() -> None:
    # picture stops changing at 5 s (noise keeps flickering), moves again at 12 s
    def picture(t: float) -> np.ndarray:
        return scene(5.0 if 5.0 <= t < 12.0 else t)

    events = run(picture, 20.0, sigma=8.0)
    assert kinds(events) == [FROZEN, RESTORED]
    frozen, restored = events
    assert abs(frozen.t - (5.0 + CFG.frozen_after_s)) <= DT
    assert abs(frozen.onset - 5.0) <= DT
    assert frozen.payload() == {"dept": "police"}
    assert abs(restored.t - 12.0) <= DT
    assert restored.was == "frozen"
    assert abs(restored.payload()["duration_s"] - 7.0) <= DT


def test_short_pause_is_not_a_freeze() -> None:
    def picture(t: float) -> np.ndarray:
        return scene(5.0 if 5.0 <= t < 5.0 + CFG.frozen_after_s - 2 * DT else t)

    assert run(picture, 15.0) == []


def test_black_then_recovery() -> None:
    def picture(t: float) -> np.ndarray:
        if 5.0 <= t < 9.0:
            return np.full((240, 320, 3), 4, np.uint8)
        return scene(t)

    events = run(picture, 15.0, sigma=3.0)
    assert kinds(events) == [BLACK, RESTORED]
    black, restored = events
    assert abs(black.t - (5.0 + CFG.black_after_s)) <= DT
    assert abs(restored.t - 9.0) <= DT
    assert restored.payload()["was"] == "black"
    assert abs(restored.duration_s - 4.0) <= DT


def test_blank_uniform_colour_counts_as_black() -> None:
    def picture(t: float) -> np.ndarray:
        if t >= 2.0:
            return np.full((240, 320, 3), (200, 60, 0), np.uint8)  # a blue "no signal" screen
        return scene(t)

    events = run(picture, 6.0, sigma=0.5)
    assert kinds(events) == [BLACK]
    assert abs(events[0].t - (2.0 + CFG.black_after_s)) <= DT


def test_dark_scene_with_detail_is_not_black() -> None:
    def picture(t: float) -> np.ndarray:
        return (scene(t) // 6).astype(np.uint8)  # night view: dark but with structure

    assert BLACK not in kinds(run(picture, 10.0, sigma=2.0))


def test_lost_when_frames_stop_and_restored_when_they_return() -> None:
    def picture(t: float) -> np.ndarray | None:
        return None if 5.0 <= t < 10.0 else scene(t)

    events = run(picture, 15.0)
    assert kinds(events) == [LOST, RESTORED]
    lost, restored = events
    # the last frame came at 5 - DT; lost is reported lost_after_s later
    assert abs(lost.t - (5.0 + CFG.lost_after_s)) <= DT
    assert abs(restored.t - 10.0) <= DT
    assert restored.was == "lost"
    assert abs(restored.duration_s - 5.0) <= DT


def test_feed_that_never_starts_is_lost() -> None:
    feed = FeedHealth("fire", CFG, start=100.0)
    assert feed.tick(100.0 + CFG.lost_after_s - DT) == []
    events = feed.tick(100.0 + CFG.lost_after_s)
    assert kinds(events) == [LOST]
    assert feed.tick(200.0) == []  # reported once


def test_freeze_then_lost_is_one_outage() -> None:
    def picture(t: float) -> np.ndarray | None:
        if 4.0 <= t < 10.0:
            return scene(4.0)
        if 10.0 <= t < 16.0:
            return None
        return scene(t)

    events = run(picture, 20.0)
    assert kinds(events) == [FROZEN, LOST, RESTORED]
    restored = events[-1]
    assert restored.was == "lost"
    assert abs(restored.onset - 4.0) <= DT  # the outage began when the picture froze
    assert abs(restored.t - 16.0) <= DT


def test_small_moving_region_keeps_feed_alive() -> None:
    # a frozen background with a running clock stamp in a corner is not frozen
    def picture(t: float) -> np.ndarray:
        img = scene(0.0)
        img[10:40, 10:110] = 0
        img[10:40, 10 + int(t * 8) % 80 : 30 + int(t * 8) % 80] = 255
        return img

    assert FROZEN not in kinds(run(picture, 15.0, sigma=4.0))


def test_resolution_change_is_reported_without_false_freeze() -> None:
    def picture(t: float) -> np.ndarray:
        return scene(t, 640, 480) if t >= 6.0 else scene(t)

    events = run(picture, 12.0)
    assert kinds(events) == [RESOLUTION]
    ev = events[0]
    assert abs(ev.t - 6.0) <= DT
    assert ev.payload() == {"dept": "police", "from": "320x240", "to": "640x480"}


def test_gray_frames_are_accepted() -> None:
    feed = FeedHealth("water", CFG)
    events: list[HealthEvent] = []
    for i in range(40):
        t = i * DT
        events += feed.observe(t, np.full((120, 160), 128, np.uint8))
    assert kinds(events) == [BLACK]  # uniform gray is blank


def test_fps_counts_every_frame_not_only_samples() -> None:
    feed = FeedHealth("flood", CFG)
    for i in range(60):  # 15 fps for 4 s
        t = i / 15
        feed.frame(t)
        if feed.due(t):
            feed.observe(t, scene(t))
    assert feed.fps == pytest.approx(15.0, abs=1.0)
    for i in range(60, 120, 3):  # 5 fps
        feed.frame(i / 15)
    assert feed.fps == pytest.approx(5.0, abs=1.0)


def test_due_limits_analysis_to_sampling_rate() -> None:
    feed = FeedHealth("flood", CFG)
    sampled = 0
    for i in range(150):  # 30 fps for 5 s
        t = i / 30
        if feed.due(t):
            feed.observe(t, scene(t))
            sampled += 1
    assert 5 * CFG.sample_fps - 1 <= sampled <= 5 * CFG.sample_fps + 1


def test_uptime_counts_outage_from_onset() -> None:
    mon = HealthMonitor(CFG)
    mon.add("police", 0.0)
    mon.add("fire", 0.0)
    rng = np.random.default_rng(2)
    for i in range(int(20 / DT) + 1):
        t = i * DT
        frozen_pic = scene(5.0 if 5.0 <= t < 12.0 else t)
        mon.observe("police", t, noisy(frozen_pic, rng, 5.0))
        mon.observe("fire", t, noisy(scene(t), rng, 5.0))
        mon.tick(t)
    up = mon.uptime(20.0)
    assert up["fire"] == 1.0
    assert up["police"] == pytest.approx(1 - 7.0 / 20.0, abs=DT / 20.0)
    assert mon.uptime(20.0, ["police", "nobody"]).keys() == {"police"}


def test_uptime_includes_ongoing_outage() -> None:
    feed = FeedHealth("power", CFG, start=0.0)
    feed.observe(0.0, scene(0.0))
    feed.tick(10.0)  # lost since the frame at 0
    assert feed.state == "lost"
    assert feed.uptime(10.0) == pytest.approx(0.0)
    assert feed.uptime(0.0) == 1.0


def test_config_validation_and_mapping() -> None:
    with pytest.raises(HealthConfigError):
        HealthConfig(frozen_after_s=0)
    with pytest.raises(HealthConfigError):
        HealthConfig.from_mapping({"frozen_after": 3})
    cfg = HealthConfig.from_mapping({"frozen_after_s": 5, "thumb_size": [16, 12]})
    assert cfg.frozen_after_s == 5 and cfg.thumb_size == (16, 12)


def test_rejects_non_images() -> None:
    with pytest.raises(ValueError):
        FeedHealth("x").observe(0.0, np.zeros((0, 0), np.uint8))


@settings(max_examples=25, deadline=None)
@given(
    sigma=st.floats(0.0, 12.0),
    freeze_at=st.floats(1.0, 6.0),
    size=st.sampled_from([(160, 120), (320, 240), (640, 360)]),
    seed=st.integers(0, 2**16),
)
def test_freeze_detected_within_one_interval_for_any_noise(
    sigma: float, freeze_at: float, size: tuple[int, int], seed: int
) -> None:
    w, h = size

    def picture(t: float) -> np.ndarray:
        return scene(min(t, freeze_at), w, h)

    events = run(picture, freeze_at + CFG.frozen_after_s + 2 * DT, sigma=sigma, seed=seed)
    assert kinds(events) == [FROZEN]
    assert abs(events[0].t - (freeze_at + CFG.frozen_after_s)) <= DT + 1e-9


def test_slow_drift_of_sub_threshold_steps_is_not_frozen() -> None:
    # a slow pan: each sample differs from the previous by less than the thresholds
    def picture(t: float) -> np.ndarray:
        img = scene(0.0)
        x = 100 + int(t * 3)
        img[150:200, x : x + 60] = 255
        return img

    feed = FeedHealth("police", CFG)
    step_changes = 0
    events: list[HealthEvent] = []
    prev = None
    dt = 1 / CFG.alert_sample_fps  # unchanged samples are taken at the alert rate
    for i in range(int(20 / dt)):
        t = i * dt
        img = picture(t)
        events += feed.observe(t, img)
        if prev is not None and feed._changed(feed._prev, prev, 1.0):  # type: ignore[arg-type]
            step_changes += 1
        prev = feed._prev
    assert step_changes == 0  # no single step is a change on its own ...
    assert FROZEN not in kinds(events)  # ... but the drift adds up


# -- the stream (frame sizes) and sampled pictures together, as the shell drives them ----------

def drive(size_of: Callable[[float], int | None], picture: Picture, until: float,
          fps: float = 15.0, latency: float = 0.1, cfg: HealthConfig = CFG,
          ) -> tuple[list[HealthEvent], list[float], FeedHealth]:
    """15 fps frames of `size_of(t)` bytes (None: no frame), a tick every 0.25 s, and a decoded
    sample of `picture(t)` `latency` s after `due()` asks for one (a requested keyframe), with
    the frame after it as its neighbour, as the hub's tap decodes them."""
    feed = FeedHealth("police", cfg, start=0.0)
    events: list[HealthEvent] = []
    samples: list[float] = []
    pending: float | None = None
    n = int(until * fps) + 1
    for i in range(n):
        t = i / fps
        size = size_of(t)
        if size is not None:
            events += feed.frame(t, size, keyframe=False)
        if pending is not None and t >= pending:
            img, after = picture(t), picture(t + 1 / fps)
            if img is not None:
                events += feed.sample(t, analyse(img, cfg), neighbour=None if after is None
                                      else analyse(after, cfg))
                samples.append(t)
            pending = None
        if pending is None and size is not None and feed.due(t):
            pending = t + latency
        if i % max(1, int(fps / 4)) == 0:
            events += feed.tick(t)
    return events, samples, feed


def black(_t: float) -> np.ndarray:
    return np.full((240, 320, 3), 3, np.uint8)


def test_static_stream_black_is_found_within_two_seconds_and_restored_at_once() -> None:
    # a camera goes black at 5 s: its encoder's frames shrink to a few bytes; back at 9 s
    def size_of(t: float) -> int:
        return 40 if 5.0 <= t < 9.0 else 900

    def picture(t: float) -> np.ndarray:
        return black(t) if 5.0 <= t < 9.0 else scene(t)

    events, _, _ = drive(size_of, picture, 12.0)
    assert kinds(events) == [BLACK, RESTORED]
    went, back = events
    assert abs(went.onset - 5.0) <= 0.1  # dated from the stream, not from the sample
    assert went.t - 5.0 < 2.0
    assert 9.0 <= back.t < 9.0 + 0.2  # two larger frames: no sample needed
    assert abs(back.duration_s - 4.0) <= 0.3


def test_one_grey_sample_on_a_static_stream_is_no_verdict() -> None:
    # a still scene (tiny frames) and one sample decoded grey, as from a damaged key frame
    # (Chromium under load), the frame after it too (it refers to that keyframe): the next
    # sample shows the picture, so nothing is claimed
    grey_at: list[float] = []

    def picture(t: float) -> np.ndarray:
        if t >= 4.0 and not grey_at:
            grey_at.append(t)
        if grey_at and grey_at[0] <= t <= grey_at[0] + 0.1:
            return np.full((240, 320, 3), 128, np.uint8)
        return scene(3.0)  # the still scene

    events, samples, _ = drive(lambda t: 40 if t >= 2.0 else 900, picture, 12.0)
    assert grey_at and BLACK not in kinds(events), (grey_at, events)
    after = [t for t in samples if t > grey_at[0]]
    assert after and after[0] - grey_at[0] <= 0.75  # checked again at the alert rate (2/s)


def test_static_stream_freeze_is_dated_from_the_stream() -> None:
    frozen_at, moves_at = 4.0, 11.0

    def size_of(t: float) -> int:
        return 30 if frozen_at <= t < moves_at else 800

    def picture(t: float) -> np.ndarray:
        return scene(min(t, frozen_at) if t < moves_at else t)

    events, samples, _ = drive(size_of, picture, 14.0)
    assert kinds(events) == [FROZEN, RESTORED]
    went, back = events
    assert abs(went.onset - frozen_at) <= 0.1
    assert went.t - frozen_at < CFG.frozen_after_s + 0.5
    assert moves_at <= back.t < moves_at + 0.2
    # samples: at most alert_sample_fps per second, and few while the picture was fine
    gaps = [b - a for a, b in itertools.pairwise(samples)]
    assert min(gaps) >= 0.95 / CFG.alert_sample_fps - 1e-9
    assert len([s for s in samples if s < frozen_at]) <= frozen_at * CFG.sample_fps + 1


def test_still_picture_under_cbr_refinement_is_frozen_from_samples() -> None:
    # a CBR encoder keeps spending bits on a still picture: sizes say nothing, samples decide
    frozen_at, moves_at = 3.0, 10.0

    def picture(t: float) -> np.ndarray:
        return scene(min(t, frozen_at) if t < moves_at else t)

    events, _, _ = drive(lambda t: 700, picture, 13.0)
    assert kinds(events) == [FROZEN, RESTORED]
    went, back = events
    assert went.t - frozen_at < 5.0
    assert back.t - moves_at < 1.0


def test_one_larger_frame_in_a_static_stream_is_no_recovery() -> None:
    def size_of(t: float) -> int:
        if t >= 2.0 and abs(t - 6.0) < 0.03:
            return 900  # one refresh frame
        return 30 if t >= 2.0 else 900

    def picture(t: float) -> np.ndarray:
        return black(t) if t >= 2.0 else scene(t)

    events, _, _ = drive(size_of, picture, 9.0)
    assert kinds(events) == [BLACK]


def test_no_verdict_on_sizes_alone_and_none_after_the_feed_ends() -> None:
    feed = FeedHealth("fire", CFG, start=0.0)
    events: list[HealthEvent] = []
    for i in range(150):  # 10 s of tiny frames, never a sample
        t = i / 15
        events += feed.frame(t, 20) + feed.tick(t)
    assert events == []  # static, but without a decoded picture nothing is claimed
    events, _, feed = drive(lambda t: 30 if t >= 1.0 else 900,
                            lambda t: scene(min(t, 1.0)), 6.0)
    assert kinds(events) == [FROZEN]
    feed.end(6.0)
    assert feed.tick(20.0) == [] and feed.frame(20.0, 900) == [] and not feed.due(20.0)
    assert feed.uptime(20.0) == pytest.approx(1.0 / 6.0, abs=0.05)  # down from 1 s to the end


def test_monitor_uptime_spans_feeds_and_state_none_between_them() -> None:
    mon = HealthMonitor(CFG)
    first = mon.add("water", 0.0)
    first.observe(0.0, scene(0.0))
    mon.tick(5.0)  # lost at 3.0 (no frames since 0.0)
    assert mon.state("water") == "lost"
    mon.end("water", 5.0)
    assert mon.state("water") == "none"
    second = mon.add("water", 10.0)
    assert second is not first and second.state == "ok"
    second.observe(10.0, scene(10.0))
    assert mon.uptime(15.0)["water"] == pytest.approx(1 - 5.0 / 10.0, abs=0.01)


def test_sampling_rates_are_bounded() -> None:
    with pytest.raises(HealthConfigError):
        HealthConfig(sample_fps=4.0)
    with pytest.raises(HealthConfigError):
        HealthConfig(sample_fps=2.0, alert_sample_fps=1.0)


def _keyed_drive(key_bytes: int, picture: Picture, until: float) -> tuple[list[HealthEvent], FeedHealth]:
    """A 640x480 feed whose samples are keyframes decoded on their own: 15 fps, a keyframe
    every second (5 kB, from t=4 s `key_bytes`), inter frames of 3 kB (from t=4 s 40 bytes
    when the keyframes are tiny: a dark camera), a sample 0.1 s after each due."""
    feed = FeedHealth("fire", CFG, start=0.0)
    events: list[HealthEvent] = []
    pending: float | None = None
    for i in range(int(until * 15) + 1):
        t = i / 15
        key = i % 15 == 0
        dark = t >= 4.0 and key_bytes < 1000
        size = (key_bytes if t >= 4.0 else 5000) if key else (40 if dark else 3000)
        events += feed.frame(t, size, keyframe=key)
        if pending is not None and t >= pending:
            events += feed.sample(t, analyse(picture(t), CFG), key_bytes=key_bytes if t >= 4.0 else 5000)
            pending = None
        if pending is None and feed.due(t):
            pending = t + 0.1
        if i % 4 == 0:
            events += feed.tick(t)
    return events, feed


def picture_640(t: float) -> np.ndarray:
    """Chromium's fake camera, more or less: a moving scene; from t=4 s decoded grey."""
    return np.full((480, 640, 3), 128, np.uint8) if t >= 4.0 else scene(t, 640, 480)


def test_grey_decodes_of_big_keyframes_are_no_black_picture() -> None:
    # the feed's keyframes stay 5 kB (a picture with detail) while their lone decodes come out
    # uniform grey: a decoder failure, not a camera gone dark (seen with Chromium under load)
    events, feed = _keyed_drive(5000, picture_640, 12.0)
    assert BLACK not in kinds(events), events
    assert feed.untrusted_samples >= 8


def test_a_uniform_picture_with_tiny_keyframes_is_still_black() -> None:
    # the camera really goes dark: its keyframes shrink to a few hundred bytes
    events, feed = _keyed_drive(450, picture_640, 12.0)
    went = [e for e in events if e.kind == BLACK]
    assert went and went[0].t - 4.0 < 2.0, events
    assert feed.untrusted_samples == 0


def pacman(t: float, period: float = 0.6, w: int = 320, h: int = 180) -> np.ndarray:
    """Chromium's fake camera: a white sector on black sweeping 0-360 degrees every `period`
    s, nearly black at the start of each sweep."""
    img = np.zeros((h, w, 3), np.uint8)
    angle = 360.0 * ((t / period) % 1.0)
    cv2.ellipse(img, (w // 2, h // 2), (h // 4, h // 4), 0, 0, angle, (255, 255, 255), -1)
    return img


@pytest.mark.parametrize("latency", [0.05, 0.65, 1.25, 1.8, 1.95, 2.55])
def test_a_periodic_picture_sampled_at_its_period_is_neither_frozen_nor_black(
        latency: float) -> None:
    # requested keyframes that come `latency` s late (a publisher under load) space the
    # samples near a multiple of the 0.6 s sweep: sample to sample the sector stays, or a
    # sweep's black start comes back. Judged by samples alone, these latencies (of 60 from
    # 0.05 to 3 s) made video.frozen or video.black; the frame after each sample says the
    # picture moves
    events, samples, _ = drive(lambda t: 700, pacman, 600.0, latency=latency)
    assert len(samples) > 600 / (3 * (latency + 1.4))
    assert events == []


def test_a_periodic_picture_that_freezes_is_frozen() -> None:
    def picture(t: float) -> np.ndarray:
        return pacman(min(t, 20.25))

    events, _, _ = drive(lambda t: 700, picture, 30.0, latency=0.1)
    assert kinds(events) == [FROZEN]
    assert events[0].t - 20.25 < 5.0


def test_a_periodic_picture_that_goes_black_is_black() -> None:
    def picture(t: float) -> np.ndarray:
        return np.full((180, 320, 3), 3, np.uint8) if t >= 20.0 else pacman(t)

    events, _, _ = drive(lambda t: 700, picture, 30.0, latency=0.1)
    assert kinds(events)[:1] == [BLACK]
    assert events[0].t - 20.0 < 3.0

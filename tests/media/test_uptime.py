"""Uptime from logged video events agrees with the live health monitor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from media.health import FeedHealth, HealthConfig
from media.uptime import Outage, outages, uptime

S = 1_000_000


@dataclass(frozen=True)
class Ev:
    ts_us: int
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)


def test_outage_runs_from_onset_to_restored() -> None:
    log = [
        Ev(8 * S, "video.frozen", {"dept": "police"}),
        Ev(9 * S, "command.issued", {"text": "x"}),
        Ev(12 * S, "video.restored", {"dept": "police", "was": "frozen", "duration_s": 7.0}),
    ]
    assert outages(log) == [Outage("police", 5 * S, 12 * S, "frozen")]
    up = uptime(log, ["police", "fire"], 0, 20 * S)
    assert up["police"] == pytest.approx(13 / 20)
    assert up["fire"] == 1.0


def test_escalating_outage_and_ongoing_outage() -> None:
    log = [
        Ev(4 * S, "video.frozen", {"dept": "water"}),
        Ev(6 * S, "video.lost", {"dept": "water"}),
        Ev(10 * S, "video.restored", {"dept": "water", "was": "lost", "duration_s": 6.0}),
        Ev(15 * S, "video.lost", {"dept": "water"}),
    ]
    assert outages(log) == [
        Outage("water", 4 * S, 10 * S, "lost"),
        Outage("water", 15 * S, None, "lost"),
    ]
    # window 5..20: down 5..10 and 15..20
    assert uptime(log, ["water"], 5 * S, 20 * S)["water"] == pytest.approx(5 / 15)


def test_empty_window_is_full_uptime() -> None:
    assert uptime([], ["a"], 10, 10) == {"a": 1.0}


def test_agrees_with_feed_health() -> None:
    cfg = HealthConfig()
    feed = FeedHealth("fire", cfg, start=0.0)
    log: list[Ev] = []
    rng = np.random.default_rng(3)
    dt = 1 / cfg.sample_fps
    for i in range(int(30 / dt) + 1):
        t = i * dt
        if 10 <= t < 14:
            events = feed.tick(t)  # no frames
        else:
            black = 20 <= t < 24
            img = np.clip(rng.normal(4 if black else 60, 2, (120, 160)), 0, 255).astype(np.uint8)
            if not black:
                img[:, : (i * 7) % 160] += 40  # a moving edge
            events = feed.observe(t, img)
        for e in events:
            log.append(Ev(round(e.t * S), e.kind, e.payload()))
    assert [e.kind for e in log] == [
        "video.lost",
        "video.restored",
        "video.black",
        "video.restored",
    ]
    assert uptime(log, ["fire"], 0, 30 * S)["fire"] == pytest.approx(feed.uptime(30.0), abs=1e-3)

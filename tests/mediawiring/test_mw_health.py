"""Health and wall wiring: a frozen department feed is logged as video.frozen then video.restored."""

from __future__ import annotations

from typing import Any

from hub.media_wiring import MEDIA_KEY
from tests.mediawiring.conftest import IDS, FreezableVideo, wait_for


async def test_frozen_feed_logs_frozen_then_restored(media_hub: Any) -> None:
    h = await media_hub(record=False)
    media = h.running.runner.app[MEDIA_KEY]
    video = FreezableVideo(IDS.index("fire") + 1, "fire")
    await h.join("fire", video=video)
    assert media.monitor is not None and media.wall is not None
    await wait_for(lambda: media.video.frame_tap("fire").frames_decoded > 10, 10)
    video.frozen = True
    await wait_for(lambda: "video.frozen" in h.kinds("fire"), 10)
    video.frozen = False
    await wait_for(lambda: "video.restored" in h.kinds("fire"), 10)
    assert media.wall.frames.get("fire") is not None  # the wall got the decoded frames
    events = [e for e in h.events() if e.kind.startswith("video.") and e.payload.get("dept") == "fire"]
    frozen = next(e for e in events if e.kind == "video.frozen")
    restored = next(e for e in events if e.kind == "video.restored")
    assert frozen.payload["cause"] == "picture" and frozen.payload["since_us"] <= frozen.ts_us
    assert restored.payload["was"] == "frozen" and restored.payload["duration_s"] > 0
    # departments that never published are not reported lost by picture health (no double count)
    assert not [e for e in h.events() if e.kind == "video.lost" and e.payload.get("cause") == "picture"]
    assert media.uptime()["fire"] < 1.0
    state = media.stats()
    assert state["health"]["fire"] == "ok"

"""Health in the running hub: judged from the forwarded stream plus a few decoded samples,
only while a feed is live; a deliberate leave ends it with no outage; snapshots on responses."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from hub.media_wiring import MEDIA_KEY
from tests.mediawiring.conftest import IDS, FreezableVideo, wait_for


class DimmableVideo(FreezableVideo):
    """A synthetic department whose camera can also go black."""

    def __init__(self, number: int, name: str, **kw: Any) -> None:
        super().__init__(number, name, **kw)
        self.black = False

    def render(self, index: int, now: float) -> np.ndarray:
        img = super().render(index, now)
        return np.zeros_like(img) if self.black else img


def picture_events(h: Any, dept: str) -> list[Any]:
    return [e for e in h.events() if e.kind.startswith("video.") and e.payload.get("dept") == dept]


async def test_frozen_then_black_then_left_on_purpose(media_hub: Any) -> None:
    h = await media_hub(record=False)  # no wall recording and no wall viewer: nothing decodes all
    media = h.running.runner.app[MEDIA_KEY]
    video = DimmableVideo(IDS.index("fire") + 1, "fire")
    client, _ = await h.join("fire", video=video)
    assert media.monitor is not None
    await wait_for(lambda: "media.published" in h.kinds("fire"), 10)
    published = next(e for e in h.events() if e.kind == "media.published")
    assert published.payload == {"dept": "fire", "source": "webrtc",
                                 "session": published.payload["session"]}
    tap = media.video.frame_tap("fire")
    await wait_for(lambda: tap.samples_decoded >= 2, 10)
    assert media.stats()["health"]["fire"] == "ok"

    video.frozen = True
    frozen_at = time.time()
    await wait_for(lambda: "video.frozen" in h.kinds("fire"), 10)
    frozen = next(e for e in picture_events(h, "fire") if e.kind == "video.frozen")
    print(f"frozen logged {frozen.ts_us / 1e6 - frozen_at:.2f} s after the freeze")
    assert frozen.payload["cause"] == "picture" and frozen.payload["since_us"] <= frozen.ts_us
    video.frozen = False
    await wait_for(lambda: "video.restored" in h.kinds("fire"), 10)
    restored = next(e for e in picture_events(h, "fire") if e.kind == "video.restored")
    assert restored.payload["was"] == "frozen" and restored.payload["duration_s"] > 0

    video.black = True
    await wait_for(lambda: "video.black" in h.kinds("fire"), 10)
    assert media.stats()["health"]["fire"] == "black"

    # health decoded samples, not the stream: a couple a second at most, no full decoder
    elapsed = time.time() - published.ts_us / 1e6
    assert tap.frames_decoded == 0
    assert 1 <= tap.samples_decoded <= 2 * elapsed + 2, (tap.samples_decoded, elapsed)

    # a deliberate leave while black: the feed ends, no outage goes on, nothing more is judged
    await client.request("rtc.leave")
    await wait_for(lambda: "media.unpublished" in h.kinds("fire"), 5)
    left = next(e for e in h.events() if e.kind == "media.unpublished")
    assert left.payload["cause"] == "left" and left.payload["session"] == published.payload["session"]
    assert media.stats()["health"]["fire"] == "none"
    before = len(picture_events(h, "fire"))
    assert media.monitor.watched == []
    await asyncio.sleep(2 * 2.0)  # lost_after_s (2 s in FAST_HEALTH) twice over
    assert len(picture_events(h, "fire")) == before
    assert not [e for e in h.events() if e.kind == "video.lost"]
    # departments that never published are not judged at all
    assert set(media.stats()["health"].values()) == {"none"}


async def test_snapshot_on_a_response_from_a_webrtc_publisher(media_hub: Any) -> None:
    h = await media_hub(record=False)
    cmd, _ = await h.join("center", publish=False, slots=1)
    fire, _ = await h.join("fire")
    await wait_for(lambda: "media.published" in h.kinds("fire"), 10)
    issued = await cmd.issue(["fire"], "到场后回传画面")
    command_id = issued["command_id"]
    await fire.respond(command_id, "receipt")
    await wait_for(lambda: "media.snapshot" in h.kinds("fire"), 10)
    snap = next(e for e in h.events() if e.kind == "media.snapshot")
    assert snap.payload["command_id"] == command_id
    path = h.data / snap.payload["path"]
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"

"""Recording and snapshots in the running hub: segments and JPEGs registered in the log, write errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import av

from hub.media_wiring import MEDIA_KEY
from tests.mediawiring.conftest import wait_for


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def test_segments_and_snapshot_are_registered(media_hub: Any) -> None:
    h = await media_hub(config={"record": {"segment_s": 1.5}})
    cmd, _ = await h.join("center", publish=False, slots=4)
    water, _ = await h.join("water")

    def recordings(name: str) -> list[Any]:
        return [e for e in h.events() if e.kind == "media.recording" and e.payload["dept"] == name]

    await wait_for(lambda: recordings("water") and recordings("wall"), 20)
    issued = await cmd.request("command.issue", targets=["water"], text="report the levee")
    await water.request("command.respond", command_id=issued["command_id"], response="receipt")
    await wait_for(lambda: "media.snapshot" in h.kinds("water"), 10)
    for name in ("water", "wall"):
        seg = recordings(name)[0]
        p = seg.payload
        assert _sha(p["path"]) == p["sha256"]
        assert p["start_ts_us"] <= p["end_ts_us"] <= seg.ts_us
        with av.open(p["path"]) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 2
    snap = next(e for e in h.events() if e.kind == "media.snapshot")
    assert snap.payload["command_id"] == issued["command_id"]
    assert _sha(snap.payload["path"]) == snap.payload["sha256"]
    assert Path(snap.payload["path"]).read_bytes()[:2] == b"\xff\xd8"  # a JPEG


async def test_write_errors_are_logged_and_the_hub_keeps_working(media_hub: Any) -> None:
    def block_dirs(data: Path) -> None:  # a file where the folders should be: every write fails
        (data / "recordings").write_text("not a folder")
        (data / "snapshots").write_text("not a folder")

    h = await media_hub(prepare=block_dirs)
    cmd, cmd_media = await h.join("center", publish=False, slots=4)
    fire, _ = await h.join("fire")
    await wait_for(lambda: "media.error" in h.kinds("fire"), 15)
    issued = await cmd.request("command.issue", targets=["fire"], text="go")
    ack = await fire.request("command.respond", command_id=issued["command_id"], response="receipt")
    assert ack["state"] == "acknowledged"
    await wait_for(lambda: sum(k == "media.error" for k in h.kinds("fire")) >= 2, 10)
    errors = [e.payload for e in h.events() if e.kind == "media.error"]
    assert {"recordings", "snapshots"} <= {Path(e["path"]).parent.name for e in errors}
    assert all(e["op"] in ("open", "snapshot") and e["errno"] for e in errors)
    # the hub, the log and the video still work
    await wait_for(lambda: "fire" in cmd_media.seen("video").values(), 10)
    assert h.running.runner.app[MEDIA_KEY].stats()["segments"] == 0

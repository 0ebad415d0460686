"""Response snapshots: a burst of responses shares one JPEG, at most one a second per department."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from av import VideoFrame

from media.record import MediaError
from media.snapshots import Response, ResponseSnapshots


class Rig:
    """ResponseSnapshots with a real executor and folder; records what it logs and spawns."""

    def __init__(self, directory: Path, executor: concurrent.futures.Executor,
                 min_interval_s: float) -> None:
        self.events: list[tuple[str, dict[str, Any], float]] = []
        self.errors: list[MediaError] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.pictures = 0
        self.snaps = ResponseSnapshots(
            directory, executor, emit=lambda k, p: self.events.append((k, p, time.monotonic())),
            on_error=self.errors.append, spawn=lambda c: self.tasks.append(asyncio.ensure_future(c)),
            min_interval_s=min_interval_s)

    async def picture(self) -> Any:
        self.pictures += 1
        await asyncio.sleep(0.02)  # a keyframe being asked for and decoded
        bgr = np.zeros((48, 64, 3), np.uint8)
        bgr[:, :, 2] = 200  # red
        return SimpleNamespace(frame=VideoFrame.from_ndarray(bgr, format="bgr24"))

    async def no_picture(self) -> Any:
        return None

    async def settle(self) -> None:
        while not all(t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)
        for t in self.tasks:
            t.result()


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    pool = concurrent.futures.ThreadPoolExecutor(1, "test-media-io")
    yield pool
    pool.shutdown(wait=True)


async def test_a_burst_of_responses_shares_one_jpeg(tmp_path: Path, executor: Any) -> None:
    rig = Rig(tmp_path / "snapshots", executor, min_interval_s=0.3)
    for i in range(200):
        rig.snaps.take("fire", rig.picture, Response(1_000 + i, f"C{i + 1}"))
    rig.snaps.take("water", rig.picture, Response(5_000, None, "R1"))
    await rig.settle()
    assert rig.pictures == 2
    assert sorted(p["dept"] for _, p, _ in rig.events) == ["fire", "water"]
    fire = next(p for _, p, _ in rig.events if p["dept"] == "fire")
    # the first response as for a single one; every response it illustrates in `responses`
    assert (fire["command_id"], fire["report_id"], fire["ts_us"]) == ("C1", None, 1_000)
    assert [r["command_id"] for r in fire["responses"]] == [f"C{i + 1}" for i in range(200)]
    assert [r["ts_us"] for r in fire["responses"]] == [1_000 + i for i in range(200)]
    data = Path(fire["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == fire["sha256"]
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape == (48, 64, 3) and pixels[24, 32, 2] > 150 > pixels[24, 32, 0]
    assert len(list((tmp_path / "snapshots").iterdir())) == 2
    assert rig.snaps.stats() == {"taken": 2, "responses": 201, "missed": 0, "pending": 0}


async def test_at_most_one_snapshot_per_interval_per_department(tmp_path: Path,
                                                                executor: Any) -> None:
    rig = Rig(tmp_path, executor, min_interval_s=0.4)
    rig.snaps.take("fire", rig.picture, Response(1, "C1"))
    await rig.settle()
    t_first = rig.events[0][2]
    # responses after the first picture was taken wait for the next, a full interval later
    rig.snaps.take("fire", rig.picture, Response(2, "C2"))
    rig.snaps.take("fire", rig.picture, Response(3, "C3"))
    await rig.settle()
    assert [[r["command_id"] for r in p["responses"]] for _, p, _ in rig.events] == \
        [["C1"], ["C2", "C3"]]
    assert rig.events[1][2] - t_first >= 0.4 - 0.05
    assert rig.events[0][1]["path"] != rig.events[1][1]["path"]


async def test_no_picture_no_event_and_write_errors_reported(tmp_path: Path,
                                                             executor: Any) -> None:
    rig = Rig(tmp_path, executor, min_interval_s=0.1)
    rig.snaps.take("fire", rig.no_picture, Response(1, "C1"))
    rig.snaps.take("fire", rig.no_picture, Response(2, "C2"))
    await rig.settle()
    assert rig.events == [] and rig.snaps.stats()["missed"] == 2
    (tmp_path / "blocked").write_text("a file where the folder should be")
    rig.snaps.directory = tmp_path / "blocked"
    rig.snaps.take("water", rig.picture, Response(3, "C3"))
    await rig.settle()
    assert rig.events == []
    assert [(e.name, e.op) for e in rig.errors] == [("water", "snapshot")]

"""A hub starved of CPU by busy neighbour processes sheds media work and drops nobody."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hub.media_wiring import MEDIA_KEY
from tests.mediawiring.conftest import wait_for

STARVE_S = 12.0  # how long the neighbours spin (bounded: they exit on their own)
NEIGHBOURS = 3  # busy processes sharing the hub's one CPU: the hub gets about a quarter of it
SPIN = "import os, sys, time\nos.sched_setaffinity(0, {%d})\nend = time.monotonic() + %f\n" \
       "while time.monotonic() < end:\n    pass\n"


def _pin_process(cpus: set[int]) -> None:
    """Pin every thread of this process (the hub, its clients) to `cpus`."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            os.sched_setaffinity(int(task.name), cpus)


async def test_a_starved_hub_sheds_media_work_and_keeps_its_publishers(media_hub: Any) -> None:
    h = await media_hub()
    media = h.running.runner.app[MEDIA_KEY]
    cmd, _ = await h.join("center", publish=False, slots=4)
    for dept in ("fire", "water", "police"):
        await h.join(dept)
    await wait_for(lambda: h.kinds().count("media.published") >= 3, 20)
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    _pin_process({cpu})
    neighbours = [subprocess.Popen([sys.executable, "-c", SPIN % (cpu, STARVE_S)])
                  for _ in range(NEIGHBOURS)]
    try:
        await wait_for(lambda: media.shedder.shedding, STARVE_S)  # the loop ran late: shed
        assert media.monitor is not None and media.monitor.shedding
        assert media.stats()["shedding"] and media.stats()["loop_lag_max_ms"] > 100
        # the hub keeps running meanwhile (polled, never a blocking wait on the loop)
        await wait_for(lambda: all(p.poll() is not None for p in neighbours), STARVE_S + 30)
        assert media.stats()["loop_lag_max_ms"] < STARVE_S * 1000 / 2  # late, never stopped
    finally:
        for proc in neighbours:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        _pin_process(allowed)  # threads started meanwhile too
    # the machine is free again: media work comes back once the loop stayed on time
    # (a machine busy with other work may keep it shedding a while longer)
    await wait_for(lambda: not media.shedder.shedding, 60)
    assert media.monitor is not None and not media.monitor.shedding
    # nobody was dropped: every publisher still connected, no feed ended or lost its connection
    video = media.video
    assert all(p.connected and not p.closing for p in video.participants.values())
    assert len(video.participants) == 4, [(e.kind, e.payload) for e in h.events() if e.kind.startswith(("media.un", "rtc", "presence", "video.lost", "session"))][:12]
    kinds = h.kinds()
    assert "media.unpublished" not in kinds
    assert not [e for e in h.events() if e.kind == "video.lost" and e.payload.get("cause") != "picture"]
    # and the command path still works
    issued = await cmd.request("command.issue", targets=["fire"], text="report")
    assert issued["command_id"]

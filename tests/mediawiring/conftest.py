"""Fixtures for the media wiring tests: a real hub with media on, departments joined over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from hub.client import HubClient
from hub.logformat import Event, read_events
from hub.media_client import MediaClient
from hub.roster import load_roster
from hub.runtime import RunningHub, ServeOptions, start_hub
from hub.sfu.ice import IceConfig
from media.source import DepartmentVideo
from media.stamp import read_frame_stamp

IDS = load_roster().ids
NUMBERS = {i + 1: d for i, d in enumerate(IDS)} | {0: "center"}
FAST_HEALTH = {"sample_fps": 2.0, "frozen_after_s": 1.0, "black_after_s": 0.5, "lost_after_s": 2.0}


class FreezableVideo(DepartmentVideo):
    """A synthetic department whose picture can be frozen (the same pixels again and again)."""

    def __init__(self, number: int, name: str, **kw: Any) -> None:
        super().__init__(number, name, **kw)
        self.frozen = False
        self._last: np.ndarray | None = None

    def render(self, index: int, now: float) -> np.ndarray:
        if self.frozen and self._last is not None:
            return self._last
        self._last = super().render(index, now)
        return self._last


class Harness:
    """A running hub with media wiring and the clients joined to it."""

    def __init__(self, running: RunningHub, data: Path) -> None:
        self.running, self.data = running, data
        self.joined: list[tuple[HubClient, MediaClient]] = []

    @property
    def url(self) -> str:
        return self.running.url

    def token(self, role: str, dept: str | None = None) -> str:
        return self.running.hub.authority.issue(role, now=int(time.time()), dept=dept)  # type: ignore[arg-type]

    async def join(self, dept: str, *, publish: bool = True, slots: int = 0,
                   video: Any = None, codec: str = "video/VP8") -> tuple[HubClient, MediaClient]:
        role = "commander" if dept == "center" else "department"
        hc = HubClient(self.url, self.token(role, None if dept == "center" else dept))
        await hc.connect()
        number = 0 if dept == "center" else IDS.index(dept) + 1
        if publish and video is None:
            video = DepartmentVideo(number, dept)
        media = MediaClient(ice=IceConfig.loopback(), video=video if publish else None,
                            video_slots=slots, audio_slots=0, codecs=(codec,),
                            stamp_reader=read_frame_stamp, stamp_numbers=NUMBERS)

        hc.on_frame = media.on_frame
        await media.connect_over(hc)
        self.joined.append((hc, media))
        return hc, media

    def events(self) -> list[Event]:
        return read_events(self.running.hub.log.path)

    def kinds(self, dept: str | None = None) -> list[str]:
        return [e.kind for e in self.events()
                if dept is None or e.payload.get("dept") == dept or e.dept == dept]

    async def close(self) -> None:
        for hc, mc in self.joined:
            await mc.close()
            await hc.close()
        self.joined.clear()


async def wait_for(cond: Callable[[], Any], timeout: float, step: float = 0.05) -> None:
    """Poll `cond` until truthy; fail the test after `timeout` seconds."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


Start = Callable[..., Any]


@pytest.fixture
async def media_hub(tmp_path: Path) -> AsyncIterator[Start]:
    """`await media_hub(config={...}, record=True)` -> a Harness (stopped after the test)."""
    harnesses: list[Harness] = []

    async def start(config: dict[str, Any] | None = None, record: bool = True,
                    prepare: Callable[[Path], None] | None = None, roster: str | None = None) -> Harness:
        data = tmp_path / f"data{len(harnesses)}"
        data.mkdir()
        doc = {"health": FAST_HEALTH, "wall": {"record_fps": 2}, **(config or {})}
        (data / "media.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        if prepare is not None:
            prepare(data)
        opts = ServeOptions(data=data, port=0, ice_hosts=["127.0.0.1"], roster=roster)
        opts.record = record  # type: ignore[attr-defined]  # the lead adds the flag to ServeOptions
        h = Harness(await start_hub(opts), data)
        harnesses.append(h)
        return h

    try:
        yield start
    finally:
        for h in harnesses:
            await h.close()
            await h.running.stop()

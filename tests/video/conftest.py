"""Fixtures for the video tests: a VideoHub with a list-backed event log, loopback clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hub.media_client import MediaClient
from hub.sfu.ice import IceConfig
from hub.sfu.videohub import VideoHub
from media.source import DepartmentAudio, DepartmentVideo
from media.stamp import read_frame_stamp

ICE = IceConfig.loopback()
DEPTS = [
    "emergency", "police", "flood", "epidemic", "fire", "health120", "transport", "citymgmt",
    "resources", "ecology", "water", "power", "weather", "housing", "market", "changjiang",
]
GROUPS = {"public-safety": ["emergency", "police", "fire", "health120"],
          "flood": ["emergency", "flood", "citymgmt", "water", "weather", "changjiang"]}
NUMBERS = {i + 1: d for i, d in enumerate(DEPTS)} | {0: "center"}
NUMBER_OF = {d: n for n, d in NUMBERS.items()}


class Harness:
    """A hub, its logged events, and the clients joined to it."""

    def __init__(self, hub: VideoHub, events: list[tuple[str, str | None, dict[str, Any]]]):
        self.hub = hub
        self.events = events
        self.clients: dict[str, MediaClient] = {}

    async def join(self, pid: str, role: str, dept: str | None, *, publish: bool = True,
                   video_slots: int = 4, audio_slots: int = 1,
                   codec: str | tuple[str, ...] = "video/VP8",
                   size: tuple[int, int] = (320, 240), audio: bool = True,
                   fps: float = 15.0) -> MediaClient:
        number = 0 if role == "commander" else NUMBER_OF.get(dept or "", 99)
        client = MediaClient(
            ice=ICE,
            video=DepartmentVideo(number, dept or pid, width=size[0], height=size[1], fps=fps)
            if publish else None,
            audio=DepartmentAudio(number) if publish and audio else None,
            video_slots=video_slots, audio_slots=audio_slots,
            codecs=(codec,) if isinstance(codec, str) else codec,
            stamp_reader=read_frame_stamp, stamp_numbers=NUMBERS,
        )
        self.clients[pid] = client

        async def signal(sdp: str) -> str:
            return await self.hub.handle_offer(pid, role, dept, sdp)

        await client.connect(signal)
        client.apply_slots(self.hub.slot_info(pid))
        return client

    async def on_slots(self, pid: str, info: dict[str, Any]) -> None:
        client = self.clients.get(pid)
        if client is not None:
            client.apply_slots(info)

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


async def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Poll `cond` until true; returns seconds waited; fails the test after `timeout`."""
    import asyncio

    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - start


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    events: list[tuple[str, str | None, dict[str, Any]]] = []

    async def emit(kind: str, dept: str | None, payload: dict[str, Any]) -> None:
        events.append((kind, dept, payload))

    hub = VideoHub(emit=emit, groups=GROUPS, ice=ICE, departments=DEPTS, connect_timeout=5.0,
                   stats_interval=1.0)
    h = Harness(hub, events)
    hub.on_slots = h.on_slots
    try:
        yield h
    finally:
        for client in h.clients.values():
            await client.close()
        await hub.close()

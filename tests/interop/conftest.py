"""Fixtures for interop tests: a real hub (served as `commandhub serve` runs it, recording off,
but on pytest's asyncio loop where serve's default is uvloop) on loopback, and GStreamer
webrtcbin peers we did not write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub.logformat import Event, read_events
from hub.runtime import RunningHub, ServeOptions, start_hub
from tests.interop import gst


class InteropHub:
    def __init__(self, running: RunningHub) -> None:
        self.running = running

    @property
    def url(self) -> str:
        return self.running.url

    def token(self, role: str, dept: str | None = None) -> str:
        return self.running.hub.authority.issue(role, now=int(time.time()), dept=dept)  # type: ignore[arg-type]

    def events(self, *kinds: str, dept: str | None = None) -> list[Event]:
        return [e for e in read_events(self.running.hub.log.path)
                if (not kinds or e.kind in kinds)
                and (dept is None or e.payload.get("dept") == dept)]

    async def state(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(
                f"{self.url}/api/state", headers={"Authorization": f"Bearer {self.token('commander')}"}
        ) as r:
            assert r.status == 200
            body: dict[str, Any] = await r.json()
            return body


async def wait_for(cond: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
    """Poll `cond` until truthy (returns it); fail after `timeout` seconds."""
    t0 = time.monotonic()
    while not (value := cond()):
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.1)
    return value


@pytest.fixture
async def interop_hub(tmp_path: Path) -> AsyncIterator[InteropHub]:
    why = gst.unavailable()
    if why is not None:
        pytest.skip(why)
    data = tmp_path / "data"
    data.mkdir()
    (data / "media.yaml").write_text(yaml.safe_dump({"record": {"enabled": False}}), "utf-8")
    running = await start_hub(ServeOptions(data=data, port=0, ice_hosts=["127.0.0.1"]))
    try:
        yield InteropHub(running)
    finally:
        await running.stop()

"""Shared fixtures: a real hub on an ephemeral loopback port with its own data folder."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hub.client import HubClient
from hub.runtime import RunningHub, ServeOptions, start_hub

Connect = Callable[..., Awaitable[HubClient]]


@pytest.fixture
async def running_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_hub(ServeOptions(data=tmp_path / "data", port=0))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def token(running_hub: RunningHub) -> Callable[..., str]:
    def make(role: str, dept: str | None = None, **kw: object) -> str:
        return running_hub.hub.authority.issue(role, now=int(time.time()), dept=dept, **kw)  # type: ignore[arg-type]
    return make


@pytest.fixture
async def connect(running_hub: RunningHub, token: Callable[..., str]) -> AsyncIterator[Connect]:
    """`await connect(role, dept)` -> a connected HubClient, closed after the test."""
    clients: list[HubClient] = []

    async def make(role: str, dept: str | None = None, **kw: object) -> HubClient:
        c = HubClient(running_hub.url, token(role, dept), **kw)  # type: ignore[arg-type]
        clients.append(c)
        await c.connect()
        return c

    yield make
    for c in clients:
        await c.close()

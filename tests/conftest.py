"""Shared fixtures: a real hub on an ephemeral loopback port with its own data folder."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hub.client import HubClient
from hub.runtime import RunningHub, ServeOptions, start_hub

Connect = Callable[..., Awaitable[HubClient]]
ROOT = Path(__file__).resolve().parent.parent

# Whole-tree static checks (test name -> command): started at low priority as soon as the suite
# is collected, so they use the CPU the (mostly waiting) media and browser tests leave idle;
# the test waits for the verdict. A test run alone starts its check itself.
STATIC_CHECKS = {
    "test_mypy_is_clean": [sys.executable, "-m", "mypy"],
    "test_ruff_is_clean": [sys.executable, "-m", "ruff", "check", "."],
}
_STARTED = pytest.StashKey[dict[str, "subprocess.Popen[str]"]]()


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(["nice", "-n", "19", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = {item.name for item in session.items} & STATIC_CHECKS.keys()
    session.config.stash[_STARTED] = {name: _start(STATIC_CHECKS[name]) for name in sorted(wanted)}


def pytest_sessionfinish(session: pytest.Session) -> None:
    for proc in session.config.stash.get(_STARTED, {}).values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def static_check(request: pytest.FixtureRequest) -> Callable[[], tuple[int, str]]:
    """`static_check()` -> (exit code, output) of this test's command in STATIC_CHECKS."""
    def verdict() -> tuple[int, str]:
        name = request.node.name
        proc = request.config.stash.get(_STARTED, {}).get(name) or _start(STATIC_CHECKS[name])
        out, _ = proc.communicate(timeout=600)
        return proc.returncode, out
    return verdict


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

"""A recorded drill for the replay tests: a real hub records stamped bots, then stops; the replay
server (`commandhub replay DIR`) is run on the folder mounted read-only."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from hub.logformat import Event, read_events
from hub.runtime import ServeOptions, start_hub
from tests.mediawiring.conftest import Harness, wait_for

ROOT = Path(__file__).resolve().parents[2]
PUBLISHERS = ["police", "fire", "water", "power"]
PARTICIPANTS = [*PUBLISHERS, "health120"]  # health120 never publishes: a gap all along
OP = "drill-replay-test"


@dataclass
class Drill:
    data: Path
    events: list[Event]

    def seq_of(self, kind: str, dept: str | None = None) -> Event:
        return next(e for e in self.events if e.kind == kind
                    and (dept is None or e.payload.get("dept") == dept or e.dept == dept))


async def record_drill(data: Path, seconds: float = 12.0) -> Drill:
    """A drill with four stamped departments publishing (fire leaves half way), a command and
    its answers; the hub is stopped at the end (every file closed and logged)."""
    data.mkdir(parents=True)
    doc = {"record": {"segment_s": 4, "keyframe_s": 1}, "wall": {"record_fps": 2}}
    (data / "media.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    opts = ServeOptions(data=data, port=0, ice_hosts=["127.0.0.1"])
    h = Harness(await start_hub(opts), data)
    try:
        cmd, _ = await h.join("center", publish=False, slots=1)
        await cmd.request("operation.start", title="复盘测试演练", kind="drill", level="IV",
                          operation_id=OP, participants=PARTICIPANTS)
        clients = {d: await h.join(d) for d in PUBLISHERS}

        def published() -> bool:
            return {e.payload.get("dept") for e in h.events()
                    if e.kind == "media.published"} >= set(PUBLISHERS)

        await wait_for(published, 30)
        t0 = time.monotonic()
        await asyncio.sleep(2.0)
        issued = await cmd.request("command.issue", targets=["police", "fire", "water"],
                                   text="封控路口", requires=["receipt", "on_scene"])
        cid = issued["command_id"]
        await asyncio.sleep(1.0)
        await clients["police"][0].request("command.respond", command_id=cid, response="receipt")
        await asyncio.sleep(1.5)
        await clients["water"][0].request("command.respond", command_id=cid, response="receipt")
        await asyncio.sleep(1.0)
        await clients["police"][0].request("command.respond", command_id=cid,
                                           response="on_scene")
        hc, mc = clients["fire"]
        await mc.close()  # fire's feed ends: a gap from here on
        await hc.close()
        h.joined.remove((hc, mc))
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        await cmd.request("operation.end", reason="演练结束")
        await asyncio.sleep(0.5)
    finally:
        await h.close()
        await h.running.stop()
    return Drill(data, read_events(data / "events.db"))


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def drill(tmp_path_factory: pytest.TempPathFactory) -> Drill:
    return await record_drill(tmp_path_factory.mktemp("replay") / "data")


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    return probe.returncode == 0


URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+/replay\?op=[^&\s]+&token=(\S+))")


class ReplayServer:
    """`commandhub replay DIR` in a private mount namespace, with DIR bind-mounted read-only."""

    def __init__(self, data: Path, mount: Path) -> None:
        self.data, self.mount = data, mount
        self.proc: subprocess.Popen[str] | None = None
        self.url = self.token = self.base = ""

    def start(self) -> ReplayServer:
        self.mount.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "hub.cli", "replay", str(self.mount), "--port", "0"]
        quoted = " ".join(f"'{c}'" for c in cmd)
        script = "\n".join([
            "set -e",
            f"mount --bind '{self.data}' '{self.mount}'",
            f"mount -o remount,bind,ro '{self.mount}'",
            f"if touch '{self.mount}/probe' 2>/dev/null; then echo WRITABLE >&2; exit 9; fi",
            f"exec {quoted}",
        ])
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                      script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = URL_RE.search(line)
            if m:
                self.url, self.token = m.group(1), m.group(2)
                self.base = self.url.split("/replay")[0]
                return self
        err = self.proc.stderr.read() if self.proc.stderr else ""
        self.stop()
        raise AssertionError(f"replay server did not start: {line!r} {err}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="package")
def replay_server(drill: Drill, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayServer]:
    if not _can_mount():
        pytest.skip("needs root and unshare -m for a read-only mount")
    server = ReplayServer(drill.data, tmp_path_factory.mktemp("ro") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def browser() -> AsyncIterator[Any]:
    from tests.consoles.conftest import launch_chromium

    async for b in launch_chromium():
        yield b

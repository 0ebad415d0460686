"""Runs tests/interop/gst_peer.py (GStreamer webrtcbin under Debian's /usr/bin/python3) from tests.

libnice skips loopback interfaces, so in the suite's loopback-only namespace webrtcbin would
gather no ICE candidate: the peer runs with lo_shim.c (built here with gcc, once per session)
preloaded, which makes `lo` look like an ordinary interface. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = HERE / "gst_peer.py"
SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); "
         "gi.require_version('GstSdp', '1.0'); from gi.repository import Gst; Gst.init(None); "
         "assert all(Gst.ElementFactory.find(n) for n in ('webrtcbin', 'nicesrc', 'vp8enc', "
         "'x264enc', 'dtlssrtpenc', 'decodebin'))")


@functools.cache
def unavailable() -> str | None:
    """Why webrtcbin cannot run here (None: it can)."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} missing"
    if shutil.which("gcc") is None or shutil.which("openssl") is None:
        return "gcc and openssl are needed (python3 -m hub.bootstrap installs them)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True,
                           timeout=60, check=False)
    if probe.returncode != 0:
        return ("GStreamer webrtcbin with python3-gi is not installed (python3 -m hub.bootstrap "
                f"installs it): {probe.stderr.strip()[-300:]}")
    return None


@functools.cache
def shim() -> Path:
    """lo_shim.so, built once per test session in a temporary folder (removed at exit)."""
    folder = tempfile.mkdtemp(prefix="lo-shim-")
    atexit.register(shutil.rmtree, folder, True)
    out = Path(folder) / "lo_shim.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out), str(HERE / "lo_shim.c"),
                    "-ldl"], check=True, capture_output=True, timeout=60)
    return out


class GstPeer:
    """One gst_peer.py process: its JSON events as they come, then its result."""

    def __init__(self, proc: asyncio.subprocess.Process, args: list[str]) -> None:
        self.proc, self.args = proc, args
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, mode: str, url: str, token: str, *args: str) -> GstPeer:
        env = dict(os.environ, LD_PRELOAD=str(shim()), LO_SHIM_HIDE_OTHERS="1",
                   GST_DEBUG="0", PYTHONUNBUFFERED="1")
        argv = [SYSTEM_PYTHON, str(PEER), mode, url, token, *args]
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        return cls(proc, argv)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == name), None)

    async def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (found := self.event(name)) is None:
            if self.proc.returncode is not None and self._reader.done():
                raise AssertionError(f"peer ended without {name!r}: {self.events}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name!r} from the peer within {timeout} s: {self.events}")
            await asyncio.sleep(0.05)
        return found

    async def result(self, timeout: float = 60.0) -> dict[str, Any]:
        """The final `done` event (waits for the process to end, kills it after `timeout`)."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader
        done = self.event("done")
        if done is None:
            raise AssertionError(f"peer gave no result: {self.events}")
        return done

    async def finish(self, timeout: float = 30.0) -> dict[str, Any]:
        """End the run now (SIGUSR1: as at the end of --seconds) and return its `done` event."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGUSR1)
        return await self.result(timeout)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(Exception):
            await self._reader


async def run_peer(mode: str, url: str, token: str, *args: str, timeout: float = 60.0
                   ) -> dict[str, Any]:
    """Run a peer to its end; its `done` event."""
    peer = await GstPeer.start(mode, url, token, *args)
    try:
        return await peer.result(timeout)
    finally:
        await peer.stop()

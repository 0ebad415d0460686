"""A real full disk (tmpfs) under a running hub process: clients get `log_unavailable` with the
cause, /healthz goes 503 and back, nothing confirmed is lost, nothing refused is half-written,
and the hub restarts on what is left (also a WAL grown large behind a reader)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.auth import TokenAuthority, load_secret
from hub.bench import free_port, wait_http
from tests.hub.conftest import MountDisk, fill

TEXT = "现场报告 " + "x" * 3000  # ~3 KB: a commit is a page or two of WAL


class HubProcess:
    """`commandhub serve` in its own process; stderr kept outside the (full) disk."""

    def __init__(self, data: Path, err: Path) -> None:
        self.data, self.err = data, err
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(err, "ab") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve", "--data", str(data), "--port",
                 str(self.port), "--no-record"], stdout=subprocess.DEVNULL, stderr=f)

    async def up(self) -> None:
        try:
            await wait_http(self.url, timeout=30)
        except RuntimeError as exc:
            raise AssertionError(f"hub did not start: {self.err.read_text()[-3000:]}") from exc

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def token(self, role: str, dept: str | None = None) -> str:
        return TokenAuthority(load_secret(self.data)).issue(role, now=int(time.time()), dept=dept)


@contextlib.asynccontextmanager
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def report(http: aiohttp.ClientSession, hub: HubProcess, tok: str, rid: str) -> tuple[int, Any]:
    async with http.post(hub.url + "/api/rpc", headers={"Authorization": f"Bearer {tok}"},
                         json={"type": "report.field", "id": rid, "text": f"{rid} {TEXT}"}) as r:
        return r.status, await r.json()


async def health(http: aiohttp.ClientSession, hub: HubProcess) -> tuple[int, Any]:
    async with http.get(hub.url + "/healthz") as r:
        return r.status, await r.json()


def sqlite_reports(db: Path) -> dict[str, int]:
    """client_msg_id -> seq of every logged report, read with the sqlite3 CLI."""
    out = subprocess.run(["sqlite3", "-json", str(db), "SELECT seq, payload FROM events "
                          "WHERE kind = 'report.field'"], capture_output=True, text=True,
                         check=True).stdout
    return {json.loads(r["payload"])["client_msg_id"]: r["seq"] for r in json.loads(out or "[]")}


def verify(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", "log", "verify", str(db)],
                          capture_output=True, text=True, timeout=120)


async def test_full_disk_is_reported_and_recovered(small_disk: MountDisk, tmp_path: Path) -> None:
    disk = small_disk("8m")
    data = disk / "data"
    hub = HubProcess(data, tmp_path / "hub.err")
    acked: dict[str, int] = {}
    refused: list[str] = []
    try:
        await hub.up()
        tok = hub.token("department", "fire")
        async with http_session() as http:
            for i in range(5):
                status, body = await report(http, hub, tok, f"before-{i}")
                assert status == 200, body
                acked[f"before-{i}"] = body["seq"]
            filler = fill(disk)
            deadline, i = time.monotonic() + 60, 0
            while time.monotonic() < deadline and len(refused) < 20 and i < 5000:
                rid = f"full-{i}"
                i += 1
                status, body = await report(http, hub, tok, rid)
                if status == 200:
                    acked[rid] = body["seq"]
                    continue
                assert status == 503, body
                err = body["error"]
                assert err["code"] == "log_unavailable" and err["cause"] == "disk_full", err
                assert "disk full" in err["message"] and "nothing of this request was logged" \
                    in err["message"]
                assert "rollback" not in err["message"]
                refused.append(rid)
            assert len(refused) == 20, f"the disk never filled ({i} requests)"
            status, h = await health(http, hub)
            assert status == 503 and h["ok"] is False, h
            assert h["log"]["ok"] is False and h["log"]["cause"] == "disk_full", h
            # the WebSocket path says the same, in an error frame
            async with http.ws_connect(hub.url + "/ws", headers={
                    "Authorization": f"Bearer {hub.token('department', 'floodctrl')}"}) as ws:
                frame = await ws.receive_json(timeout=10)
                if frame["type"] == "welcome":  # presence.online may have fit; a request will not
                    await ws.send_json({"type": "report.field", "id": "ws-1", "text": TEXT})
                    frame = await ws.receive_json(timeout=10)
                    while frame["type"] != "error":
                        frame = await ws.receive_json(timeout=10)
                assert frame["code"] == "log_unavailable" and frame["cause"] == "disk_full", frame
            refused.append("ws-1")
            # free the disk: /healthz comes back by itself (the log's probe), requests work
            filler.unlink()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (await health(http, hub))[0] != 200:
                await asyncio.sleep(0.1)
            status, h = await health(http, hub)
            assert status == 200 and h == {"ok": True, "head": h["head"], "log": h["log"]}, h
            for i in range(5):
                status, body = await report(http, hub, tok, f"after-{i}")
                assert status == 200, body
                acked[f"after-{i}"] = body["seq"]
        assert hub.stop() == 0
        wal = Path(f"{data / 'events.db'}-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # a clean stop truncates the WAL
        again = HubProcess(data, tmp_path / "hub.err")
        await again.up()
        assert again.stop() == 0
    finally:
        if hub.proc.poll() is None:
            hub.stop(signal.SIGKILL)
    stored = sqlite_reports(data / "events.db")
    assert {k: stored[k] for k in acked} == acked  # every confirmed report, at its seq
    assert not set(refused) & set(stored)  # no refused one, not even partly
    r = verify(data / "events.db")
    assert r.returncode == 0, r.stdout + r.stderr
    out = subprocess.run(["sqlite3", "-json", str(data / "events.db"), "SELECT payload FROM "
                          "events WHERE kind = 'log.recovered'"], capture_output=True, text=True,
                         check=True).stdout
    [recovered] = [json.loads(r["payload"]) for r in json.loads(out)]
    assert recovered["cause"] == "disk_full" and recovered["failed_events"] >= 20
    err = (tmp_path / "hub.err").read_text()
    assert err.count("EVENT LOG CANNOT COMMIT (disk_full)") == 1, err[-3000:]  # once per cause
    assert err.count("WAL checkpoint failed (disk_full)") <= 1
    assert "Traceback" not in err


@pytest.mark.timeout(240)
async def test_restart_on_a_wal_grown_large_behind_a_reader(small_disk: MountDisk,
                                                            tmp_path: Path) -> None:
    """A reader (the sqlite3 CLI in an open transaction) keeps checkpoints from resetting the
    WAL; a clean stop then leaves a WAL over 8 MB, and kill -9 leaves one too: the hub
    starts on both, loses nothing, and empties the WAL at a clean stop once the reader is gone."""
    disk = small_disk("96m")
    data = disk / "data"
    db = data / "events.db"
    wal = Path(f"{db}-wal")
    hub = HubProcess(data, tmp_path / "hub.err")
    reader: subprocess.Popen[str] | None = None
    acked: dict[str, int] = {}

    async def send(n: int, prefix: str) -> None:
        tok = hub.token("department", "fire")
        async with http_session() as http:
            for start in range(0, n, 16):
                if start % 128 == 0:  # a fresh token under the per-token rate limit (50/s)
                    tok = hub.token("department", "fire")
                results = await asyncio.gather(*(report(http, hub, tok, f"{prefix}-{i}")
                                                 for i in range(start, min(n, start + 16))))
                for i, (status, body) in zip(range(start, n), results, strict=False):
                    assert status == 200, body
                    acked[f"{prefix}-{i}"] = body["seq"]
                if wal.exists() and wal.stat().st_size > 9 * 2**20:
                    return

    try:
        await hub.up()
        await send(10, "warm")
        reader = subprocess.Popen(["sqlite3", str(db)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert reader.stdin is not None and reader.stdout is not None
        reader.stdin.write("BEGIN; SELECT count(*) FROM events;\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) >= 10  # the read transaction holds its snapshot
        await send(6000, "pinned")
        assert wal.stat().st_size > 8 * 2**20
        assert hub.stop() == 0
        assert wal.stat().st_size > 8 * 2**20  # what the issue saw after a clean stop
        hub = HubProcess(data, tmp_path / "hub.err")
        await hub.up()  # starts on it, reader still there
        await send(20, "second")
        hub.stop(signal.SIGKILL)
        hub = HubProcess(data, tmp_path / "hub.err")
        await hub.up()
        reader.stdin.write("COMMIT;\n.quit\n")
        reader.stdin.flush()
        reader.wait(timeout=10)
        await send(20, "third")
        assert hub.stop() == 0  # nobody pins the WAL now: a clean stop empties it
        assert not wal.exists() or wal.stat().st_size == 0, wal.stat().st_size
    finally:
        if reader is not None:
            if reader.poll() is None:
                reader.kill()
            reader.wait(timeout=10)
            for pipe in (reader.stdin, reader.stdout):
                if pipe is not None:
                    pipe.close()
        if hub.proc.poll() is None:
            hub.stop(signal.SIGKILL)
    stored = sqlite_reports(db)
    assert {k: stored[k] for k in acked} == acked
    r = verify(db)
    assert r.returncode == 0, r.stdout + r.stderr

"""The WAL checkpointer survives a full disk (real tmpfs), retries with backoff, reports once per
cause, and the log's health follows; error causes are classified for clients."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.eventlog import EventLog, LogUnavailableError, classify_error
from tests.hub.conftest import MountDisk, fill


async def wait_until(cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_checkpointer_survives_a_full_disk(small_disk: MountDisk,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    disk = small_disk("12m")
    db = disk / "events.db"
    log = EventLog(db, SystemClock(), checkpoint_s=0.05, checkpoint_backoff_max_s=0.2)
    log.open()
    reader = sqlite3.connect(db)
    try:
        await log.append("seed", {"i": -1})
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()  # pins the WAL
        for i in range(600):  # ~2.5 MB of new pages the checkpoint must copy into the file
            await log.append("bulk", {"i": i, "text": "x" * 3000})
        filler = fill(disk)
        caplog.set_level(logging.WARNING, "commandhub.eventlog")
        reader.rollback()  # now the checkpoint may copy, and the database file must grow
        await wait_until(lambda: log.health().checkpoint_error is not None, 10)
        assert "disk_full" in (log.health().checkpoint_error or "")
        failures_seen = log.health().checkpoint_error
        await asyncio.sleep(1.0)  # several retries (backoff 0.1 .. 0.2 s)
        assert log._checkpointer is not None and log._checkpointer.is_alive()
        assert log.health().checkpoint_error == failures_seen
        warned = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
        assert len(warned) == 1  # once per cause, not once per retry
        filler.unlink()
        await wait_until(lambda: log.health().checkpoint_error is None, 10)
        assert any("works again" in r.getMessage() for r in caplog.records)
        await log.append("after", {"ok": True})
        assert log.health().ok
    finally:
        reader.close()
        await log.close()
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # TRUNCATE at close
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 602
    conn.close()


async def test_commit_failure_names_the_cause_and_recovery_is_logged(small_disk: MountDisk) -> None:
    disk = small_disk("4m")
    log = EventLog(disk / "events.db", SystemClock(), probe_s=0.05)
    log.open()
    try:
        await log.append("seed", {})
        filler = fill(disk)
        with pytest.raises(LogUnavailableError) as exc:
            for i in range(2000):
                await log.append("bulk", {"i": i, "text": "y" * 3000})
        assert exc.value.cause == "disk_full" and "SQLITE_FULL" in exc.value.detail
        head = log.head
        health = log.health()
        assert not health.ok and health.cause == "disk_full" and health.since_us
        filler.unlink()
        await wait_until(lambda: log.health().ok, 5)  # the probe commits log.recovered
        [recovered] = [e for e in log.after(head.seq) if e.kind == "log.recovered"]
        assert recovered.payload["cause"] == "disk_full"
        assert recovered.payload["failed_events"] >= 1
    finally:
        await log.close()


def test_causes_are_classified() -> None:
    assert classify_error(OSError(errno.ENOSPC, "No space left on device"))[0] == "disk_full"
    assert classify_error(OSError(errno.EIO, "Input/output error"))[0] == "io_error"
    assert classify_error(OSError(errno.EROFS, "Read-only file system"))[0] == "read_only"
    err = sqlite3.OperationalError("database or disk is full")
    err.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    cause, detail = classify_error(err)
    assert cause == "disk_full" and detail.startswith("SQLITE_FULL")
    assert classify_error(ValueError("odd"))[0] == "error"

"""EventLog: durable, hash-chained, append-only event log with group commit (SQLite WAL, FULL).

Appends from the event loop are stamped with the hub's clock, queued in order and committed by
one writer thread in batches: many appends share one fsync. An append's future resolves only
after its transaction committed, so nothing is confirmed that could still be lost.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.clock import Clock
from hub.logformat import (
    COLUMNS,
    Event,
    Head,
    Record,
    append_batch,
    canonical_json,
    create,
    event_hash,
    stored_head,
)

_STOP = object()


class EventLogError(Exception):
    """The log cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class Actor:
    role: str
    dept: str | None = None


HUB = Actor("hub", None)


class EventLog:
    """The hub's log. Use `await append(...)`; read with `after(seq)`."""

    def __init__(self, path: str | Path, clock: Clock, *, synchronous: str = "FULL",
                 max_batch: int = 8192) -> None:
        self.path = Path(path)
        self.clock = clock
        self.synchronous = synchronous
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._head = Head(0, "")
        self._reader: sqlite3.Connection | None = None
        self.commit_latencies_ns: list[int] | None = None  # set to a list to record (benchmarks)
        self.batches = 0
        self.on_commit: Callable[[list[Event]], None] | None = None  # called in seq order

    @property
    def head(self) -> Head:
        """The last committed event (seq, hash)."""
        return self._head

    def open(self) -> None:
        """Open (creating) the file, lock it against a second writer, check its tail, start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise EventLogError(f"{self.path} is in use by another hub process") from exc
        self._lock_fd = fd
        try:
            conn = create(self.path, self.synchronous)
        except sqlite3.DatabaseError as exc:
            raise EventLogError(f"{self.path}: cannot open as an event log: {exc}") from exc
        head = stored_head(conn)
        if head.seq:
            row = conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq = ?", (head.seq,)).fetchone()
            seq, ts, mono, op, opk, role, dept, kind, payload, prev, h = row
            if event_hash(prev, seq, ts, mono, op, opk, role, dept, kind, payload) != h:
                raise EventLogError(f"{self.path}: last event {seq} does not match its hash; "
                                    "run `commandhub log verify`")
        self._head = head
        self._reader = sqlite3.connect(str(self.path), check_same_thread=False)
        self._loop = asyncio.get_running_loop()
        # Checkpoints run in their own thread so a WAL checkpoint never stalls a commit.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="eventlog-ckpt",
                                              daemon=True)
        self._checkpointer.start()
        self._thread = threading.Thread(target=self._writer, args=(conn, head),
                                        name="eventlog-writer", daemon=True)
        self._thread.start()

    def _checkpoints(self, period_s: float = 1.0) -> None:
        conn = sqlite3.connect(str(self.path), check_same_thread=False)
        try:
            while not self._stop_checkpoints.wait(period_s):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # a busy or failing checkpoint loses nothing: the WAL holds it
            print(f"commandhub: WAL checkpoint failed: {exc}", flush=True)
        finally:
            conn.close()

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
            self._stop_checkpoints.set()
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.join)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writing ---------------------------------------------------------------------------

    def record(self, kind: str, payload: Mapping[str, Any], *, actor: Actor, op: str,
               op_kind: str, ts_us: int | None = None) -> Record:
        """Stamp an event with the hub's clock (pure apart from the clock read)."""
        return Record(
            ts_us=self.clock.wall_us() if ts_us is None else ts_us,
            mono_ns=self.clock.mono_ns(),
            op=op, op_kind=op_kind, role=actor.role, dept=actor.dept, kind=kind,
            payload=payload, payload_json=canonical_json(payload),
        )

    def submit(self, records: Sequence[Record]) -> asyncio.Future[list[Event]]:
        """Queue records to be committed together; the future resolves after the commit."""
        if self._thread is None or self._loop is None:
            raise EventLogError("event log is not open")
        fut: asyncio.Future[list[Event]] = self._loop.create_future()
        self._queue.put((list(records), fut, self.clock.mono_ns()))
        return fut

    async def append(self, kind: str, payload: Mapping[str, Any], *, actor: Actor = HUB,
                     op: str = "system", op_kind: str = "system") -> Event:
        events = await self.submit([self.record(kind, payload, actor=actor, op=op, op_kind=op_kind)])
        return events[0]

    def _writer(self, conn: sqlite3.Connection, head: Head) -> None:
        assert self._loop is not None
        loop = self._loop
        stop = False
        while not stop:
            items = [self._queue.get()]
            if items[0] is _STOP:
                break
            n = len(items[0][0])
            while n < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                items.append(item)
                n += len(item[0])
            records = [r for recs, _, _ in items for r in recs]
            try:
                events, head = append_batch(conn, head, records)
            except Exception as exc:  # disk full, I/O error: fail these appends, keep serving
                loop.call_soon_threadsafe(_fail, items, exc)
                continue
            self._head = head
            self.batches += 1
            if self.commit_latencies_ns is not None:
                now = self.clock.mono_ns()
                self.commit_latencies_ns.extend(now - t0 for _, _, t0 in items)
            loop.call_soon_threadsafe(self._committed, items, events)
        conn.close()

    # -- reading ---------------------------------------------------------------------------

    def after(self, seq: int, limit: int = 1000, op: str | None = None) -> list[Event]:
        """Committed events with seq > `seq`, oldest first, at most `limit`."""
        assert self._reader is not None
        if op is None:
            rows = self._reader.execute(
                f"SELECT {COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        else:
            rows = self._reader.execute(
                f"SELECT {COLUMNS} FROM events WHERE seq > ? AND op = ? ORDER BY seq LIMIT ?",
                (seq, op, limit))
        return [Event.from_row(r) for r in rows]


    def _committed(self, items: list[Any], events: list[Event]) -> None:
        try:
            if self.on_commit is not None:
                self.on_commit(events)
        finally:  # the events are durable whatever a listener did: confirm them
            _resolve(items, events)


def _resolve(items: list[Any], events: list[Event]) -> None:
    i = 0
    for recs, fut, _ in items:
        n = len(recs)
        if not fut.done():
            fut.set_result(events[i:i + n])
        i += n


def _fail(items: list[Any], exc: Exception) -> None:
    err = EventLogError(f"event log write failed: {exc}")
    for _, fut, _ in items:
        if not fut.done():
            fut.set_exception(err)

"""EventLog: durable, hash-chained, append-only event log with group commit (SQLite WAL, FULL).

Appends from the event loop are stamped with the hub's clock, queued in order and committed by
one writer thread in batches: many appends share one fsync. An append's future resolves only
after its transaction committed, so nothing is confirmed that could still be lost.

The log reports its own health: a commit that fails (disk full, I/O error) fails that batch
with LogUnavailableError naming the cause, marks the log unhealthy, and the writer probes
until a commit succeeds again (logging `log.recovered`). On open the chain is verified from
the latest signed head (hub/checkpoint.py) to the tail; signed heads are added at start,
every minute, at operation end and at clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import getpass
import logging
import os
import queue
import shutil
import socket
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hub.checkpoint import (
    CheckpointError,
    HeadSigner,
    SignedHead,
    TailVerdict,
    append_signed_head,
    describe,
    latest_signed_head,
    verify_tail,
)
from hub.clock import Clock
from hub.logformat import (
    COLUMNS,
    ChainError,
    Event,
    Head,
    HeadMismatchError,
    Record,
    canonical_json,
    chain_records,
    commit_rows,
    create,
    rollback,
    stored_head,
)

log = logging.getLogger("commandhub.eventlog")

_STOP = object()
# A WAL reset after a checkpoint cuts the file back to this size; small enough to give back
# the space an episode (a reader pinning the WAL, a failing disk) took, large enough never to
# cut in normal use (regrowing a WAL file costs every commit that extends it).
WAL_KEEP_BYTES = 64 * 1024 * 1024


class EventLogError(Exception):
    """The log cannot be opened or written."""


class LogUnavailableError(EventLogError):
    """A commit failed; nothing of the batch was stored. `cause`: disk_full, io_error,
    read_only, corrupt, busy, cannot_open, diverged or error; `detail`: SQLite's/the OS's words."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"event log cannot commit ({cause.replace('_', ' ')}: {detail}); "
                         "nothing of this request was logged")
        self.cause, self.detail = cause, detail


class LogVerificationError(EventLogError):
    """The log does not verify on open; the hub refuses to append to it.

    `exit_code`: 1 the chain is broken at `seq`; 3 the log does not extend its latest signed
    head (or the heads cannot be trusted). Override with `commandhub serve --skip-verify`.
    """

    def __init__(self, message: str, exit_code: int, seq: int | None) -> None:
        super().__init__(message)
        self.exit_code, self.seq = exit_code, seq


def classify_error(exc: BaseException, folder: Path | None = None) -> tuple[str, str]:
    """(cause, detail) of a failed commit or checkpoint, for clients, /healthz and the console."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    detail = f"{name}: {exc}" if name else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.errno is not None:
        cause = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EIO: "io_error",
                 errno.EROFS: "read_only"}.get(exc.errno, "io_error")
        return cause, detail
    if name.startswith("SQLITE_FULL"):
        return "disk_full", detail
    if name.startswith("SQLITE_IOERR"):
        # SQLite reports ENOSPC on some paths (WAL append, fsync) as an I/O error
        if folder is not None and _free_bytes(folder) < 64 * 1024:
            return "disk_full", detail
        return "io_error", detail
    for prefix, cause in (("SQLITE_READONLY", "read_only"), ("SQLITE_CORRUPT", "corrupt"),
                          ("SQLITE_NOTADB", "corrupt"), ("SQLITE_BUSY", "busy"),
                          ("SQLITE_LOCKED", "busy"), ("SQLITE_CANTOPEN", "cannot_open")):
        if name.startswith(prefix):
            return cause, detail
    return "error", detail


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


@dataclass(frozen=True, slots=True)
class Actor:
    role: str
    dept: str | None = None


HUB = Actor("hub", None)


@dataclass(frozen=True, slots=True)
class LogHealth:
    """Whether the log can commit (`ok`), and since when it cannot (`cause`, `since_us`)."""

    ok: bool = True
    cause: str | None = None
    message: str = ""
    since_us: int | None = None
    failed_attempts: int = 0  # commits (batches and probes) that failed in this outage
    failed_events: int = 0  # events refused to their senders in this outage
    checkpoint_error: str | None = None  # the WAL checkpointer's last error, until it succeeds

    def to_dict(self, wal_bytes: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"ok": self.ok}
        if not self.ok:
            d.update(cause=self.cause, message=self.message, since_us=self.since_us,
                     failed_attempts=self.failed_attempts, failed_events=self.failed_events)
        if self.checkpoint_error is not None:
            d["checkpoint_error"] = self.checkpoint_error
        if wal_bytes is not None:
            d["wal_bytes"] = wal_bytes
        return d


@dataclass(frozen=True)
class VerifySkip:
    """`commandhub serve --skip-verify`: who asked and why (logged as `log.verify_skipped`)."""

    reason: str = ""
    by: Mapping[str, Any] = field(default_factory=lambda: {
        "user": _user(), "uid": os.getuid(), "host": socket.gethostname(), "via": "cli"})


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class Startup:
    """What `open()` found: the verified range, or that verification was skipped."""

    tail: Head
    verdict: TailVerdict | None = None
    skipped: VerifySkip | None = None
    signed_head: SignedHead | None = None  # the latest before this start (skip: if readable)
    signed_head_error: str | None = None
    verify_ms: float = 0.0

    def payload(self) -> dict[str, Any]:
        """The `log` field of `hub.started`."""
        if self.verdict is None:
            return {"verified": False, "tail": _head_dict(self.tail)}
        v = self.verdict
        cp = v.checkpoint
        return {"verified": True, "from": _head_dict(cp.head) if cp else None,
                "to": _head_dict(v.head), "events": v.events,
                "signed_heads_checked": v.heads_checked, "ms": round(self.verify_ms, 1),
                "key_fingerprint": v.latest.key_fingerprint if v.latest else None}

    def skipped_payload(self) -> dict[str, Any] | None:
        """The payload of `log.verify_skipped`, if verification was skipped."""
        if self.skipped is None:
            return None
        sh = self.signed_head
        return {"by": dict(self.skipped.by), "reason": self.skipped.reason,
                "tail": _head_dict(self.tail),
                "signed_head": {**_head_dict(sh.head), "reason": sh.reason,
                                "ts_us": sh.ts_us} if sh else None,
                "signed_head_error": self.signed_head_error}


def _head_dict(h: Head) -> dict[str, Any]:
    return {"seq": h.seq, "hash": h.hash}


class EventLog:
    """The hub's log. Use `await append(...)`; read with `after(seq)`."""

    def __init__(self, path: str | Path, clock: Clock, *, synchronous: str = "FULL",
                 max_batch: int = 8192, signer: HeadSigner | None = None,
                 probe_s: float = 1.0, sign_every_s: float = 60.0,
                 checkpoint_s: float = 1.0, checkpoint_backoff_max_s: float = 30.0) -> None:
        self.path = Path(path)
        self.clock = clock
        self.synchronous = synchronous
        self.max_batch = max_batch
        self.signer = signer
        self.probe_s = probe_s
        self.sign_every_s = sign_every_s
        self.checkpoint_s = checkpoint_s
        self.checkpoint_backoff_max_s = checkpoint_backoff_max_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._head = Head(0, "")
        self._reader: sqlite3.Connection | None = None
        self._closing = False
        self._health = LogHealth()
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._sign_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_signed: SignedHead | None = None
        self._own_event_seq = 0  # seq of our last log.head_signed event
        self.startup: Startup | None = None
        self.commit_latencies_ns: list[int] | None = None  # set to a list to record (benchmarks)
        self.batches = 0
        self.on_commit: Callable[[list[Event]], None] | None = None  # called in seq order
        # (op, op_kind) for the log's own events (log.recovered, log.head_signed)
        self.context: Callable[[], tuple[str, str]] = lambda: ("system", "system")

    @property
    def head(self) -> Head:
        """The last committed event (seq, hash)."""
        return self._head

    def health(self) -> LogHealth:
        return self._health

    def wal_bytes(self) -> int | None:
        try:
            return os.stat(f"{self.path}-wal").st_size
        except OSError:
            return None

    # -- life cycle --------------------------------------------------------------------------

    def open(self, *, skip_verify: VerifySkip | None = None) -> None:
        """Open (creating) the file, lock it against a second writer, verify it from the last
        start head to the tail and against every head signed since (LogVerificationError;
        `skip_verify` to start anyway), sign the verified tail (`start`), and start the
        writer and the WAL checkpointer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise EventLogError(f"{self.path} is in use by another hub process") from exc
        conn: sqlite3.Connection | None = None
        try:
            try:
                conn = create(self.path, self.synchronous)
                conn.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
                conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in their own thread
            except sqlite3.Error as exc:
                cause, detail = classify_error(exc, self.path.parent)
                raise EventLogError(f"{self.path}: cannot open as an event log ({cause}: "
                                    f"{detail})") from exc
            try:
                self.startup = self._check_start(conn, skip_verify)
            except sqlite3.Error as exc:
                raise EventLogError(f"{self.path}: cannot read the log to verify it: {exc}") \
                    from exc
            self._head = self.startup.tail
            self._sign_start(skip_verify is not None)
            self._reader = sqlite3.connect(str(self.path), check_same_thread=False)
        except BaseException:
            if conn is not None:
                conn.close()
            os.close(fd)
            raise
        self._lock_fd = fd
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._sign_lock = asyncio.Lock()
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="eventlog-ckpt",
                                              daemon=True)
        self._checkpointer.start()
        self._thread = threading.Thread(target=self._writer, args=(conn, self._head),
                                        name="eventlog-writer", daemon=True)
        self._thread.start()
        if self.signer is not None and self.sign_every_s > 0:
            self._spawn(self._sign_periodically())

    def _check_start(self, conn: sqlite3.Connection, skip: VerifySkip | None) -> Startup:
        pin = self.signer.pin() if self.signer is not None else None
        if skip is not None:
            tail = stored_head(conn)
            try:
                latest, error = latest_signed_head(self.path, pin), None
            except CheckpointError as exc:
                latest, error = None, str(exc)
            log.warning("%s: start-up verification SKIPPED (%s); tail %s", self.path,
                        skip.reason or "no reason given", tail)
            return Startup(tail, skipped=skip, signed_head=latest, signed_head_error=error)
        t0 = self.clock.mono_ns()
        hint = ("the hub will not append to it: inspect it with `commandhub log verify "
                f"{self.path}`, or start anyway with `commandhub serve --skip-verify` (logged)")
        try:
            verdict = verify_tail(conn, self.path, pin)
        except HeadMismatchError as exc:
            raise LogVerificationError(f"{self.path}: {exc}; {hint}", 3, exc.seq) from exc
        except ChainError as exc:
            raise LogVerificationError(f"{self.path}: {exc}; {hint}", 1, exc.seq) from exc
        except CheckpointError as exc:
            raise LogVerificationError(f"{self.path}: signed heads cannot be trusted: {exc}; "
                                       f"{hint}", 3, None) from exc
        return Startup(verdict.head, verdict=verdict, signed_head=verdict.latest,
                       verify_ms=(self.clock.mono_ns() - t0) / 1e6)

    def _sign_start(self, unverified: bool) -> None:
        """Sign the tail just verified, so the next start verifies from here (and so events
        appended after a `stop` head are known not to be the hub's)."""
        assert self.startup is not None
        tail = self.startup.tail
        if self.signer is None or tail.seq == 0:
            return
        latest = self.startup.signed_head
        if latest is not None and latest.head == tail and latest.reason == "start" \
                and not unverified:
            self._last_signed = latest  # started on this very tail before: already the checkpoint
            return
        signed = self.signer.sign(tail, self.clock.wall_us(),
                                  "start_unverified" if unverified else "start")
        try:
            append_signed_head(self.path, signed)
        except OSError as exc:
            log.warning("%s: cannot store the start's signed head: %s", self.path, exc)
            return
        self._last_signed = signed

    async def close(self) -> None:
        """Commit what was queued, sign the final head (`stop`), checkpoint, close."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            self._closing = True
            self._queue.put(_STOP)
            await loop.run_in_executor(None, self._thread.join)
            self._thread = None
            self._fail_leftovers()
            if self.signer is not None and self._head.seq > 0:
                signed = self.signer.sign(self._head, self.clock.wall_us(), "stop")
                try:
                    await loop.run_in_executor(None, append_signed_head, self.path, signed)
                    self._last_signed = signed
                except OSError as exc:
                    log.warning("%s: cannot store the final signed head: %s", self.path, exc)
            self._stop_checkpoints.set()
            if self._checkpointer is not None:
                await loop.run_in_executor(None, self._checkpointer.join)
                self._checkpointer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _fail([item], EventLogError("event log closed before this was committed"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        if self._thread is None or self._loop is None or self._closing:
            raise EventLogError("event log is not open")
        fut: asyncio.Future[list[Event]] = self._loop.create_future()
        self._queue.put((list(records), fut, self.clock.mono_ns()))
        return fut

    async def append(self, kind: str, payload: Mapping[str, Any], *, actor: Actor = HUB,
                     op: str = "system", op_kind: str = "system") -> Event:
        events = await self.submit([self.record(kind, payload, actor=actor, op=op, op_kind=op_kind)])
        return events[0]

    def _own_record(self, kind: str, payload: Mapping[str, Any]) -> Record:
        op, op_kind = self.context()
        return self.record(kind, payload, actor=HUB, op=op, op_kind=op_kind)

    def _writer(self, conn: sqlite3.Connection, head: Head) -> None:
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=None if self._health.ok else self.probe_s)
            except queue.Empty:  # unhealthy and idle: probe with the recovery event alone
                head = self._attempt(conn, head, [])
                continue
            if first is _STOP:
                break
            items = [first]
            n = len(first[0])
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
            head = self._attempt(conn, head, items)
        conn.close()

    def _attempt(self, conn: sqlite3.Connection, head: Head, items: list[Any]) -> Head:
        """Commit one batch (plus `log.recovered` while unhealthy); resolve or fail its futures."""
        assert self._loop is not None
        records = [r for recs, _, _ in items for r in recs]
        health = self._health
        if not health.ok:
            records.append(self._own_record("log.recovered", {
                "cause": health.cause, "message": health.message, "since_us": health.since_us,
                "failed_attempts": health.failed_attempts,
                "failed_events": health.failed_events}))
        events, rows, new_head = chain_records(head, records)
        try:
            commit_rows(conn, rows)
        except Exception as exc:  # disk full, I/O error, ...: classified below, never hidden
            stored = self._stored_after_failure(conn)
            if stored != new_head:
                error: Exception = exc
                if stored is not None and stored != head:
                    log.error("%s: the log's tail moved to %s outside this writer (expected "
                              "%s); continuing from it", self.path, stored, head)
                    error = _Diverged(f"stored head {stored}, expected {head}")
                    head = stored
                self._failed(error, items)
                return head
            # SQLite reported an error but the transaction is in the file: it is committed
        self._head = new_head
        self.batches += 1
        if not health.ok:
            self._recovered()
        if self.commit_latencies_ns is not None:
            now = self.clock.mono_ns()
            self.commit_latencies_ns.extend(now - t0 for _, _, t0 in items)
        self._loop.call_soon_threadsafe(self._committed, items, events)
        return new_head

    @staticmethod
    def _stored_after_failure(conn: sqlite3.Connection) -> Head | None:
        rollback(conn)
        try:
            return stored_head(conn)
        except sqlite3.Error:
            return None  # unknown; a later batch that collides with a stored seq fails safely

    def _failed(self, exc: Exception, items: list[Any]) -> None:
        assert self._loop is not None
        cause, detail = ("diverged", str(exc)) if isinstance(exc, _Diverged) else \
            classify_error(exc, self.path.parent)
        refused = sum(len(recs) for recs, _, _ in items)
        old = self._health
        if old.ok or old.cause != cause:
            log.error("EVENT LOG CANNOT COMMIT (%s): %s — requests are refused with "
                      "log_unavailable until a commit succeeds", cause, detail)
        if old.ok:
            self._health = replace(old, ok=False, cause=cause, message=detail,
                                   since_us=self.clock.wall_us(), failed_attempts=1,
                                   failed_events=refused)
        else:
            self._health = replace(old, cause=cause, message=detail,
                                   failed_attempts=old.failed_attempts + 1,
                                   failed_events=old.failed_events + refused)
        if items:
            self._loop.call_soon_threadsafe(_fail, items, LogUnavailableError(cause, detail))

    def _recovered(self) -> None:
        old = self._health
        log.warning("event log commits again after %d failed attempt(s) (%s)",
                    old.failed_attempts, old.cause)
        self._health = LogHealth(checkpoint_error=old.checkpoint_error)

    def _committed(self, items: list[Any], events: list[Event]) -> None:
        try:
            if self.on_commit is not None:
                self.on_commit(events)
        finally:  # the events are durable whatever a listener did: confirm them
            _resolve(items, events)
            if self.signer is not None and not self._closing and any(
                    e.kind == "operation.ended" for e in events):
                self._spawn(self.sign_head("operation_end"))

    # -- WAL checkpoints -------------------------------------------------------------------

    def _checkpoints(self) -> None:
        """PASSIVE checkpoints every `checkpoint_s`; a failure is logged once per cause and
        retried with doubling delay (up to `checkpoint_backoff_max_s`); TRUNCATE at close."""
        conn: sqlite3.Connection | None = None
        delay, failures, last_cause = self.checkpoint_s, 0, None
        while True:
            stopping = self._stop_checkpoints.wait(delay)
            try:
                if conn is None:
                    conn = sqlite3.connect(str(self.path), check_same_thread=False)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)" if stopping
                             else "PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the WAL still holds every commit: nothing is lost
                cause, detail = classify_error(exc, self.path.parent)
                if cause != last_cause:
                    log.warning("WAL checkpoint failed (%s): %s; retrying with backoff",
                                cause, detail)
                    last_cause = cause
                failures += 1
                delay = min(self.checkpoint_backoff_max_s, self.checkpoint_s * 2 ** failures)
                self._health = replace(self._health, checkpoint_error=f"{cause}: {detail}")
                if conn is not None and cause != "busy":
                    conn.close()  # reopen next time: a connection that failed may be stuck
                    conn = None
            else:
                if last_cause is not None:
                    log.warning("WAL checkpoint works again after %d failure(s)", failures)
                    self._health = replace(self._health, checkpoint_error=None)
                delay, failures, last_cause = self.checkpoint_s, 0, None
            if stopping:
                break
        if conn is not None:
            conn.close()

    # -- signed heads ----------------------------------------------------------------------

    async def sign_head(self, reason: str, *, log_event: bool = True) -> SignedHead | None:
        """Sign the current head into the sidecar and (by default) log it as `log.head_signed`.

        `periodic` signs only if events other than our own `log.head_signed` were added since
        the last signature. Returns the signed head, or None if nothing was signed.
        """
        if self.signer is None or self._sign_lock is None or self._loop is None or self._closing:
            return None  # a closing log signs its final head itself (`stop`)
        async with self._sign_lock:
            head = self._head
            last = self._last_signed
            if head.seq == 0 or (reason == "periodic" and (
                    (last is not None and last.head == head) or head.seq == self._own_event_seq)):
                return None
            signed = self.signer.sign(head, self.clock.wall_us(), reason)
            try:
                await self._loop.run_in_executor(None, append_signed_head, self.path, signed)
            except OSError as exc:
                log.warning("%s: cannot store a signed head (%s): %s", self.path, reason, exc)
                return None
            self._last_signed = signed
            if log_event:
                with contextlib.suppress(EventLogError):  # /healthz reports a failing log
                    fut = self.submit([self._own_record("log.head_signed", describe(signed))])
                    self._own_event_seq = (await fut)[0].seq
            return signed

    async def _sign_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.sign_every_s)
            await self.sign_head("periodic")

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


    def of_kind(self, kind: str) -> list[Event]:
        """Every committed event of one kind, oldest first (a full scan: for start-up use)."""
        conn = sqlite3.connect(str(self.path))  # its own connection: safe from any thread
        try:
            rows = conn.execute(f"SELECT {COLUMNS} FROM events WHERE kind = ? ORDER BY seq",
                                (kind,)).fetchall()
        finally:
            conn.close()
        return [Event.from_row(r) for r in rows]


class _Diverged(Exception):
    """The stored tail is not where this writer left it."""


def _resolve(items: list[Any], events: list[Event]) -> None:
    i = 0
    for recs, fut, _ in items:
        n = len(recs)
        if not fut.done():
            fut.set_result(events[i:i + n])
        i += n


def _fail(items: list[Any], exc: Exception) -> None:
    for _, fut, _ in items:
        if not fut.done():
            fut.set_exception(exc)

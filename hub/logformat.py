"""The event log's on-disk format: canonical JSON, the hash chain, and a stdlib-only reader/verifier.

This module is the contract between the hub (which writes the log) and every reader
(scoring, the CLI, exports). It imports nothing but the standard library so that
scoring can read and verify a log without pulling in the hub's server or media code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    ts_us     INTEGER NOT NULL,
    mono_ns   INTEGER NOT NULL,
    op        TEXT NOT NULL,
    op_kind   TEXT NOT NULL,
    role      TEXT NOT NULL,
    dept      TEXT,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_op_kind ON events(op, kind);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'event log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'event log is append-only: DELETE refused'); END;
"""

COLUMNS = "seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload, prev_hash, hash"


def canonical_json(obj: Any) -> str:
    """Serialise `obj` the one way the chain hashes it: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    prev_hash: str,
    seq: int,
    ts_us: int,
    mono_ns: int,
    op: str,
    op_kind: str,
    role: str,
    dept: str | None,
    kind: str,
    payload_json: str,
) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the event (payload as text)."""
    body = canonical_json(
        {
            "prev": prev_hash,
            "seq": seq,
            "ts_us": ts_us,
            "mono_ns": mono_ns,
            "op": op,
            "op_kind": op_kind,
            "role": role,
            "dept": dept,
            "kind": kind,
            "payload": payload_json,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def stored_hash(prev_hash: str, *columns: Any) -> str | None:
    """event_hash over a stored row's columns (seq .. payload, as sqlite3 reads them), or None
    when a column holds a blob, which the hub never writes and no hash can be made of."""
    try:
        return event_hash(prev_hash, *columns)
    except TypeError:
        return None


@dataclass(frozen=True, slots=True)
class Event:
    """One committed event, as stored."""

    seq: int
    ts_us: int
    mono_ns: int
    op: str
    op_kind: str
    role: str
    dept: str | None
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts_us": self.ts_us,
            "mono_ns": self.mono_ns,
            "op": self.op,
            "op_kind": self.op_kind,
            "role": self.role,
            "dept": self.dept,
            "kind": self.kind,
            "payload": dict(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Event:
        seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload, prev_hash, h = row
        return cls(seq, ts_us, mono_ns, op, op_kind, role, dept, kind, json.loads(payload), prev_hash, h)


class LogFormatError(Exception):
    """The file is not a CommandHub event log."""


class ChainError(Exception):
    """The hash chain does not verify; `seq` is the first event that is wrong or missing."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(self._message(seq, reason))
        self.seq = seq
        self.reason = reason

    @staticmethod
    def _message(seq: int, reason: str) -> str:
        return f"chain broken at seq {seq}: {reason}"


class HeadMismatchError(ChainError):
    """The chain holds, but the log does not extend a checkpoint it must extend.

    `truncated`: the log ends before `head.seq` (its tail was cut); otherwise the event at
    `head.seq` has another hash (a different history). `seq` is the first seq that is wrong or
    missing, as for ChainError.
    """

    def __init__(self, seq: int, reason: str, head: Head, *, truncated: bool) -> None:
        self.head = head
        self.truncated = truncated
        super().__init__(seq, reason)

    @staticmethod
    def _message(seq: int, reason: str) -> str:
        return f"log does not extend the checkpoint (at seq {seq}): {reason}"


@dataclass(frozen=True, slots=True)
class Head:
    """A checkpoint of the log: the last seq and its hash."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq_text, sep, h = text.partition(":")
        if not sep or not seq_text.isdigit() or len(h) != 64:
            raise ValueError(f"head must look like SEQ:SHA256HEX, got {text!r}")
        return cls(int(seq_text), h.lower())


@dataclass(frozen=True, slots=True)
class Record:
    """An event not yet in the log: everything but seq and the hashes."""

    ts_us: int
    mono_ns: int
    op: str
    op_kind: str
    role: str
    dept: str | None
    kind: str
    payload: Mapping[str, Any]
    payload_json: str = ""  # canonical JSON of payload, if the caller already made it


def create(path: str | Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open (creating if needed) a writable log in WAL mode with the append-only triggers.

    An existing log is opened without writing to it (so it opens on a full disk too).
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
        if exists is None:
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
    except BaseException:
        conn.close()
        raise
    return conn


def stored_head(conn: sqlite3.Connection) -> Head:
    """The last stored event's (seq, hash), or (0, genesis) for an empty log."""
    row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(0, GENESIS_HASH) if row is None else Head(row[0], row[1])


def chain_records(
    head: Head, records: Sequence[Record]
) -> tuple[list[Event], list[tuple[Any, ...]], Head]:
    """Number and hash `records` after `head`: the events, their rows, and the new head."""
    events: list[Event] = []
    rows: list[tuple[Any, ...]] = []
    seq, prev = head.seq, head.hash
    for r in records:
        seq += 1
        payload_json = r.payload_json or canonical_json(r.payload)
        h = event_hash(prev, seq, r.ts_us, r.mono_ns, r.op, r.op_kind, r.role, r.dept, r.kind,
                       payload_json)
        rows.append((seq, r.ts_us, r.mono_ns, r.op, r.op_kind, r.role, r.dept, r.kind,
                     payload_json, prev, h))
        events.append(Event(seq, r.ts_us, r.mono_ns, r.op, r.op_kind, r.role, r.dept, r.kind,
                            r.payload, prev, h))
        prev = h
    return events, rows, Head(seq, prev)


def commit_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert chained rows in one transaction. All or nothing: on any error the transaction
    is rolled back (if SQLite has not already done so) and the error re-raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def append_batch(
    conn: sqlite3.Connection, head: Head, records: list[Record]
) -> tuple[list[Event], Head]:
    """Chain `records` after `head` and commit them in one transaction; return the events.

    All or nothing: on any error the transaction is rolled back and nothing is stored.
    """
    events, rows, new_head = chain_records(head, records)
    commit_rows(conn, rows)
    return events, new_head


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so (it does on
    SQLITE_FULL and some I/O errors). Never raises over the error that caused the rollback."""
    if conn.in_transaction:
        # the caller re-raises the original error and re-reads what was stored
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def readonly_uri(path: str | Path) -> str:
    """The SQLite URI that opens a log read-only (`mode=ro`) where its folder is writable."""
    return f"file:{_uri_path(Path(path))}?mode=ro"


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """Open a log file read-only, also on read-only media; raise LogFormatError if it is
    missing or not a log.

    SQLite's `mode=ro` needs to create the `-shm` file of a WAL log, so it fails in a folder
    nobody may write. Then: with no `-wal` file (a log closed cleanly) the file is opened
    `immutable=1`; with a `-wal` file (committed events not yet checkpointed), the log and its
    WAL are copied to a private temporary folder and read there, so no committed event is
    missed (`immutable=1` would silently ignore the WAL). The copy is removed when the
    connection is garbage-collected or the process ends.
    """
    p = Path(path)
    if not p.is_file():
        raise LogFormatError(f"{p}: no such log file")
    try:
        return _probe(sqlite3.connect(readonly_uri(p), uri=True), p)
    except _CannotOpen as exc:
        if _writable(p):
            raise LogFormatError(f"{p}: cannot open read-only ({exc.error})") from exc.error
    wal = Path(f"{p}-wal")
    try:
        if not wal.exists() or wal.stat().st_size == 0:
            return _probe(sqlite3.connect(f"file:{_uri_path(p)}?immutable=1", uri=True), p)
        tmp = tempfile.mkdtemp(prefix="commandhub-log-")
        copy = Path(tmp) / p.name
        try:
            shutil.copyfile(p, copy)
            shutil.copyfile(wal, f"{copy}-wal")
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LogFormatError(f"{p}: in a read-only folder with a WAL file, and the copy "
                                 f"to {tmp} failed: {exc}") from exc
        conn = sqlite3.connect(f"file:{_uri_path(copy)}?mode=ro", uri=True,
                               factory=_CopyConnection)
        weakref.finalize(conn, shutil.rmtree, tmp, True)
        return _probe(conn, p)
    except _CannotOpen as exc:
        raise LogFormatError(f"{p}: cannot open read-only ({exc.error})") from exc.error


class _CopyConnection(sqlite3.Connection):
    """A connection to a private copy of a log (a subclass, so it can carry a finalizer)."""


class _CannotOpen(Exception):
    def __init__(self, error: sqlite3.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _uri_path(p: Path) -> str:
    return str(p.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _writable(p: Path) -> bool:
    """Could SQLite create the log's -shm file beside it (folder writable, not a read-only mount)?"""
    folder = p.resolve().parent
    try:
        return os.access(folder, os.W_OK) and not os.statvfs(folder).f_flag & os.ST_RDONLY
    except OSError:
        return False


def _probe(conn: sqlite3.Connection, p: Path) -> sqlite3.Connection:
    """`conn` if it reads an events table; _CannotOpen if SQLite could not open the file."""
    try:
        conn.execute("SELECT seq FROM events LIMIT 1")
    except sqlite3.DatabaseError as exc:
        conn.close()
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
            raise _CannotOpen(exc) from exc
        raise LogFormatError(f"{p}: not a CommandHub event log ({exc})") from exc
    return conn


def iter_rows(
    conn: sqlite3.Connection, after: int = 0, batch: int = 10_000
) -> Iterator[tuple[Any, ...]]:
    """Raw rows in seq order, fetched in batches."""
    cur = conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq > ? ORDER BY seq", (after,))
    while rows := cur.fetchmany(batch):
        yield from rows


def verify_rows(rows: Iterable[tuple[Any, ...]], head: Head | None = None, *,
                start: Head | None = None, checkpoints: Sequence[Head] = ()) -> Head:
    """Check seq continuity, prev_hash links and every hash; return the head.

    `start`: the rows begin with event `start.seq`, a checkpoint verified earlier: its stored
    prev_hash is taken as given, its content must still hash to `start.hash`. Default: the
    rows begin at seq 1 after the genesis hash.
    `head` and `checkpoints`: the log must reach each and have its hash there (catches a cut
    tail or a rewritten history; raises HeadMismatchError). Raise ChainError naming the
    first bad seq.
    """
    wanted = {c.seq: c for c in ([head] if head is not None else []) + list(checkpoints)
              if c.seq > 0}
    first = start is not None and start.seq > 0
    prev = GENESIS_HASH
    expected_seq = start.seq if start is not None and first else 1
    for seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload, prev_hash, h in rows:
        if seq != expected_seq:
            raise ChainError(expected_seq, f"missing (next stored seq is {seq})")
        if first:
            assert start is not None
            prev, first = prev_hash, False
            if h != start.hash:
                raise HeadMismatchError(seq, f"hash differs from the checkpoint {start}", start,
                                        truncated=False)
        if prev_hash != prev:
            raise ChainError(seq, "prev_hash does not match the previous event's hash")
        if stored_hash(prev, seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload) != h:
            raise ChainError(seq, "content does not match its hash (edited or reordered)")
        cp = wanted.get(seq)
        if cp is not None and h != cp.hash:
            raise HeadMismatchError(seq, f"hash differs from the checkpoint {cp}", cp,
                                    truncated=False)
        prev = h
        expected_seq += 1
    if first:
        assert start is not None
        raise HeadMismatchError(start.seq, f"log ends before the checkpoint seq {start.seq} "
                                "(truncated)", start, truncated=True)
    last = expected_seq - 1
    beyond = [c for c in wanted.values() if c.seq > last]
    if beyond:
        cp = max(beyond, key=lambda c: c.seq)
        raise HeadMismatchError(last + 1, f"log ends at seq {last}, before the checkpoint seq "
                                f"{cp.seq} (truncated)", cp, truncated=True)
    return Head(last, prev)


def verify_file(path: str | Path, head: Head | None = None, *,
                checkpoints: Sequence[Head] = ()) -> Head:
    """Verify a log file's whole chain; return its head or raise ChainError/LogFormatError."""
    conn = open_readonly(path)
    try:
        return verify_rows(iter_rows(conn), head, checkpoints=checkpoints)
    finally:
        conn.close()


def read_events(path: str | Path, op: str | None = None) -> list[Event]:
    """All events of a log file (optionally one operation's), in seq order. Does not verify."""
    conn = open_readonly(path)
    try:
        return [Event.from_row(r) for r in iter_rows(conn) if op is None or r[3] == op]
    finally:
        conn.close()

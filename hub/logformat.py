"""The event log's on-disk format: canonical JSON, the hash chain, and a stdlib-only reader/verifier.

This module is the contract between the hub (which writes the log) and every reader
(scoring, the CLI, exports). It imports nothing but the standard library so that
scoring can read and verify a log without pulling in the hub's server or media code.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
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
        super().__init__(f"chain broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


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
    """Open (creating if needed) a writable log in WAL mode with the append-only triggers."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.executescript(SCHEMA)
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
    )
    return conn


def stored_head(conn: sqlite3.Connection) -> Head:
    """The last stored event's (seq, hash), or (0, genesis) for an empty log."""
    row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(0, GENESIS_HASH) if row is None else Head(row[0], row[1])


def append_batch(
    conn: sqlite3.Connection, head: Head, records: list[Record]
) -> tuple[list[Event], Head]:
    """Chain `records` after `head` and commit them in one transaction; return the events.

    All or nothing: on any error the transaction is rolled back and nothing is stored.
    """
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
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return events, Head(seq, prev)


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """Open a log file read-only; raise LogFormatError if it is missing or not a log."""
    p = Path(path)
    if not p.is_file():
        raise LogFormatError(f"{p}: no such log file")
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        conn.execute("SELECT seq FROM events LIMIT 1")
    except sqlite3.OperationalError:
        # a read-only folder or medium: SQLite cannot make the WAL index; read the file as is
        conn.close()
        conn = sqlite3.connect(f"file:{p}?immutable=1", uri=True)
        try:
            conn.execute("SELECT seq FROM events LIMIT 1")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LogFormatError(f"{p}: not a CommandHub event log ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LogFormatError(f"{p}: not a CommandHub event log ({exc})") from exc
    return conn


def iter_rows(
    conn: sqlite3.Connection, after: int = 0, batch: int = 10_000
) -> Iterator[tuple[Any, ...]]:
    """Raw rows in seq order, fetched in batches."""
    cur = conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq > ? ORDER BY seq", (after,))
    while rows := cur.fetchmany(batch):
        yield from rows


def verify_rows(rows: Iterator[tuple[Any, ...]], head: Head | None = None) -> Head:
    """Check seq continuity, prev_hash links and every hash; return the head.

    With `head`, also check that the log still extends that checkpoint (catches a
    truncated tail). Raise ChainError naming the first bad seq.
    """
    prev = GENESIS_HASH
    expected_seq = 1
    head_seen = head is None
    for seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload, prev_hash, h in rows:
        if seq != expected_seq:
            raise ChainError(expected_seq, f"missing (next stored seq is {seq})")
        if prev_hash != prev:
            raise ChainError(seq, "prev_hash does not match the previous event's hash")
        want = event_hash(prev, seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload)
        if want != h:
            raise ChainError(seq, "content does not match its hash (edited or reordered)")
        if head is not None and seq == head.seq:
            if h != head.hash:
                raise ChainError(seq, "hash differs from the given head checkpoint")
            head_seen = True
        prev = h
        expected_seq += 1
    if not head_seen and head is not None:
        raise ChainError(expected_seq, f"log ends before the given head seq {head.seq} (truncated)")
    return Head(expected_seq - 1, prev)


def verify_file(path: str | Path, head: Head | None = None) -> Head:
    """Verify a log file's whole chain; return its head or raise ChainError/LogFormatError."""
    conn = open_readonly(path)
    try:
        return verify_rows(iter_rows(conn), head)
    finally:
        conn.close()


def read_events(path: str | Path, op: str | None = None) -> list[Event]:
    """All events of a log file (optionally one operation's), in seq order. Does not verify."""
    conn = open_readonly(path)
    try:
        return [Event.from_row(r) for r in iter_rows(conn) if op is None or r[3] == op]
    finally:
        conn.close()

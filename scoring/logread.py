"""Read and verify a log file fast: the chain checked in parallel chunks, the columns pulled by SQL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import sqlite3
import threading
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import numpy as np

from hub.logformat import (
    COLUMNS,
    GENESIS_HASH,
    ChainError,
    Head,
    LogFormatError,
    open_readonly,
    readonly_uri,
    stored_hash,
)
from scoring import chaincheck
from scoring.drilllog import (
    CARRY_IN_KINDS,
    PARSED_KINDS,
    RESPONSE_KINDS,
    DrillLog,
    OperationStart,
    Parsed,
    Responses,
    choice_note,
    choose_operation,
    make_operation,
)
from scoring.notes import Note

__all__ = [
    "ChainError",
    "LogFormatError",
    "Verifier",
    "extract",
    "list_operations",
    "load",
    "open_readonly",
    "verify_log",
]

Progress = Callable[[str, float], None]

# Below this many events the chain is checked in this process; above, in worker processes.
PARALLEL_MIN_EVENTS = 200_000


def _parts(dept: str | None, kind: str, op: str, opk: str, role: str) -> tuple[str, str, str]:
    """The constant pieces of an event's canonical JSON (columns that repeat across events)."""
    enc = encode_basestring
    return (
        '{"dept":' + ("null" if dept is None else enc(dept)) + ',"kind":' + enc(kind) + ',"mono_ns":',
        ',"op":' + enc(op) + ',"op_kind":' + enc(opk) + ',"payload":',
        ',"role":' + enc(role) + ',"seq":',
    )


def _body(parts: tuple[str, str, str], mono: int, payload: str, prev: str, seq: int, ts: int) -> str:
    """The canonical JSON that hub.logformat.event_hash hashes, built without a dict.

    `prev` is a hex hash (no escaping needed) and the numbers are ints; anything else makes
    the hash differ and the caller falls back to the reference.
    """
    a, b, c = parts
    return f'{a}{mono}{b}{encode_basestring(payload)},"prev":"{prev}"{c}{seq},"ts_us":{ts}}}'


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of the chain looked like: where it starts and ends, or its first error."""

    lo: int
    first_prev: str | None
    last_hash: str | None
    count: int
    error: tuple[int, str] | None
    responses: Responses | None = None


RESPONSE_CODES = {k: i for i, k in enumerate(RESPONSE_KINDS)}


def command_id_of(payload: str) -> str:
    """`str(json.loads(payload).get("command_id"))`, without parsing the simple canonical case."""
    i = payload.find('"command_id":"')
    if i >= 0 and payload.count("{") == 1:
        j = i + 14
        k = payload.find('"', j)
        if k >= 0 and "\\" not in payload[j:k]:
            return payload[j:k]
    value = json.loads(payload)
    return str(value.get("command_id") if isinstance(value, dict) else None)


class _Collector:
    """Response columns of one operation gathered while the chain is verified."""

    def __init__(self, op: str | None, last_seq: int) -> None:
        self.op, self.last_seq = op, last_seq
        self.kind = array("b")
        self.seq = array("q")
        self.ts = array("q")
        self.cmd: list[str] = []
        self.dept: list[str] = []

    def result(self) -> Responses | None:
        if self.op is None:
            return None
        return Responses(
            np.frombuffer(self.kind, np.int8).copy(),
            np.frombuffer(self.seq, np.int64).copy(),
            np.frombuffer(self.ts, np.int64).copy(),
            self.cmd,
            self.dept,
        )


def verify_chunk(path: str, lo: int, hi: int, op: str | None = None, last_seq: int = 0) -> ChunkResult:
    """Check seqs lo..hi: continuity, links inside the chunk and every hash.

    With `op`, also collect that operation's responses (seq <= last_seq) as columns, so a big
    log is read once.
    """
    got = _Collector(op, last_seq)
    codes = RESPONSE_CODES
    conn = open_readonly(path)
    try:
        cur = conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq", (lo, hi))
        expected = lo
        prev: str | None = None
        first_prev: str | None = None
        sha = hashlib.sha256
        # the columns that repeat (dept, kind, op, op_kind, role) are encoded once per combination
        memo: dict[tuple[Any, ...], tuple[str, str, str]] = {}
        while rows := cur.fetchmany(20_000):
            for seq, ts, mono, row_op, opk, role, dept, kind, payload, ph, h in rows:
                if seq != expected:
                    return ChunkResult(
                        lo, first_prev, prev, expected - lo, (expected, f"missing (next stored seq is {seq})")
                    )
                if prev is None:
                    first_prev = ph
                elif ph != prev:
                    return ChunkResult(
                        lo,
                        first_prev,
                        prev,
                        expected - lo,
                        (seq, "prev_hash does not match the previous event's hash"),
                    )
                try:
                    key = (dept, kind, row_op, opk, role)
                    parts = memo.get(key)
                    if parts is None:
                        parts = memo[key] = _parts(dept, kind, row_op, opk, role)
                    body = _body(parts, mono, payload, ph, seq, ts)
                    ok = sha(body.encode()).hexdigest() == h
                except (TypeError, ValueError):
                    ok = False
                if not ok and (stored_hash(ph, seq, ts, mono, row_op, opk, role, dept, kind, payload) != h):
                    return ChunkResult(
                        lo,
                        first_prev,
                        prev,
                        expected - lo,
                        (seq, "content does not match its hash (edited or reordered)"),
                    )
                prev = h
                expected += 1
                if op is not None and seq <= last_seq and row_op == op:
                    code = codes.get(kind)
                    if code is not None:
                        got.kind.append(code)
                        got.seq.append(seq)
                        got.ts.append(ts)
                        got.cmd.append(command_id_of(payload))
                        got.dept.append("None" if dept is None else str(dept))
        if expected <= hi:
            why = _missing_after(conn, hi)
            return ChunkResult(lo, first_prev, prev, expected - lo, (expected, why))
        return ChunkResult(lo, first_prev, prev, expected - lo, None, got.result())
    finally:
        conn.close()


def _missing_after(conn: sqlite3.Connection, hi: int) -> str:
    """The reason for a chunk that ends before `hi`: where the log goes on, if it does."""
    nxt = conn.execute("SELECT min(seq) FROM events WHERE seq > ?", (hi,)).fetchone()[0]
    return f"missing (next stored seq is {nxt})" if nxt is not None else "missing"


def _responses_part(path: str, g: Responses) -> Responses:
    """C's gathered responses as Responses; the command ids C left are read here."""
    need = np.flatnonzero(g.kind & chaincheck.NEED_CID)
    if len(need):
        conn = open_readonly(path)
        try:
            for i in need.tolist():
                row = conn.execute("SELECT payload FROM events WHERE seq = ?", (int(g.seq[i]),)).fetchone()
                g.command_id[i] = command_id_of(row[0])
        finally:
            conn.close()
    return Responses(g.kind & ~np.int8(chaincheck.NEED_CID), g.seq, g.ts_us, g.command_id, g.dept)


def _joined(parts: list[Responses]) -> Responses:
    return Responses(
        np.concatenate([p.kind for p in parts] or [np.zeros(0, np.int8)]),
        np.concatenate([p.seq for p in parts] or [np.zeros(0, np.int64)]),
        np.concatenate([p.ts_us for p in parts] or [np.zeros(0, np.int64)]),
        [c for p in parts for c in p.command_id],
        [d for p in parts for d in p.dept],
    )


def verify_chunk_native(
    path: str, lo: int, hi: int, op: str | None = None, last_seq: int = 0
) -> ChunkResult | None:
    """verify_chunk's verdict (and responses) on seqs lo..hi from the C checker, or None when it
    cannot run here. A row C cannot pass is judged by verify_chunk itself."""
    uri = readonly_uri(path)
    first_prev: str | None = None
    prev: str | None = None  # the hash of the last verified row
    count, start = 0, lo
    parts: list[Responses] = []

    def stop(error: tuple[int, str] | None) -> ChunkResult:
        return ChunkResult(lo, first_prev, prev, count, error, _joined(parts) if op is not None else None)

    while start <= hi:
        got = chaincheck.check(uri, start, hi, prev, op, last_seq, RESPONSE_KINDS)
        if got is None or got.status == chaincheck.CC_SQLITE:
            return None
        if start == lo:
            first_prev = got.first_prev
        count += got.count
        prev = got.last_hash or prev
        if got.gathered is not None:
            parts.append(_responses_part(path, got.gathered))
        if got.status == chaincheck.CC_OK:
            break
        if got.status == chaincheck.CC_MISSING:
            if got.found >= 0:
                why = f"missing (next stored seq is {got.found})"
            else:
                with contextlib.closing(open_readonly(path)) as conn:
                    why = _missing_after(conn, hi)
            return stop((got.seq, why))
        if got.status == chaincheck.CC_LINK:
            return stop((got.seq, "prev_hash does not match the previous event's hash"))
        one = verify_chunk(path, got.seq, got.seq, op, last_seq)  # CC_SUSPECT: the reference judges it
        if got.seq == lo:
            first_prev = one.first_prev
        elif one.first_prev != prev:
            return stop((got.seq, "prev_hash does not match the previous event's hash"))
        if one.error is not None:
            return stop(one.error)
        if one.responses is not None:
            parts.append(one.responses)
        prev, count, start = one.last_hash, count + 1, got.seq + 1
    return stop(None)


def _combine(chunks: list[ChunkResult]) -> Head:
    """Join chunk results in seq order with the same verdicts as hub.logformat.verify_rows."""
    prev = GENESIS_HASH
    last_seq = 0
    for c in chunks:
        if c.count and c.first_prev != prev:
            raise ChainError(c.lo, "prev_hash does not match the previous event's hash")
        if c.error is not None:
            raise ChainError(*c.error)
        if c.count:
            prev = c.last_hash or prev
            last_seq = c.lo + c.count - 1
    return Head(last_seq, prev)


def _check_head(path: str, head: Head) -> None:
    if head.seq == 0:
        return
    conn = open_readonly(path)
    try:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", (head.seq,)).fetchone()
    finally:
        conn.close()
    if row is not None and row[0] != head.hash:
        raise ChainError(head.seq, "hash differs from the given head checkpoint")


def _chunks(max_seq: int, n: int) -> list[tuple[int, int]]:
    if max_seq <= 0:
        return []
    step = -(-max_seq // n)
    return [(lo, min(lo + step - 1, max_seq)) for lo in range(1, max_seq + 1, step)]


def _max_seq(path: str) -> int:
    conn = open_readonly(path)
    try:
        value = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    finally:
        conn.close()
    return int(value or 0)


def _read_range(path: str, lo: int, hi: int) -> None:
    """Read bytes lo..hi of a file and drop them: the kernel keeps them in its page cache."""
    buf = bytearray(1 << 20)
    try:
        with open(path, "rb", buffering=0) as f:
            f.seek(lo)
            left = hi - lo
            while left > 0 and (got := f.readinto(buf)):
                left -= got
    except OSError:
        pass  # only a hint: the verifier reads (and reports on) the file itself


def _cached(path: str, size: int, samples: int = 64) -> bool:
    """Are `samples` pages spread over the file all in the page cache already? (RWF_NOWAIT
    reads only what is cached.)"""
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None:
        return False
    buf = bytearray(1)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        for i in range(samples):
            try:
                if os.preadv(fd, [buf], size * i // samples, flag) != 1:
                    return False
            except BlockingIOError:
                return False
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


# Logs smaller than this are read as SQLite asks for them.
PREFETCH_MIN_BYTES = 32 << 20


def prefetch(path: str, parts: int) -> list[threading.Thread]:
    """Read a big log into the page cache in `parts` sequential streams, in background threads.

    SQLite reads a log page by page, 4 kB at a time; on a cold cache that cost this machine
    1.1-1.5 s for a 350 MB log, against 0.5 s for a sequential read. Skipped for a small log,
    one already cached, and one larger than half the free memory (its pages would be evicted
    before use). Returns the started threads.
    """
    try:
        size = os.path.getsize(path)
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return []
    if size < PREFETCH_MIN_BYTES or size > free // 2 or _cached(path, size):
        return []
    step = -(-size // max(parts, 1))
    threads = [
        threading.Thread(target=_read_range, args=(path, lo, min(lo + step, size)), daemon=True)
        for lo in range(0, size, step)
    ]
    for t in threads:
        t.start()
    return threads


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Verifier:
    """Verify a log's chain, in worker processes for big logs, while the caller does other work."""

    def __init__(
        self,
        path: str | Path,
        workers: int | None = None,
        heads: Sequence[Head] = (),
        op: str | None = None,
        last_seq: int = 0,
    ) -> None:
        self.path = str(path)
        self.heads = tuple(heads)
        self.op, self.last_seq = op, last_seq
        self._responses: Responses | None = None
        self.max_seq = _max_seq(self.path)
        n = default_workers() if workers is None else max(1, workers)
        if self.max_seq < PARALLEL_MIN_EVENTS:
            n = 1
        self.ranges = _chunks(self.max_seq, n)
        # C checks the chain in threads (it releases the GIL); else worker processes, for a big log
        self.native = chaincheck.library() is not None
        self._pool: Executor | None = None
        self._futures: list[Future[ChunkResult]] = []
        if self.native:
            self._pool = ThreadPoolExecutor(n)
            self._futures = [self._pool.submit(self._native_chunk, lo, hi) for lo, hi in self.ranges]
        elif n > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(method))
            self._futures = [
                self._pool.submit(verify_chunk, self.path, lo, hi, op, last_seq) for lo, hi in self.ranges
            ]

    def _native_chunk(self, lo: int, hi: int) -> ChunkResult:
        got = verify_chunk_native(self.path, lo, hi, self.op, self.last_seq)
        return verify_chunk(self.path, lo, hi, self.op, self.last_seq) if got is None else got

    def responses(self) -> Responses:
        """The operation's responses collected while verifying (after result())."""
        if self._responses is None:
            raise RuntimeError("responses are collected only for an operation, after result()")
        return self._responses

    def close(self) -> None:
        """Stop the workers (used when the caller gives up before the verdict)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def result(self) -> Head:
        """Wait for the verdict: the head, or ChainError naming the first bad seq."""
        try:
            if self._pool is not None:
                chunks = [f.result() for f in self._futures]
            else:
                chunks = [verify_chunk(self.path, lo, hi, self.op, self.last_seq) for lo, hi in self.ranges]
        finally:
            self.close()
        got = _combine(chunks)
        if self.op is not None:
            self._responses = _joined([c.responses for c in chunks if c.responses is not None])
        for head in self.heads:
            if head.seq > got.seq:
                raise ChainError(got.seq + 1, f"log ends before the given head seq {head.seq} (truncated)")
            _check_head(self.path, head)
        return got


def verify_log(path: str | Path, workers: int | None = None, heads: Sequence[Head] = ()) -> Head:
    """Verify a log file's whole chain (same verdicts as hub.logformat.verify_file), and that
    it extends each of `heads`."""
    return Verifier(path, workers, heads).result()


# operation.started rows through the (op, kind) index: far faster than a scan on kind alone
STARTS_SQL = (
    "SELECT seq, ts_us, op, payload FROM events WHERE op IN (SELECT DISTINCT op FROM events) "
    "AND kind = 'operation.started' ORDER BY seq"
)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ",".join("'" + v + "'" for v in values) + ")"


def _parsed(rows: list[tuple[Any, ...]]) -> list[Parsed]:
    return [
        Parsed(seq, ts, role, dept, kind, json.loads(payload)) for seq, ts, role, dept, kind, payload in rows
    ]


@dataclass(frozen=True)
class _Located:
    start: OperationStart
    note: Note | None
    last_seq: int
    end_us: int
    ended: bool
    end_hash: str = ""


def _starts(conn: sqlite3.Connection) -> list[OperationStart]:
    return [
        OperationStart(seq, ts, o, json.loads(payload)) for seq, ts, o, payload in conn.execute(STARTS_SQL)
    ]


def _locate(conn: sqlite3.Connection, op: str | None, starts: list[OperationStart] | None = None) -> _Located:
    """Which operation, and where it ends (its operation.ended, else its last event)."""
    starts = _starts(conn) if starts is None else starts
    start = choose_operation(starts, op)
    ended_row = conn.execute(
        "SELECT seq, ts_us FROM events WHERE op = ? AND kind = 'operation.ended' ORDER BY seq LIMIT 1",
        (start.op,),
    ).fetchone()
    if ended_row is not None:
        last_seq, end_us = ended_row
    else:
        last_seq, end_us = conn.execute(
            "SELECT max(seq), max(ts_us) FROM events WHERE op = ?", (start.op,)
        ).fetchone()
    end_hash = conn.execute("SELECT hash FROM events WHERE seq = ?", (last_seq,)).fetchone()[0]
    return _Located(
        start,
        choice_note(starts, start, op),
        int(last_seq),
        int(end_us),
        ended_row is not None,
        str(end_hash),
    )


def _parsed_part(conn: sqlite3.Connection, at: _Located) -> tuple[list[Parsed], list[Parsed]]:
    parsed = _parsed(
        conn.execute(
            f"SELECT seq, ts_us, role, dept, kind, payload FROM events "
            f"WHERE op = ? AND kind IN {_in(PARSED_KINDS)} AND seq <= ? ORDER BY seq",
            (at.start.op, at.last_seq),
        ).fetchall()
    )
    # the state the operation starts in: from the hub's last start before it (a restart ends
    # every connection and feed), so a year of drills in one log is not read again per drill
    since = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM events WHERE op = 'system' AND kind = 'hub.started' AND seq < ?",
        (at.start.seq,),
    ).fetchone()[0]
    carry = _parsed(
        conn.execute(
            f"SELECT seq, ts_us, role, dept, kind, payload FROM events "
            f"WHERE seq >= ? AND seq < ? AND op != ? AND kind IN {_in(CARRY_IN_KINDS)} ORDER BY seq",
            (since, at.start.seq, at.start.op),
        ).fetchall()
    )
    return parsed, carry


def _drill_log(
    at: _Located,
    parsed: list[Parsed],
    carry: list[Parsed],
    responses: Responses,
    extra: tuple[Note, ...] = (),
) -> DrillLog:
    return DrillLog(
        make_operation(at.start, at.end_us, at.ended, at.last_seq, at.end_hash),
        parsed,
        carry,
        responses,
        ((at.note,) if at.note else ()) + extra,
    )


def extract(conn: sqlite3.Connection, op: str | None, starts: list[OperationStart] | None = None) -> DrillLog:
    """Pull one operation's events out of an open log by SQL (no verification); `starts`: the
    log's operation.started events, when the caller has them already."""
    at = _locate(conn, op, starts)
    parsed, carry = _parsed_part(conn, at)
    case = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(RESPONSE_KINDS))
    rows = conn.execute(
        f"SELECT CASE kind {case} END, seq, ts_us, "
        f"coalesce(CAST(json_extract(payload, '$.command_id') AS TEXT), 'None'), "
        f"coalesce(dept, 'None') "
        f"FROM events NOT INDEXED WHERE seq >= ? AND seq <= ? AND op = ? AND kind IN {_in(RESPONSE_KINDS)} "
        f"ORDER BY seq",
        (at.start.seq, at.last_seq, at.start.op),
    ).fetchall()
    if rows:
        kinds, seqs, tss, cids, depts = zip(*rows, strict=True)
        responses = Responses(
            np.asarray(kinds, np.int8),
            np.asarray(seqs, np.int64),
            np.asarray(tss, np.int64),
            list(cids),
            list(depts),
        )
    else:
        responses = Responses.empty()
    return _drill_log(at, parsed, carry, responses)


def list_operations(path: str | Path) -> list[OperationStart]:
    conn = open_readonly(path)
    try:
        return _starts(conn)
    finally:
        conn.close()


def load(
    path: str | Path, op: str | None = None, workers: int | None = None, heads: Sequence[Head] = ()
) -> tuple[DrillLog, Head]:
    """Verify the chain and extract one operation; raise ChainError if the chain is broken.

    The log is read once for both: worker processes check the chain and collect the
    operation's responses while this process reads the few parsed kinds. Nothing is returned
    unless the whole chain verifies.
    """
    prefetch(str(path), default_workers() if workers is None else workers)
    conn = open_readonly(path)
    try:
        at = _locate(conn, op)
    finally:
        conn.close()
    verifier = Verifier(path, workers, heads, at.start.op, at.last_seq)
    try:
        conn = open_readonly(path)
        try:
            parsed, carry = _parsed_part(conn, at)
        finally:
            conn.close()
    except BaseException:
        verifier.close()
        raise
    verified = verifier.result()
    return _drill_log(at, parsed, carry, verifier.responses()), verified

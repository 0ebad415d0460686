"""The C chain checker (scoring/chaincheck.c): the same verdicts and responses as the Python
reference on real SQLite logs, including text the canonical JSON must escape and rows C must
leave to the reference."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scoring.logread as logread
from hub.logformat import (
    GENESIS_HASH,
    ChainError,
    Head,
    Record,
    append_batch,
    create,
    event_hash,
    verify_file,
)
from scoring import chaincheck
from scoring.drilllog import RESPONSE_KINDS

pytestmark = pytest.mark.skipif(
    chaincheck.library() is None, reason=f"no C chain checker here: {chaincheck.unavailable_reason()}"
)

# any code point but lone surrogates (they cannot be stored as UTF-8); control characters,
# quotes, backslashes, NUL and astral characters are all in
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
kinds = st.sampled_from([*RESPONSE_KINDS, "link.stats", "command.issued", 'odd"kind\\', "é\x01"])


Row = tuple[str, str | None, str, str, int, int]  # op, dept, kind, command id, ts_us, mono_ns


def _write(path: Path, rows: list[Row]) -> Path:
    conn = create(path)
    records = [
        Record(ts, mono, op, "drill", "department", dept, kind, {"command_id": cid, "note": cid[::-1]})
        for op, dept, kind, cid, ts, mono in rows
    ]
    append_batch(conn, Head(0, GENESIS_HASH), records)
    conn.close()
    return path


def _python(path: Path, op: str | None, last_seq: int, hi: int) -> logread.ChunkResult:
    return logread.verify_chunk(str(path), 1, hi, op, last_seq)


def _same(a: logread.ChunkResult, b: logread.ChunkResult) -> None:
    def verdict(c: logread.ChunkResult) -> tuple[object, ...]:
        return (c.lo, c.first_prev, c.last_hash, c.count, c.error)

    assert verdict(a) == verdict(b)
    assert (a.responses is None) == (b.responses is None)
    if a.responses is not None and b.responses is not None:
        for col in ("kind", "seq", "ts_us"):
            assert np.array_equal(getattr(a.responses, col), getattr(b.responses, col)), col
        assert a.responses.command_id == b.responses.command_id
        assert a.responses.dept == b.responses.dept


row = st.tuples(
    st.sampled_from(["op-1", "op-2", "运行"]),
    st.one_of(st.none(), text),
    kinds,
    text,
    st.integers(-(2**62), 2**62),
    st.integers(0, 2**63 - 1),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=40), st.integers(0, 45))
def test_c_and_python_agree_on_any_text(
    tmp_path_factory: pytest.TempPathFactory, rows: list[Row], last: int
) -> None:
    path = _write(tmp_path_factory.mktemp("c") / "events.db", rows)
    native = logread.verify_chunk_native(str(path), 1, len(rows), "op-1", last)
    assert native is not None and native.error is None and native.count == len(rows)
    _same(native, _python(path, "op-1", last, len(rows)))
    assert Head(native.count, native.last_hash or "") == verify_file(path)
    # the C pass itself judged every row: nothing here needs the reference
    got = chaincheck.check(logread.readonly_uri(path), 1, len(rows), None)
    assert got is not None and got.status == chaincheck.CC_OK and got.count == len(rows)


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    kinds = RESPONSE_KINDS
    rows = [("op-1", f"d{i % 3}", kinds[i % len(kinds)], f"C{i}", 1000 + i, 5 + i) for i in range(30)]
    return _write(tmp_path / "events.db", rows)


def _raw(path: Path, sql: str, args: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def _rehash(path: Path, seq: int) -> None:
    """Re-hash the chain from row `seq` on, over the columns as Python reads them."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    prev = conn.execute("SELECT prev_hash FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    cols = "seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload"
    for r in conn.execute(f"SELECT {cols} FROM events WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
        h = event_hash(prev, *r)
        conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, r[0]))
        prev = h
    conn.commit()
    conn.close()


def _verdict(path: Path, native: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    monkeypatch.setenv("COMMANDHUB_NATIVE", "1" if native else "0")
    monkeypatch.setattr(logread, "PARALLEL_MIN_EVENTS", 0)  # two chunks: the stop falls in either
    try:
        v = logread.Verifier(path, 2, (), "op-1", 10**9)
        assert v.native is native
        head = v.result()
        r = v.responses()
        return ("ok", head, r.kind.tolist(), r.seq.tolist(), r.command_id, r.dept)
    except ChainError as exc:
        return ("chain", exc.seq, exc.reason)
    except sqlite3.Error as exc:
        return ("sqlite", type(exc).__name__)


ODD = {
    # numbers stored as text: C leaves the row to the reference, which hashes what Python reads
    "mono_ns as text, re-hashed": ("UPDATE events SET mono_ns = '12a' WHERE seq = 7", 7),
    "mono_ns as text, not re-hashed": ("UPDATE events SET mono_ns = '12a' WHERE seq = 7", None),
    "dept null, re-hashed": ("UPDATE events SET dept = NULL WHERE seq = 20", 20),
    "a control character in the payload, re-hashed": (
        "UPDATE events SET payload = replace(payload, 'C3', 'C\x013') WHERE seq = 4", 4),
    "upper-case hash": ("UPDATE events SET hash = upper(hash) WHERE seq = 12", None),
    "text that is not UTF-8": ("UPDATE events SET payload = CAST(x'7bff7d' AS TEXT) WHERE seq = 9", None),
    "a payload edited": ("UPDATE events SET payload = replace(payload, 'C5', 'C6') WHERE seq = 6", None),
    "a hole": ("DELETE FROM events WHERE seq = 15", None),
    "the tail cut": ("DELETE FROM events WHERE seq > 25", None),
    "relinked": ("UPDATE events SET prev_hash = '" + "1" * 64 + "' WHERE seq = 18", None),
    "prev_hash not text": ("UPDATE events SET prev_hash = 5 WHERE seq = 18", None),
    "hash a blob": ("UPDATE events SET hash = CAST(hash AS BLOB) WHERE seq = 22", None),
    "dept a blob": ("UPDATE events SET dept = x'6431' WHERE seq = 23", None),
}


@pytest.mark.parametrize("how", list(ODD))
def test_odd_and_tampered_rows_get_the_reference_verdict(
    log: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql, rehash = ODD[how]
    _raw(log, sql)
    if rehash is not None:
        _rehash(log, rehash)
    c = _verdict(log, True, monkeypatch)
    py = _verdict(log, False, monkeypatch)
    assert c == py
    if rehash is not None:
        assert c[0] == "ok"
    elif how == "the tail cut":
        assert c[0] == "ok" and c[1] == Head(25, c[1].hash)  # type: ignore[union-attr]
    else:
        assert c[0] in ("chain", "sqlite"), c


def test_a_log_c_cannot_open_is_left_to_python(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    assert logread.verify_chunk_native(str(missing), 1, 10) is None


def test_the_library_is_built_once_per_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = chaincheck.build()
    assert first.parent == tmp_path / "commandhub" and first.is_file()
    mtime = first.stat().st_mtime_ns
    assert chaincheck.build() == first and first.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("column", ["dept", "payload", "hash"])
def test_a_blob_is_a_broken_chain_not_a_crash(log: Path, column: str) -> None:
    _raw(log, f"UPDATE events SET {column} = CAST({column} AS BLOB) WHERE seq = 11")
    with pytest.raises(ChainError) as got:
        verify_file(log)  # the hub's reference verifier (`commandhub log verify`)
    assert got.value.seq == 11
    with pytest.raises(ChainError) as fast:
        logread.verify_log(log)
    assert fast.value.seq == 11

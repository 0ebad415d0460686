"""The log reader: same hashes and verdicts as hub.logformat, refuses broken chains; engine purity."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scoring.logread as logread
from hub.logformat import ChainError, event_hash, read_events, verify_file
from scoring import chaincheck
from scoring.drilllog import from_events
from scoring.engine import score_events, score_log
from scoring.rubric import bundled, load_rubric
from scoring.synth import random_drill

ROOT = Path(__file__).resolve().parents[2]

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    text,
    text,
    text,
    text,
    st.one_of(st.none(), text),
    text,
    st.integers(0, 2**62),
    st.integers(0, 2**62),
    st.integers(1, 2**40),
)
def test_fast_hash_equals_reference(
    op: str, opk: str, role: str, kind: str, dept: str | None, payload_text: str, ts: int, mono: int, seq: int
) -> None:
    payload = json.dumps({"t": payload_text, "n": [1, 2.5, None]}, ensure_ascii=False)
    prev = "ab" * 32
    body = logread._body(logread._parts(dept, kind, op, opk, role), mono, payload, prev, seq, ts)
    # the verifier's fast canonical JSON hashes exactly as the reference does
    assert hashlib.sha256(body.encode("utf-8")).hexdigest() == event_hash(
        prev, seq, ts, mono, op, opk, role, dept, kind, payload
    )


@pytest.fixture(params=["c", "python"])
def checker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which chain checker the Verifier uses: scoring/chaincheck.c, or worker processes in Python."""
    if request.param == "c" and chaincheck.library() is None:
        pytest.skip(f"no C chain checker here: {chaincheck.unavailable_reason()}")
    monkeypatch.setenv("COMMANDHUB_NATIVE", "1" if request.param == "c" else "0")
    return str(request.param)


@pytest.fixture(scope="module")
def drill_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_drill(60, seed=5).write(tmp_path_factory.mktemp("log") / "events.db")


def tampered(src: Path, dst: Path, sql: str) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(str(src) + suffix).exists():
            Path(str(dst) + suffix).write_bytes(Path(str(src) + suffix).read_bytes())
    conn = sqlite3.connect(dst)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()
    return dst


TAMPER = {
    "edited payload": "UPDATE events SET payload = replace(payload, 'C1\"', 'C9\"') "
    "WHERE seq = (SELECT min(seq) FROM events WHERE kind = 'command.acknowledged')",
    "deleted event": "DELETE FROM events WHERE seq = 40",
    "deleted tail": "DELETE FROM events WHERE seq > 300",
    "relinked": "UPDATE events SET prev_hash = '" + "0" * 64 + "' WHERE seq = 77",
    "edited time": "UPDATE events SET ts_us = ts_us + 1 WHERE seq = 500",
}


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("how", list(TAMPER))
def test_same_verdict_as_hub_verifier(
    drill_db: Path, tmp_path: Path, how: str, workers: int, checker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logread, "PARALLEL_MIN_EVENTS", 0)  # force the worker path
    bad = tampered(drill_db, tmp_path / "bad.db", TAMPER[how])
    try:
        verify_file(bad)
        want: tuple[int, str] | None = None
    except ChainError as exc:
        want = (exc.seq, exc.reason)
    try:
        head = logread.verify_log(bad, workers=workers)
        got: tuple[int, str] | None = None
    except ChainError as exc:
        got = (exc.seq, exc.reason)
    if how == "deleted tail":  # a shorter log still verifies on its own
        assert want is None and got is None and head.seq == 300
    else:
        assert want is not None
        assert got == want


def test_clean_log_verifies_the_same_in_parallel(
    drill_db: Path, checker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logread, "PARALLEL_MIN_EVENTS", 0)
    assert logread.verify_log(drill_db, workers=3) == verify_file(drill_db)
    assert logread.verify_log(drill_db, workers=1) == verify_file(drill_db)


def test_scoring_refuses_a_broken_chain(drill_db: Path, tmp_path: Path) -> None:
    rubric = load_rubric(bundled())
    bad = tampered(drill_db, tmp_path / "bad.db", TAMPER["edited payload"])
    with pytest.raises(ChainError):
        score_log(str(bad), rubric)
    with pytest.raises(ChainError):
        score_events(read_events(bad), rubric)


def test_sql_extraction_equals_python_path(drill_db: Path) -> None:
    conn = logread.open_readonly(drill_db)
    try:
        fast = logread.extract(conn, None)
    finally:
        conn.close()
    pure = from_events(read_events(drill_db))
    assert fast.operation == pure.operation
    assert fast.parsed == pure.parsed
    assert fast.carry_in == pure.carry_in
    assert fast.responses.command_id == pure.responses.command_id
    assert fast.responses.dept == pure.responses.dept
    assert (fast.responses.seq == pure.responses.seq).all()
    assert (fast.responses.ts_us == pure.responses.ts_us).all()
    assert (fast.responses.kind == pure.responses.kind).all()


def test_engine_is_pure() -> None:
    code = (
        "import sys, json\n"
        "import scoring.engine, scoring.rubric, scoring.logread, scoring.metrics\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    mods = set(json.loads(out.stdout))
    for banned in ("aiortc", "aiohttp", "av", "cv2", "reportlab"):
        assert banned not in mods
        assert not any(m.startswith(banned + ".") for m in mods)
    hub_mods = {m for m in mods if m == "hub" or m.startswith("hub.")}
    assert hub_mods <= {"hub", "hub.logformat", "hub.yamlsrc"}
    assert "hub.logformat" in hub_mods


@pytest.mark.parametrize("workers", [1, 3])
def test_verified_load_equals_python_path(
    drill_db: Path, workers: int, checker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logread, "PARALLEL_MIN_EVENTS", 0)
    fast, head = logread.load(drill_db, None, workers)
    pure = from_events(read_events(drill_db))
    assert head == verify_file(drill_db)
    assert fast.operation == pure.operation
    assert fast.parsed == pure.parsed and fast.carry_in == pure.carry_in
    assert fast.responses.command_id == pure.responses.command_id
    assert fast.responses.dept == pure.responses.dept
    assert (fast.responses.seq == pure.responses.seq).all()
    assert (fast.responses.ts_us == pure.responses.ts_us).all()
    assert (fast.responses.kind == pure.responses.kind).all()


def test_prefetch_reads_a_big_log_into_the_page_cache_and_changes_no_verdict(
    drill_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = drill_db.stat().st_size
    assert logread.prefetch(str(drill_db), 2) == []  # a small log is left to SQLite
    monkeypatch.setattr(logread, "PREFETCH_MIN_BYTES", 0)
    monkeypatch.setattr(logread, "_cached", lambda path, size: False)  # as if cold
    threads = logread.prefetch(str(drill_db), 3)
    assert len(threads) == 3
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    monkeypatch.undo()
    # every sampled page is now in the page cache (RWF_NOWAIT reads only cached pages)
    assert logread._cached(str(drill_db), size)
    monkeypatch.setattr(logread, "PREFETCH_MIN_BYTES", 0)
    assert logread.prefetch(str(drill_db), 2) == []  # cached already: nothing to read
    monkeypatch.setattr(logread, "PARALLEL_MIN_EVENTS", 0)
    _, head = logread.load(drill_db, None, 2)
    assert head == verify_file(drill_db)


def test_prefetch_of_a_vanished_file_is_only_a_skipped_hint(tmp_path: Path) -> None:
    assert logread.prefetch(str(tmp_path / "gone.db"), 2) == []
    logread._read_range(str(tmp_path / "gone.db"), 0, 100)  # no error: the verifier reports


@pytest.mark.parametrize(
    "payload",
    [
        {"command_id": "C1", "dept": "x"},
        {"command_id": 'C"1\\', "dept": "x"},
        {"command_id": 7},
        {"a": {"command_id": "inner"}, "command_id": "outer"},
        {"dept": "x"},
        {"command_id": "指令一"},
    ],
)
def test_command_id_of_matches_json(payload: dict) -> None:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert logread.command_id_of(text) == str(payload.get("command_id"))

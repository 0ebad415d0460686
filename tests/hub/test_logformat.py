"""Hash chain: every kind of tampering is found at the right seq, by the library and the CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.logformat import (
    ChainError,
    Head,
    Record,
    append_batch,
    create,
    read_events,
    stored_head,
    verify_file,
)


def make_log(path: Path, n: int = 20) -> Head:
    conn = create(path)
    recs = [Record(1_800_000_000_000_000 + i * 1000, i * 10**6, "drill-x", "drill", "department",
                   "fire", "command.acknowledged", {"command_id": f"C{i}", "dept": "fire",
                                                   "note": "签收"}) for i in range(n)]
    _, head = append_batch(conn, stored_head(conn), recs[: n // 2])
    _, head = append_batch(conn, head, recs[n // 2:])
    conn.close()
    return head


def tamper(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    for s in sql:
        conn.execute(s)
    conn.close()


def commandhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True,
                          text=True, timeout=60)


def test_intact_log_verifies(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    head = make_log(db)
    assert verify_file(db) == head
    assert verify_file(db, head) == head
    r = commandhub("log", "verify", str(db))
    assert r.returncode == 0 and f"20 events, head {head}" in r.stdout
    assert commandhub("log", "head", str(db)).stdout.strip() == str(head)


def test_triggers_refuse_update_and_delete(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    make_log(db)
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET kind = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events WHERE seq = 3")
    conn.close()


@pytest.mark.parametrize(("sql", "bad_seq"), [
    # an edited payload (someone moves a receipt earlier or rewrites a note)
    (("UPDATE events SET payload = replace(payload, '签收', '已签收') WHERE seq = 7",), 7),
    (("UPDATE events SET ts_us = ts_us - 1000000 WHERE seq = 12",), 12),
    # a deleted row in the middle
    (("DELETE FROM events WHERE seq = 5",), 5),
    # two rows swapped (content exchanged between seq 8 and 9)
    (("UPDATE events SET seq = -1 WHERE seq = 8", "UPDATE events SET seq = 8 WHERE seq = 9",
      "UPDATE events SET seq = 9 WHERE seq = -1"), 8),
])
def test_tampering_is_found_at_the_right_seq(tmp_path: Path, sql: tuple[str, ...],
                                             bad_seq: int) -> None:
    db = tmp_path / "events.db"
    make_log(db)
    tamper(db, *sql)
    with pytest.raises(ChainError) as exc:
        verify_file(db)
    assert exc.value.seq == bad_seq
    r = commandhub("log", "verify", str(db))
    assert r.returncode == 1
    assert f"first bad seq: {bad_seq}" in r.stdout


def test_truncated_tail_is_found_against_a_head(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    head = make_log(db)
    tamper(db, "DELETE FROM events WHERE seq > 15")
    assert verify_file(db).seq == 15  # on its own a shorter chain still holds ...
    with pytest.raises(ChainError) as exc:  # ... but not against the checkpoint given out
        verify_file(db, head)
    assert exc.value.seq == 16
    r = commandhub("log", "verify", str(db), "--head", str(head))
    assert r.returncode == 3 and "truncated" in r.stderr


def test_rewritten_tail_is_found_against_a_head(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    head = make_log(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq = 20")
    conn.close()
    conn = create(db)  # re-append a different event 20 with a valid chain
    append_batch(conn, stored_head(conn), [Record(1, 1, "drill-x", "drill", "hub", None,
                                                  "hub.stopped", {"reason": "forged"})])
    conn.close()
    assert verify_file(db).seq == 20
    with pytest.raises(ChainError) as exc:
        verify_file(db, head)
    assert exc.value.seq == 20


def test_export_jsonl_and_csv(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    make_log(db, 4)
    r = commandhub("log", "export", str(db), "--format", "jsonl")
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 4 and '"签收"' in lines[0]
    out = tmp_path / "e.csv"
    r = commandhub("log", "export", str(db), "--format", "csv", "--out", str(out))
    rows = out.read_text(encoding="utf-8").strip().splitlines()
    assert rows[0].startswith("seq,ts_us") and len(rows) == 5
    assert [e.seq for e in read_events(db)] == [1, 2, 3, 4]


def test_not_a_log_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.db"
    bogus.write_text("hello")
    r = commandhub("log", "verify", str(bogus))
    assert r.returncode == 2 and "not a CommandHub event log" in r.stderr
    r = commandhub("log", "verify", str(tmp_path / "missing.db"))
    assert r.returncode == 2 and "no such log file" in r.stderr

"""Signed heads: the sidecar as an attacker would edit it, and `log verify` / `log key` exit codes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.checkpoint import (
    HeadsFileError,
    HeadSigner,
    KeyPin,
    NoSignedHeadError,
    SignatureError,
    UnknownKeyError,
    append_signed_head,
    check_log_extends,
    heads_path,
    latest_signed_head,
    read_signed_heads,
    verify_log,
)
from hub.logformat import (
    ChainError,
    Head,
    HeadMismatchError,
    Record,
    append_batch,
    create,
    iter_rows,
    open_readonly,
    stored_head,
)
from tests.hub.conftest import MountDisk, remount_readonly

T0 = 1_800_000_000_000_000


def rec(i: int, text: str = "签收") -> Record:
    return Record(T0 + i * 1000, i * 10**6, "drill-x", "drill", "department", "fire",
                  "report.field", {"text": f"{text} {i}", "dept": "fire"})


def make_log(db: Path, n: int, signer: HeadSigner | None = None, reason: str = "stop") -> Head:
    conn = create(db)
    _, head = append_batch(conn, stored_head(conn), [rec(i) for i in range(n)])
    conn.close()
    if signer is not None:
        append_signed_head(db, signer.sign(head, T0 + n * 1000, reason))
    return head


def commandhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                          timeout=60)


def sql(db: Path, *statements: str) -> None:
    """Edit the log as an attacker with the sqlite3 CLI would (triggers dropped first)."""
    script = "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;"
    subprocess.run(["sqlite3", str(db), script + ";".join(statements)], check=True,
                   capture_output=True)


def test_key_is_created_0600_once_and_signatures_round_trip(tmp_path: Path) -> None:
    signer = HeadSigner.load_or_create(tmp_path)
    key_file = tmp_path / "head-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = HeadSigner.load_or_create(tmp_path)
    assert again.fingerprint() == signer.fingerprint() and len(signer.fingerprint()) == 64
    db = tmp_path / "events.db"
    head = make_log(db, 5, signer, "periodic")
    [got] = read_signed_heads(db, signer.pin())
    assert got.head == head and got.reason == "periodic" and got.ts_us == T0 + 5000
    assert latest_signed_head(db) == got
    check_log_extends(db, got)
    assert KeyPin.parse(f"sha256:{signer.fingerprint().upper()}").fingerprint == signer.fingerprint()
    assert KeyPin.parse(str(key_file)).fingerprint == signer.fingerprint()


@pytest.mark.parametrize("field", ["seq", "hash", "ts_us", "reason"])
def test_an_edited_line_fails_its_signature_with_the_line_number(tmp_path: Path, field: str) -> None:
    signer = HeadSigner.load_or_create(tmp_path)
    db = tmp_path / "events.db"
    make_log(db, 8, signer, "periodic")
    append_signed_head(db, signer.sign(Head(8, stored_head(sqlite3.connect(db)).hash), T0, "stop"))
    lines = heads_path(db).read_text().splitlines()
    d = json.loads(lines[1])
    d[field] = {"seq": 3, "hash": "a" * 64, "ts_us": T0 - 1, "reason": "start"}[field]
    lines[1] = json.dumps(d)
    heads_path(db).write_text("\n".join(lines) + "\n")
    with pytest.raises(SignatureError) as exc:
        read_signed_heads(db)
    assert exc.value.line == 2 and "does not verify" in str(exc.value)
    r = commandhub("log", "verify", str(db))
    assert r.returncode == 3 and "events.db.heads:2" in r.stderr


def test_a_line_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    ours = HeadSigner.load_or_create(tmp_path / "a")
    theirs = HeadSigner.load_or_create(tmp_path / "b")
    db = tmp_path / "events.db"
    head = make_log(db, 4, ours, "periodic")
    append_signed_head(db, theirs.sign(head, T0, "stop"))  # a forger appends with their own key
    with pytest.raises(UnknownKeyError) as exc:
        read_signed_heads(db, ours.pin())
    assert exc.value.line == 2
    with pytest.raises(UnknownKeyError, match="mixes signing keys"):
        read_signed_heads(db)  # no key pinned: a file mixing keys cannot be trusted either
    # a key swapped wholesale (every line re-signed) verifies on its own, but not against the pin
    heads_path(db).unlink()
    append_signed_head(db, theirs.sign(head, T0, "stop"))
    assert read_signed_heads(db)[0].key_fingerprint == theirs.fingerprint()
    pub = tmp_path / "ours.pem"
    pub.write_text(ours.public_key_pem())
    r = commandhub("log", "verify", str(db), "--key", str(pub))
    assert r.returncode == 3 and "not the pinned key" in r.stderr
    r = commandhub("log", "verify", str(db), "--key", theirs.fingerprint())
    assert r.returncode == 0 and "(pinned with --key)" in r.stdout


def test_garbage_and_torn_lines(tmp_path: Path) -> None:
    signer = HeadSigner.load_or_create(tmp_path)
    db = tmp_path / "events.db"
    head = make_log(db, 3, signer, "periodic")
    good = heads_path(db).read_bytes()
    heads_path(db).write_bytes(good + b'{"v": 1, "seq": 9')  # a crash mid-append: torn tail
    assert [h.seq for h in read_signed_heads(db)] == [3]
    append_signed_head(db, signer.sign(head, T0 + 1, "stop"))  # the torn fragment is cut first
    assert [h.reason for h in read_signed_heads(db)] == ["periodic", "stop"]
    heads_path(db).write_bytes(good + b"not json\n" + good)
    with pytest.raises(HeadsFileError) as exc:
        read_signed_heads(db)
    assert exc.value.line == 2 and not isinstance(exc.value, SignatureError)


def test_verify_log_against_signed_heads(tmp_path: Path) -> None:
    signer = HeadSigner.load_or_create(tmp_path)
    db = tmp_path / "events.db"
    make_log(db, 10, signer, "periodic")
    conn = create(db)
    _, head = append_batch(conn, stored_head(conn), [rec(i) for i in range(10, 20)])
    conn.close()
    append_signed_head(db, signer.sign(head, T0 + 20_000, "operation_end"))
    verdict = verify_log(db, key=signer.pin())
    assert verdict.head == head and verdict.heads_checked == 2 and verdict.latest is not None
    assert verdict.latest.reason == "operation_end"
    r = commandhub("log", "verify", str(db), "--key", signer.fingerprint())
    assert r.returncode == 0 and "2 signed head(s) checked" in r.stdout
    # cut the tail: the chain alone still holds, the signed head says it is short
    cut = tmp_path / "cut.db"
    shutil.copy(db, cut)
    shutil.copy(heads_path(db), heads_path(cut))
    sql(cut, "DELETE FROM events WHERE seq > 14")
    with pytest.raises(HeadMismatchError) as exc:
        verify_log(cut)
    assert exc.value.truncated and exc.value.seq == 15 and exc.value.head.seq == 20
    r = commandhub("log", "verify", str(cut))
    assert r.returncode == 3 and "truncated" in r.stderr and "first bad seq: 15" in r.stdout
    with pytest.raises(HeadMismatchError):
        check_log_extends(cut, read_signed_heads(cut)[-1])
    # --head still works and a mismatch there is exit 3 too
    r = commandhub("log", "verify", str(cut), "--head", str(head))
    assert r.returncode == 3
    # a broken chain stays exit 1 (it is found first, at its seq)
    sql(db, "UPDATE events SET payload = replace(payload, '签收 4', '签收 5') WHERE seq = 5")
    r = commandhub("log", "verify", str(db))
    assert r.returncode == 1 and "first bad seq: 5" in r.stdout
    with pytest.raises(ChainError):
        check_log_extends(list(iter_rows(open_readonly(db))), head)


def test_events_after_a_stop_head_were_not_written_by_the_hub(tmp_path: Path) -> None:
    signer = HeadSigner.load_or_create(tmp_path)
    db = tmp_path / "events.db"
    make_log(db, 6, signer, "stop")
    conn = create(db)  # a forger appends a well-chained event after the hub's final signature
    append_batch(conn, stored_head(conn), [rec(99, "forged")])
    conn.close()
    with pytest.raises(HeadMismatchError, match="after the hub's final signed head"):
        verify_log(db)
    assert commandhub("log", "verify", str(db)).returncode == 3


def test_pinned_key_needs_a_signed_head(tmp_path: Path) -> None:
    signer = HeadSigner.load_or_create(tmp_path)
    db = tmp_path / "events.db"
    make_log(db, 3)  # no sidecar at all (deleted?)
    with pytest.raises(NoSignedHeadError):
        verify_log(db, key=signer.pin())
    r = commandhub("log", "verify", str(db))
    assert r.returncode == 0 and "only the chain was checked" in r.stdout
    assert commandhub("log", "verify", str(db), "--key", signer.fingerprint()).returncode == 3
    assert commandhub("log", "verify", str(db), "--key", "nonsense").returncode == 2


def test_log_key_prints_a_pem_that_verify_accepts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = commandhub("log", "key", "--data", str(data), "--out", str(tmp_path / "hub.pub"))
    assert r.returncode == 0 and "BEGIN PUBLIC KEY" in r.stdout
    fp = r.stdout.strip().splitlines()[-1].split("sha256:")[1]
    assert fp == HeadSigner.load_or_create(data).fingerprint()
    assert (data / "head-key.pem").stat().st_mode & 0o777 == 0o600
    (tmp_path / "stdout.pub").write_text(r.stdout)  # the whole output works as a key file too
    db = data / "events.db"
    make_log(db, 2, HeadSigner.load_or_create(data))
    for key in ("hub.pub", "stdout.pub"):
        v = commandhub("log", "verify", str(db), "--key", str(tmp_path / key))
        assert v.returncode == 0, v.stderr
    assert commandhub("log", "key", "--data", str(data)).stdout == r.stdout  # same key again


def _crashed_writer(db: Path, n: int) -> None:
    """A writer that dies (os._exit) with its commits still in the WAL (and -shm left)."""
    code = ("import os, sys; from hub.logformat import create, append_batch, stored_head;"
            "from tests.hub.test_checkpoint import rec;"
            "c = create(sys.argv[1]); c.execute('PRAGMA wal_autocheckpoint=0');"
            f"append_batch(c, stored_head(c), [rec(i) for i in range({n})]); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(db)], check=True,
                   cwd=Path(__file__).resolve().parents[2])


def test_verify_on_read_only_media(tmp_path: Path, small_disk: MountDisk) -> None:
    """A clean log, a crashed one (WAL + shm) and a WAL copied without its shm, on a read-only
    filesystem (as root, chmod cannot make a folder read-only): every committed event counts."""
    signer = HeadSigner.load_or_create(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    make_log(src / "clean.db", 30, signer)
    _crashed_writer(src / "crashed.db", 40)
    assert (src / "crashed.db-wal").stat().st_size > 0
    disk = small_disk("16m")
    for name in ("clean.db", "clean.db.heads", "crashed.db", "crashed.db-wal", "crashed.db-shm"):
        shutil.copy(src / name, disk / name)
    (disk / "noshm").mkdir()
    for name in ("crashed.db", "crashed.db-wal"):
        shutil.copy(src / name, disk / "noshm" / name)
    remount_readonly(disk)
    for db, n in ((disk / "clean.db", 30), (disk / "crashed.db", 40),
                  (disk / "noshm" / "crashed.db", 40)):
        r = commandhub("log", "verify", str(db))
        assert r.returncode == 0 and f"OK: {n} events" in r.stdout, (db, r.stdout, r.stderr)
        conn = open_readonly(db)
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == n
        conn.close()
    r = commandhub("log", "verify", str(disk / "clean.db"), "--key", signer.fingerprint())
    assert r.returncode == 0
    assert sorted(p.name for p in (disk / "noshm").iterdir()) == ["crashed.db", "crashed.db-wal"]

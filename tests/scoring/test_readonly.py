"""A log on read-only media scores and verifies: a real read-only mount (as root, chmod would not
stop writes), made in a private mount namespace with unshare."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.logformat import Record, append_batch, create, stored_head
from scoring.rubric import bundled
from scoring.synth import random_drill

ROOT = Path(__file__).resolve().parents[2]


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and unshare -m for a read-only mount")


def on_readonly_mount(
    tmp: Path, files: list[Path], commands: list[list[str]]
) -> list[subprocess.CompletedProcess[str]]:
    """Copy `files` into a tmpfs, remount it read-only, and run `commands` there (one shell)."""
    mnt = tmp / "ro"
    mnt.mkdir()
    script = [
        "set -e",
        f"mount -t tmpfs -o size=64m tmpfs {mnt}",
        *(f"cp {f} {mnt}/" for f in files),
        f"mount -o remount,ro {mnt}",
        f"if touch {mnt}/probe 2>/dev/null; then echo WRITABLE; exit 9; fi",
        "set +e",
    ]
    for i, cmd in enumerate(commands):
        quoted = " ".join(f"'{c}'" for c in cmd)
        script.append(f"{quoted} > {tmp}/out{i} 2> {tmp}/err{i}; echo $? > {tmp}/rc{i}")
    run = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return [
        subprocess.CompletedProcess(
            c,
            int((tmp / f"rc{i}").read_text()),
            (tmp / f"out{i}").read_text(),
            (tmp / f"err{i}").read_text(),
        )
        for i, c in enumerate(commands)
    ]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", *args]


@needs_mount
def test_log_on_readonly_media_scores_and_verifies(tmp_path: Path) -> None:
    db = random_drill(40, seed=2).write(tmp_path / "events.db")
    ro = tmp_path / "ro" / "events.db"
    out = tmp_path / "score.json"
    score, verify = on_readonly_mount(
        tmp_path,
        [db],
        [
            cli("score", "--log", str(ro), "--rubric", str(bundled()), "--json", str(out), "--quiet"),
            cli("log", "verify", str(ro)),
        ],
    )
    assert score.returncode == 0, score.stderr
    assert "readonly" not in score.stderr and "unable to open" not in score.stderr
    assert verify.returncode == 0, verify.stderr
    card = json.loads(out.read_text(encoding="utf-8"))
    assert card["log_head"]["seq"] == sqlite3.connect(db).execute("SELECT max(seq) FROM events").fetchone()[0]


@needs_mount
def test_wal_on_readonly_media_is_read(tmp_path: Path) -> None:
    """A log archived with its WAL (the hub was not stopped cleanly) on read-only media: SQLite
    cannot write the WAL's index there, so the log and WAL are read from a private copy
    (hub.logformat.open_readonly): the events in the WAL are scored too."""
    src = tmp_path / "src"
    src.mkdir()
    db = random_drill(30, seed=4).write(src / "events.db")
    conn = create(db)  # reopen and append without a checkpoint: the new events stay in the WAL
    conn.execute("PRAGMA wal_autocheckpoint=0")
    head = stored_head(conn)
    extra = Record(2_000_000_000_000_000, 1, "system", "system", "hub", None, "hub.stopped", {"reason": "x"})
    append_batch(conn, head, [extra])
    shutil.copy(db, tmp_path / "events.db")
    shutil.copy(Path(str(db) + "-wal"), tmp_path / "events.db-wal")
    conn.close()
    out = tmp_path / "score.json"
    (score,) = on_readonly_mount(
        tmp_path,
        [tmp_path / "events.db", tmp_path / "events.db-wal"],
        [
            cli(
                "score",
                "--log",
                str(tmp_path / "ro" / "events.db"),
                "--rubric",
                str(bundled()),
                "--json",
                str(out),
                "--quiet",
            )
        ],
    )
    assert score.returncode == 0, score.stderr
    card = json.loads(out.read_text(encoding="utf-8"))
    assert card["log_head"]["seq"] == head.seq + 1  # the WAL's event is seen
    assert not any("write-ahead" in n for n in card["notes"])

"""Heads a log must extend: `score --head SEQ:HASH` (exit 3 when the log does not extend it), the
signed-head plug (one call), and the scorecard naming what it was checked against."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from pypdf import PdfReader

from hub.checkpoint import HeadSigner, append_signed_head, heads_path
from hub.cli import main
from hub.logformat import Head
from scoring.rubric import bundled
from scoring.synth import random_drill

RUBRIC = str(bundled())


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_drill(40, seed=6).write(tmp_path_factory.mktemp("cp") / "events.db")


def head_of(path: Path, seq: int | None = None) -> Head:
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT seq, hash FROM events WHERE seq = coalesce(?, (SELECT max(seq) FROM events))", (seq,)
    ).fetchone()
    conn.close()
    return Head(row[0], row[1])


def rehash_from(path: Path, seq: int, edit_sql: str) -> None:
    """Edit events and recompute every hash from `seq` on, as a forger with the file would
    (the chain is SHA-256 over canonical JSON, docs/events.md; written here without hub code)."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute(edit_sql)
    prev = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq - 1,)).fetchone()[0]
    rows = conn.execute(
        "SELECT seq, ts_us, mono_ns, op, op_kind, role, dept, kind, payload FROM events "
        "WHERE seq >= ? ORDER BY seq",
        (seq,),
    ).fetchall()
    for s, ts, mono, op, opk, role, dept, kind, payload in rows:
        body = json.dumps(
            {
                "prev": prev,
                "seq": s,
                "ts_us": ts,
                "mono_ns": mono,
                "op": op,
                "op_kind": opk,
                "role": role,
                "dept": dept,
                "kind": kind,
                "payload": payload,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        h = hashlib.sha256(body.encode()).hexdigest()
        conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, s))
        prev = h
    conn.commit()
    conn.close()


def score(log: Path, tmp: Path, *extra: str) -> int:
    return main(
        [
            "score",
            "--log",
            str(log),
            "--rubric",
            RUBRIC,
            "--json",
            str(tmp / "s.json"),
            "--out",
            str(tmp / "r.pdf"),
            "--lang",
            "en",
            "--quiet",
            *extra,
        ]
    )


def test_given_head_extended_scores_and_is_printed(db: Path, tmp_path: Path) -> None:
    h = head_of(db, 100)
    assert score(db, tmp_path, "--head", str(h)) == 0
    card = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert card["checkpoints"] == [
        {"seq": 100, "hash": h.hash, "source": "given", "key_fingerprint": None, "signed_ts_us": None}
    ]
    text = "".join(p.extract_text() for p in PdfReader(tmp_path / "r.pdf").pages).replace("\n", " ")
    assert f"Checked against the head handed over {h.seq}:{h.hash}" in text
    assert "could not be detected" not in text  # the no-checkpoint note is gone


def test_cut_tail_is_refused_with_exit_3(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = head_of(db)
    cut = tmp_path / "cut.db"
    shutil.copy(db, cut)
    conn = sqlite3.connect(cut)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > ?", (full.seq - 30,))
    conn.commit()
    conn.close()
    # on its own the shorter log verifies, and the scorecard says it was not checked
    assert score(cut, tmp_path) == 0
    card = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert any("cut or rewritten tail could not be detected" in n for n in card["notes"])
    (tmp_path / "s.json").unlink()
    # with the head handed over, it is refused and nothing is written
    assert score(cut, tmp_path, "--head", str(full)) == 3
    assert "log ends before the given head" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_rewritten_tail_is_refused_with_exit_3(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = head_of(db)
    forged = tmp_path / "forged.db"
    shutil.copy(db, forged)
    seq = full.seq - 40
    rehash_from(forged, seq, f"UPDATE events SET ts_us = ts_us - 5000000 WHERE seq = {seq}")
    assert score(forged, tmp_path) == 0  # the chain itself is intact again
    assert score(forged, tmp_path, "--head", str(full)) == 3
    assert f"chain broken at seq {full.seq}: hash differs from the given head" in capsys.readouterr().err


def test_bad_head_argument_is_a_usage_error(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert score(db, tmp_path, "--head", "12:abc") == 2
    assert "--head" in capsys.readouterr().err


def test_signed_heads_of_the_hub_are_checked(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hub's signed sidecar (hub.checkpoint): the log must extend its latest head, the
    signature must verify and, with --key, be the given key's."""
    log = tmp_path / "events.db"
    shutil.copy(db, log)
    signer = HeadSigner.load_or_create(tmp_path / "data")
    signed = signer.sign(head_of(log, 200), 1_780_000_000_000_000, "operation_end")
    append_signed_head(log, signed)
    assert score(log, tmp_path) == 0
    text = "".join(p.extract_text() for p in PdfReader(tmp_path / "r.pdf").pages).replace("\n", " ")
    assert f"Checked against the signed head {signed.seq}:{signed.hash}" in text
    assert f"Signed by key {signer.fingerprint()}"[:40] in text
    assert score(log, tmp_path, "--key", signer.fingerprint()) == 0
    other = HeadSigner.load_or_create(tmp_path / "other")
    assert score(log, tmp_path, "--key", other.fingerprint()) == 3
    assert "pinned key" in capsys.readouterr().err
    # a log cut before the signed head is refused
    cut = tmp_path / "cut.db"
    shutil.copy(log, cut)
    shutil.copy(heads_path(log), heads_path(cut))
    conn = sqlite3.connect(cut)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > 150")
    conn.commit()
    conn.close()
    assert score(cut, tmp_path) == 3
    # a forged signature (the line's hash changed) is refused, not ignored
    line = json.loads(heads_path(log).read_text())
    line["hash"] = head_of(log, 199).hash
    line["seq"] = 199
    heads_path(log).write_text(json.dumps(line) + "\n")
    assert score(log, tmp_path) == 3
    assert "signed head" in capsys.readouterr().err

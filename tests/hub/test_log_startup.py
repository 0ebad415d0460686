"""Start-up verification: the hub refuses a log edited, cut or extended while it was down
(first bad seq, exit 1/3), `--skip-verify` overrides and is logged; what it cannot see."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from hub.bench import free_port, wait_http
from hub.checkpoint import read_signed_heads
from hub.logformat import (
    Head,
    Record,
    append_batch,
    chain_records,
    create,
    read_events,
    stored_head,
)
from hub.runtime import ServeOptions, start_hub


async def session(data: Path, texts: list[str]) -> None:
    """Start a hub in-process, issue one command per text over REST, stop it cleanly."""
    running = await start_hub(ServeOptions(data=data, port=0, record=False))
    try:
        tok = running.hub.authority.issue("commander", now=int(time.time()))
        async with aiohttp.ClientSession() as http:
            for i, text in enumerate(texts):
                async with http.post(running.url + "/api/rpc", headers={
                        "Authorization": f"Bearer {tok}"}, json={
                        "type": "command.issue", "id": f"t{i}", "targets": ["fire"],
                        "text": text}) as r:
                    assert r.status == 200, await r.text()
    finally:
        await running.stop()


def seq_of(data: Path, text: str) -> int:
    return next(e.seq for e in read_events(data / "events.db")
                if e.kind == "command.issued" and e.payload["text"] == text)


def log_verify(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", "log", "verify", str(db)],
                          capture_output=True, text=True, timeout=60)


def sql(db: Path, statements: str) -> None:
    script = "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;"
    subprocess.run(["sqlite3", str(db), script + statements], check=True, capture_output=True)


async def serve(data: Path, *extra: str, timeout: float = 30) -> tuple[int | None, str]:
    """Run `commandhub serve`; (exit code, stderr) if it refuses, (None, "") once it serves
    (then it is stopped with SIGTERM)."""
    port = free_port()
    err = data.parent / f"serve-{port}.err"
    with open(err, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--data", str(data),
                                 "--port", str(port), "--no-record", *extra],
                                stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return proc.returncode, err.read_text()
            try:
                await wait_http(f"http://127.0.0.1:{port}", timeout=0.5)
                return None, ""
            except RuntimeError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"serve neither refused nor served in {timeout} s: {err.read_text()}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def started_payloads(data: Path) -> list[dict[str, Any]]:
    return [dict(e.payload["log"]) for e in read_events(data / "events.db")
            if e.kind == "hub.started"]


async def test_each_start_verifies_the_last_session_and_signs_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await session(data, ["a1", "a2"])
    await session(data, ["b1", "b2", "b3"])
    await session(data, [])
    first, second, third = started_payloads(data)
    assert first["verified"] and first["events"] == 0  # an empty log
    assert second["verified"] and second["from"] is None  # no start head yet: from genesis
    assert third["from"] == second["to"] and third["events"] > 3  # from the last start head
    heads = read_signed_heads(data / "events.db")
    assert [h.reason for h in heads] == ["stop", "start", "stop", "start", "stop"]
    assert heads[-1].head == stored_head(create(data / "events.db"))


async def test_an_edit_in_the_last_session_refuses_start_with_its_seq(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await session(data, ["a1"])
    await session(data, ["b1", "b2", "b3"])
    bad = seq_of(data, "b2")
    sql(data / "events.db", f"UPDATE events SET payload = replace(payload, 'b2', 'B2') "
        f"WHERE seq = {bad}")
    code, err = await serve(data)
    assert code == 1, err
    assert f"chain broken at seq {bad}" in err and "--skip-verify" in err
    assert "Traceback" not in err
    # the override starts it, and says so in the log: who, why, what the tail was
    code, err = await serve(data, "--skip-verify", "--skip-verify-reason", "edit reviewed, ticket 7")
    assert code is None, err
    [skipped] = [e for e in read_events(data / "events.db") if e.kind == "log.verify_skipped"]
    assert skipped.payload["reason"] == "edit reviewed, ticket 7"
    assert skipped.payload["by"]["uid"] >= 0 and skipped.payload["by"]["user"]
    assert skipped.payload["signed_head"]["reason"] == "stop"
    assert read_signed_heads(data / "events.db")[-2].reason == "start_unverified"
    # the skip is a decision: the next start verifies from there, the full check still fails
    code, err = await serve(data)
    assert code is None, err
    r = log_verify(data / "events.db")
    assert r.returncode == 1 and f"first bad seq: {bad}" in r.stdout


async def test_a_cut_tail_refuses_start_with_exit_3(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await session(data, ["a1", "a2", "a3"])
    cut = seq_of(data, "a2")
    sql(data / "events.db", f"DELETE FROM events WHERE seq >= {cut}")
    code, err = await serve(data)
    assert code == 3 and "truncated" in err and f"at seq {cut}" in err, err


async def test_events_added_while_the_hub_was_down_refuse_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await session(data, ["a1"])
    conn = create(data / "events.db")  # well chained, so only the signed stop head tells
    append_batch(conn, stored_head(conn), [Record(1, 1, "system", "system", "commander",
                                                  "center", "command.issued", {"text": "forged"})])
    conn.close()
    code, err = await serve(data)
    assert code == 3 and "after the hub's final signed head" in err, err


async def test_a_rehashed_history_refuses_start(tmp_path: Path) -> None:
    """Rewrite an event of an earlier session and re-hash everything after it, as someone
    without the signing key would: the hash at a signed head changes."""
    data = tmp_path / "data"
    await session(data, ["a1", "a2"])
    await session(data, ["b1"])
    db = data / "events.db"
    events = read_events(db)
    k = seq_of(data, "a1")
    records = [Record(e.ts_us, e.mono_ns, e.op, e.op_kind, e.role, e.dept, e.kind,
                      {**e.payload, "text": "a1 (rewritten)"} if e.seq == k else e.payload)
               for e in events if e.seq >= k]
    prev = next(e for e in events if e.seq == k - 1)
    _, rows, _ = chain_records(Head(prev.seq, prev.hash), records)
    sql(db, f"DELETE FROM events WHERE seq >= {k}")
    conn = create(db)
    conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.close()
    assert log_verify(db).returncode == 3  # the chain holds; the signed heads do not
    code, err = await serve(data)
    assert code == 3 and "hash differs from the checkpoint" in err, err


async def test_an_edit_before_the_last_start_is_left_to_log_verify(tmp_path: Path) -> None:
    """The documented limit: events before the last start head were verified by that start
    and are not re-read; an edit there that keeps the stored hashes is found by `log verify`."""
    data = tmp_path / "data"
    await session(data, ["a1", "a2"])
    await session(data, ["b1"])
    bad = seq_of(data, "a1")
    sql(data / "events.db", f"UPDATE events SET payload = replace(payload, 'a1', 'A1') "
        f"WHERE seq = {bad}")
    code, err = await serve(data)
    assert code is None, err
    r = log_verify(data / "events.db")
    assert r.returncode == 1 and f"first bad seq: {bad}" in r.stdout


async def test_log_head_signed_events_at_operation_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    running = await start_hub(ServeOptions(data=data, port=0, record=False))
    try:
        tok = running.hub.authority.issue("commander", now=int(time.time()))
        async with aiohttp.ClientSession() as http:
            for body in ({"type": "operation.start", "id": "s", "title": "演练"},
                         {"type": "operation.end", "id": "e", "reason": "done"}):
                async with http.post(running.url + "/api/rpc", json=body,
                                     headers={"Authorization": f"Bearer {tok}"}) as r:
                    assert r.status == 200, await r.text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [
                e for e in running.hub.log.after(0, 10_000) if e.kind == "log.head_signed"]:
            await asyncio.sleep(0.05)
    finally:
        await running.stop()
    events = read_events(data / "events.db")
    ended = next(e for e in events if e.kind == "operation.ended")
    [signed] = [e for e in events if e.kind == "log.head_signed"]
    assert signed.payload["reason"] == "operation_end" and signed.payload["seq"] == ended.seq
    line = next(h for h in read_signed_heads(data / "events.db") if h.reason == "operation_end")
    assert signed.payload["signature"] == line.signature and line.head.seq == ended.seq

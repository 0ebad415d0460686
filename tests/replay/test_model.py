"""The replay model from a real SQLite log: timeline, outage spans, recording trust, gaps, log around."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hub.logformat import create
from hub.replay.model import CachedHasher, ReplayError, load_replay, media_origin_us, replay_link
from scoring.synth import T0_US, LogBuilder, S

DEPTS = ["police", "floodctrl", "fire"]


def _file(data: Path, name: str, body: bytes) -> dict[str, object]:
    (data / "recordings").mkdir(parents=True, exist_ok=True)
    (data / "recordings" / name).write_bytes(body)
    return {"path": f"recordings/{name}", "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body)}


def recording(b: LogBuilder, t_s: float, dept: str, start_s: float, dur_s: float,
              part: int, meta: dict[str, object], op: str | None = None) -> None:
    b.add(t_s, "hub", None, "media.recording",
          {"dept": dept, **meta, "codec": "VP8", "session": f"{dept}-s", "part": part,
           "frames": int(dur_s * 15), "start_ts_us": T0_US + int(start_s * S),
           "end_ts_us": T0_US + int((start_s + dur_s) * S), "duration_s": dur_s}, op)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    b = LogBuilder()
    b.start(participants=DEPTS)
    b.inject(2, "I1", 2, "levee breach")
    b.publish(1, "police")
    recording(b, 62, "police", 1, 60, 1, _file(d, "police-1.webm", b"A" * 1000))
    bad = _file(d, "police-2.webm", b"B" * 1000)
    (d / "recordings" / "police-2.webm").write_bytes(b"C" * 1000)  # changed after logging
    recording(b, 122, "police", 61, 59, 2, bad)
    b.issue(5, "C1", ["fire", "police"], requires=("receipt", "on_scene"))
    b.respond(8, "acknowledged", "C1", "police")
    b.overdue(65, "C1", "fire", "receipt")
    b.respond(70, "declined", "C1", "fire", reason="no crew")
    b.publish(10, "fire")
    b.video(30, "fire", "frozen")
    b.video(40, "fire", "restored", was="frozen", duration_s=12.0)
    b.add(50, "hub", None, "media.unpublished",
          {"dept": "fire", "source": "webrtc", "session": "s1", "cause": "closed",
           "reason": "socket_closed"})
    b.add(50, "hub", None, "video.lost", {"dept": "fire", "cause": "connection",
                                          "reason": "socket_closed"})
    recording(b, 51, "fire", 10, 40, 1, _file(d, "fire-1.webm", b"F" * 500))
    b.observe(90, "coordination", "S", note="good")
    b.end(120)
    # the last police file closes after the operation ended: logged outside it
    b.records = [r for r in b.records if r[2].kind != "media.recording" or r[2].payload["part"] != 2]
    recording(b, 122, "police", 61, 59, 2, bad, op="system")
    b.write(d / "events.db")
    return d


def test_timeline_items_spans_and_trust(data: Path) -> None:
    r = load_replay(data)
    assert r.op == "drill-20260601-01" and r.log["verified"] is True
    assert r.start_us == T0_US and r.end_us == T0_US + 120 * S
    assert [d["id"] for d in r.depts] == DEPTS
    kinds = [(i.kind, i.dept) for i in r.items]
    assert ("inject.released", None) in kinds
    assert ("command.issued", None) in kinds and ("command.acknowledged", "police") in kinds
    assert ("command.overdue", "fire") in kinds and ("observation.recorded", "center") in kinds
    declined = next(i for i in r.items if i.kind == "command.declined")
    assert declined.cat == "stage" and "no crew" in declined.label and declined.command_id == "C1"
    seqs = [i.seq for i in r.items]
    assert seqs == sorted(seqs)
    # the frozen span starts when the picture froze (restored 12 s after it began), not at detection
    frozen = next(s for s in r.spans if s.kind == "frozen")
    assert (frozen.dept, frozen.from_us, frozen.to_us) == ("fire", T0_US + 28 * S, T0_US + 40 * S)
    lost = next(s for s in r.spans if s.kind == "lost")
    assert lost.to_us == r.end_us and lost.end_seq is None  # never restored
    by_name = {x.name: x for x in r.recordings}
    assert by_name["police-1.webm"].trusted and by_name["fire-1.webm"].trusted
    assert not by_name["police-2.webm"].trusted
    assert by_name["police-2.webm"].problem == "hash mismatch"
    assert by_name["police-1.webm"].start_us == T0_US + 1 * S
    assert by_name["police-1.webm"].end_us == T0_US + 61 * S


def test_gaps_carry_their_cause(data: Path) -> None:
    r = load_replay(data)
    gaps = {(g.dept, g.from_us // S - T0_US // S): g for g in r.gaps}
    assert gaps[("police", 0)].cause == "not published"
    assert gaps[("police", 61)].cause.startswith("untrusted recording: hash mismatch")
    assert gaps[("fire", 50)].cause.startswith("feed ended: closed (socket_closed)")
    assert (gaps[("fire", 50)].code, gaps[("fire", 50)].args) == \
        ("feed_ended", {"cause": "closed", "reason": "socket_closed"})
    assert (gaps[("police", 0)].code, gaps[("police", 0)].args) == ("not_published", {})
    assert gaps[("police", 61)].code == "untrusted"
    assert gaps[("fire", 50)].to_us == r.end_us
    assert gaps[("floodctrl", 0)].cause == "not published"
    assert (gaps[("floodctrl", 0)].from_us, gaps[("floodctrl", 0)].to_us) == (r.start_us, r.end_us)
    assert ("police", 1) not in gaps  # covered by its first file


def test_log_around_a_seq_and_a_time(data: Path) -> None:
    r = load_replay(data)
    issued = next(i for i in r.items if i.kind == "command.issued")
    around = r.around(seq=issued.seq, before=2, after=3)
    assert around["at_us"] == issued.ts_us
    assert [e["seq"] for e in around["entries"]][2] == issued.seq
    assert len(around["entries"]) == 5
    at = r.around(t_us=T0_US + 40 * S, before=1, after=1)
    assert [e["kind"] for e in at["entries"]] == ["video.frozen", "video.restored"]
    with pytest.raises(ReplayError, match="seq 99999"):
        r.around(seq=99999)


def test_a_broken_chain_trusts_no_recording(data: Path) -> None:
    db = data / "events.db"
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET payload = replace(payload, 'levee', 'LEVEE') "
                 "WHERE kind = 'inject.released'")
    conn.commit()
    (seq,) = conn.execute("SELECT seq FROM events WHERE kind = 'inject.released'").fetchone()
    conn.close()
    r = load_replay(data)
    assert r.log["verified"] is False and r.log["seq"] == seq
    assert r.recordings and not any(x.trusted for x in r.recordings)
    assert all(x.problem.startswith("log not trusted") for x in r.recordings)


def test_paths_outside_the_recordings_folder_are_not_trusted(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    secret = d / "secret.key"
    secret.write_bytes(b"k" * 32)
    b = LogBuilder()
    b.start(participants=["police"])
    recording(b, 3, "police", 1, 1, 1, {"path": "secret.key", "size": 32,
                                         "sha256": hashlib.sha256(b"k" * 32).hexdigest()})
    recording(b, 4, "police", 2, 1, 2, {"path": "recordings/../secret.key", "size": 32,
                                         "sha256": hashlib.sha256(b"k" * 32).hexdigest()})
    b.end(10)
    b.write(d / "events.db")
    r = load_replay(d)
    assert [x.problem for x in r.recordings] == ["path outside the recordings folder"] * 2


def test_errors_name_the_problem(tmp_path: Path, data: Path) -> None:
    with pytest.raises(ReplayError, match="no such log"):
        load_replay(tmp_path)
    with pytest.raises(ReplayError, match="no operation 'drill-x'"):
        load_replay(data, "drill-x")
    empty = tmp_path / "empty"
    empty.mkdir()
    create(empty / "events.db").close()
    with pytest.raises(ReplayError, match="no operation"):
        load_replay(empty)


def test_cached_hasher_rehashes_a_changed_file(tmp_path: Path) -> None:
    calls: list[Path] = []

    def counting(p: Path) -> tuple[int, str]:
        calls.append(p)
        return len(p.read_bytes()), "x"

    h = CachedHasher(counting)
    f = tmp_path / "a"
    f.write_bytes(b"1")
    h(f)
    h(f)
    assert len(calls) == 1
    f.write_bytes(b"22")
    assert h(f)[0] == 2 and len(calls) == 2


def test_replay_link() -> None:
    assert replay_link("http://127.0.0.1:8765/", "drill-1", seq=42) == \
        "http://127.0.0.1:8765/replay?op=drill-1&seq=42"
    assert replay_link("", "drill-1", t_us=5).endswith("/replay?op=drill-1&t=5")


def test_two_operations_and_verifying_from_a_known_head(data: Path) -> None:
    from hub.logformat import Record, append_batch, stored_head
    from hub.replay.model import read_operation

    first = read_operation(data / "events.db")
    assert first.head is not None and [o["op"] for o in first.operations] == [first.op["op"]]
    conn = create(data / "events.db")
    t = T0_US + 500 * S
    recs = [Record(t, 1, "drill-2", "drill", "commander", "center", "operation.started",
                   {"title": "second", "roster": [{"id": "fire"}], "participants": ["fire"]}),
            Record(t + S, 2, "drill-2", "drill", "commander", "center", "operation.ended",
                   {"reason": "done"})]
    append_batch(conn, stored_head(conn), recs)
    conn.close()
    again = read_operation(data / "events.db", None, first.head)
    assert again.op["op"] == "drill-2" and again.status["verified"] is True
    assert again.head is not None and again.head.seq == first.head.seq + 2
    assert [o["op"] for o in again.operations] == [first.op["op"], "drill-2"]
    old = load_replay(data, first.op["op"])
    assert old.op == first.op["op"] and old.end_us == T0_US + 120 * S
    # an edit after the known head is found; the known head's own event must still match
    db = sqlite3.connect(data / "events.db")
    db.execute("DROP TRIGGER events_no_update")
    db.execute("UPDATE events SET payload = replace(payload, 'second', 'SECOND') "
               "WHERE kind = 'operation.started' AND op = 'drill-2'")
    db.commit()
    db.close()
    broken = read_operation(data / "events.db", None, first.head)
    assert broken.status["verified"] is False and broken.status["seq"] == first.head.seq + 1


def test_origin_uses_the_logged_last_frame_time() -> None:
    """end_ts_us minus the last frame's media time as logged (`last_s`): frames bunched by a
    loaded sender leave duration_s*(frames-1)/frames off (here 0.1 s), the logged time is not."""
    start, duration, frames = 1_000_000_000, 4.0, 41  # uniform: the last frame at 3.902 s
    end = start + 50_000 + 3_800_000  # arrived 50 ms late; its media time was 3.8 s
    assert media_origin_us(start, end, duration, frames, 3.8) == start
    assert media_origin_us(start + 80_000, end, duration, frames, 3.8) == start + 50_000
    # without last_s (older logs): the estimate, here 102 ms early
    assert media_origin_us(start + 80_000, end, duration, frames) == end - 3_902_439
    assert media_origin_us(start, end, duration, frames, "3.8") == min(start, end - 3_902_439)

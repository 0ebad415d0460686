"""The replay routes in the hub, over raw HTTP: who may read, Range on recordings (read back with
ffprobe), a changed file refused, and the model's seqs and times against the sqlite3 CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hub.runtime import RunningHub, ServeOptions, start_hub
from tests.replay.conftest import OP, PUBLISHERS, Drill

pytestmark = pytest.mark.asyncio(loop_scope="package")


@pytest_asyncio.fixture(loop_scope="package")
async def hub_on_copy(drill: Drill, tmp_path: Path) -> AsyncIterator[tuple[RunningHub, Path]]:
    data = tmp_path / "data"
    shutil.copytree(drill.data, data)
    running = await start_hub(ServeOptions(data=data, port=0, record=False,
                                           ice_hosts=["127.0.0.1"]))
    try:
        yield running, data
    finally:
        await running.stop()


def tok(h: RunningHub, role: str, dept: str | None = None) -> str:
    return h.hub.authority.issue(role, now=int(time.time()), dept=dept)  # type: ignore[arg-type]


async def get(url: str, token: str | None, **headers: str) -> tuple[int, bytes, Any]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        return r.status, await r.read(), r.headers


async def test_only_evaluator_and_commander_may_replay(hub_on_copy: tuple[RunningHub, Path]) -> None:
    h, _ = hub_on_copy
    url = f"{h.url}/api/replay?op={OP}"
    for role, dept, want in (("evaluator", None, 200), ("commander", None, 200),
                             ("observer", None, 403), ("department", "police", 403),
                             (None, None, 401)):
        status, body, _ = await get(url, tok(h, role, dept) if role else None)
        assert status == want, (role, status, body[:200])
    status, body, headers = await get(f"{h.url}/replay?op={OP}", None)  # the page itself: public
    assert status == 200 and b"/static/js/replay.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]


async def test_model_matches_the_log_read_with_sqlite3(hub_on_copy: tuple[RunningHub, Path]) -> None:
    h, data = hub_on_copy
    status, body, _ = await get(f"{h.url}/api/replay?op={OP}", tok(h, "evaluator"))
    assert status == 200
    model = json.loads(body)
    out = subprocess.run(["sqlite3", "-readonly", str(data / "events.db"),
                          "SELECT seq, ts_us, kind FROM events WHERE op = '" + OP + "' AND kind "
                          "IN ('command.issued', 'command.acknowledged', 'command.on_scene')"],
                         capture_output=True, text=True, check=True).stdout.split()
    logged = {(int(s), int(t), k) for s, t, k in (line.split("|") for line in out)}
    shown = {(i["seq"], i["ts_us"], i["kind"]) for i in model["items"]}
    assert logged and logged <= shown
    recs = [r for r in model["recordings"] if r["dept"] in PUBLISHERS]
    assert {r["dept"] for r in recs} == set(PUBLISHERS) and all(r["trusted"] for r in recs)
    gaps = {g["dept"]: g["cause"] for g in model["gaps"]}
    assert gaps["health120"] == "not published"
    assert gaps["fire"].startswith("feed ended: ")
    around = json.loads((await get(f"{h.url}/api/replay/log?op={OP}&seq={min(logged)[0]}",
                                   tok(h, "commander")))[1])
    assert min(logged)[0] in [e["seq"] for e in around["entries"]]


async def test_recordings_are_served_with_range_and_play_in_ffprobe(
        hub_on_copy: tuple[RunningHub, Path], tmp_path: Path) -> None:
    h, data = hub_on_copy
    ev = tok(h, "evaluator")
    model = json.loads((await get(f"{h.url}/api/replay?op={OP}", ev))[1])
    rec = next(r for r in model["recordings"] if r["dept"] == "police")
    url = f"{h.url}/api/replay/media/{rec['name']}?op={OP}"
    status, part, headers = await get(url, ev, Range="bytes=100-199")
    assert status == 206 and len(part) == 100
    assert headers["Content-Range"] == f"bytes 100-199/{rec['size']}"
    status, whole, headers = await get(url + f"&token={ev}", None)  # as a <video src> asks
    assert status == 200 and len(whole) == rec["size"] and headers["Content-Type"] == "video/webm"
    clip = tmp_path / rec["name"]
    clip.write_bytes(whole)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(clip)],
        capture_output=True, text=True, check=True).stdout)["streams"][0]
    assert probe["codec_name"] == "vp8" and int(probe["nb_read_frames"]) == rec["frames"]
    # a department cannot fetch recordings, even its own
    status, _, _ = await get(url, tok(h, "department", "police"))
    assert status == 403
    # a file changed after it was logged is refused, never served
    (data / rec["path"]).write_bytes(whole[:1000] + bytes([whole[1000] ^ 0xFF]) + whole[1001:])
    status, body, _ = await get(url, ev)
    assert status == 409 and json.loads(body)["error"]["code"] == "untrusted"
    model = json.loads((await get(f"{h.url}/api/replay?op={OP}", ev))[1])
    again = next(r for r in model["recordings"] if r["name"] == rec["name"])
    assert not again["trusted"] and again["problem"] == "hash mismatch"
    assert any(g["dept"] == "police" and g["cause"] == "untrusted recording: hash mismatch"
               for g in model["gaps"])


async def test_the_hubs_scorecard_links_each_seq_to_its_replay(
        hub_on_copy: tuple[RunningHub, Path], drill: Drill) -> None:
    import io

    from pypdf import PdfReader

    h, _ = hub_on_copy
    async with aiohttp.ClientSession() as http, http.post(
            f"{h.url}/api/report", json={"operation": OP, "lang": "en"},
            headers={"Authorization": f"Bearer {tok(h, 'evaluator')}"}) as r:
        assert r.status == 200, await r.text()
        pdf = await r.read()
    links = {str(a.get_object()["/A"]["/URI"]) for p in PdfReader(io.BytesIO(pdf)).pages
             for a in p.get("/Annots") or [] if "/URI" in a.get_object().get("/A", {})}
    ack = drill.seq_of("command.acknowledged", "water")
    assert f"{h.url}/replay?op={OP}&seq={ack.seq}" in links, sorted(links)[:10]


async def test_the_frame_index_matches_ffprobes_packets(
        hub_on_copy: tuple[RunningHub, Path]) -> None:
    """Each frame's media time, byte range and key flag as the page gets them
    (GET /api/replay/frames/NAME, packed columns) against ffprobe's packet list of the file;
    the bytes at each range, fetched with Range, are that packet's data (ffprobe's hash)."""
    import base64
    import hashlib
    from array import array

    h, data = hub_on_copy
    ev = tok(h, "evaluator")
    model = json.loads((await get(f"{h.url}/api/replay?op={OP}", ev))[1])
    rec = next(r for r in model["recordings"] if r["dept"] == "water")
    status, body, _ = await get(f"{h.url}/api/replay/frames/{rec['name']}?op={OP}", ev)
    assert status == 200, body[:200]
    ix = json.loads(body)
    cols = {k: array("d", base64.b64decode(ix[k])) for k in ("t_us", "offset", "size")}
    keys = base64.b64decode(ix["key"])
    assert ix["codec_id"] == "V_VP8" and (ix["width"], ix["height"]) == (320, 240)
    packets = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_packets", "-show_data_hash",
         "SHA256", "-of", "json", str(data / rec["path"])],
        capture_output=True, text=True, check=True).stdout)["packets"]
    assert ix["frames"] == len(packets) == rec["frames"] == len(keys)
    for i, p in enumerate(packets):
        assert round(float(p["pts_time"]) * 1e6) == cols["t_us"][i], (i, p)
        assert int(p["size"]) == cols["size"][i] and ("K" in p["flags"]) == bool(keys[i]), (i, p)
    for i in (0, len(packets) // 2, len(packets) - 1):
        a, n = int(cols["offset"][i]), int(cols["size"][i])
        status, part, _ = await get(f"{h.url}/api/replay/media/{rec['name']}?op={OP}", ev,
                                    Range=f"bytes={a}-{a + n - 1}")
        assert status == 206 and f"SHA256:{hashlib.sha256(part).hexdigest()}" \
            == packets[i]["data_hash"], i
    # the same rules as the file itself: no department, nothing changed since it was logged
    url = f"{h.url}/api/replay/frames/{rec['name']}?op={OP}"
    assert (await get(url, tok(h, "department", "water")))[0] == 403
    whole = (data / rec["path"]).read_bytes()
    (data / rec["path"]).write_bytes(whole[:-1] + bytes([whole[-1] ^ 0xFF]))
    status, body, _ = await get(url, ev)
    assert status == 409 and json.loads(body)["error"]["code"] == "untrusted"


async def test_batched_indexes_and_bytes_match_the_files(
        hub_on_copy: tuple[RunningHub, Path]) -> None:
    """GET /api/replay/frames?name=...&name=... gives each index as the single route does, and
    an error by name for what it cannot give; GET /api/replay/bytes?r=NAME:FIRST-LAST&... the
    ranges one after the other, each one a packet's data by ffprobe's hash; malformed, oversized,
    past-the-end and untrusted asks are refused with a code, nothing half-served."""
    import base64
    import hashlib
    from array import array
    from urllib.parse import urlencode

    h, data = hub_on_copy
    ev = tok(h, "evaluator")
    model = json.loads((await get(f"{h.url}/api/replay?op={OP}", ev))[1])
    recs = [r for r in model["recordings"] if r["dept"] != "wall"][:3]
    assert len(recs) >= 2
    q = urlencode([("op", OP)] + [("name", r["name"]) for r in recs] + [("name", "nope.webm")])
    status, body, _ = await get(f"{h.url}/api/replay/frames?{q}", ev)
    assert status == 200, body[:200]
    batch = json.loads(body)
    assert batch["errors"] == {"nope.webm": {"code": "no_recording", "message":
                                             "nope.webm: no such recording in this operation"}}
    for r in recs:
        single = json.loads((await get(f"{h.url}/api/replay/frames/{r['name']}?op={OP}", ev))[1])
        assert batch["indexes"][r["name"]] == single
    asks = []
    for r in recs:
        packets = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_packets",
             "-show_data_hash", "SHA256", "-of", "json", str(data / r["path"])],
            capture_output=True, text=True, check=True).stdout)["packets"]
        i = len(packets) // 2
        ix = batch["indexes"][r["name"]]
        a, n = (int(array("d", base64.b64decode(ix[k]))[i]) for k in ("offset", "size"))
        asks.append((r["name"], a, n, packets[i]["data_hash"]))
    q = urlencode([("op", OP)] + [("r", f"{name}:{a}-{a + n - 1}") for name, a, n, _ in asks])
    status, body, headers = await get(f"{h.url}/api/replay/bytes?{q}", ev)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert len(body) == sum(n for _, _, n, _ in asks)
    at = 0
    for name, _, n, digest in asks:
        assert f"SHA256:{hashlib.sha256(body[at:at + n]).hexdigest()}" == digest, name
        at += n
    name, size = recs[0]["name"], recs[0]["size"]

    async def refused(query: list[tuple[str, str]], token: str | None = ev) -> tuple[int, str]:
        status, body, _ = await get(f"{h.url}/api/replay/bytes?{urlencode([('op', OP), *query])}",
                                    token)
        return status, json.loads(body)["error"]["code"] if status != 200 else ""

    assert await refused([("r", f"{name}:10-5")]) == (400, "bad_range")
    assert await refused([("r", f"{name}:x-5")]) == (400, "bad_range")
    assert await refused([("r", f"{name}")]) == (400, "bad_range")
    assert await refused([]) == (400, "bad_range")
    assert await refused([("r", f"{name}:0-1")] * 33) == (400, "bad_range")
    assert await refused([("r", f"{name}:0-{64 << 20}")]) == (400, "bad_range")
    assert await refused([("r", f"{name}:0-{size}")]) == (416, "bad_range")
    assert await refused([("r", "../events.db:0-10")]) == (404, "no_recording")
    assert (await refused([("r", f"{name}:0-10")], tok(h, "department", "water")))[0] == 403
    assert (await refused([("r", f"{name}:0-10")], None))[0] == 401
    q = urlencode([("op", OP)] + [("name", f"n{i}") for i in range(33)])
    status, body, _ = await get(f"{h.url}/api/replay/frames?{q}", ev)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_names"
    # a file changed since it was logged: refused in a batch too, by name / as a whole
    path = data / recs[1]["path"]
    whole = path.read_bytes()
    path.write_bytes(whole[:-1] + bytes([whole[-1] ^ 0xFF]))
    q = urlencode([("op", OP), ("name", recs[0]["name"]), ("name", recs[1]["name"])])
    batch = json.loads((await get(f"{h.url}/api/replay/frames?{q}", ev))[1])
    assert list(batch["indexes"]) == [recs[0]["name"]]
    assert batch["errors"][recs[1]["name"]]["code"] == "untrusted"
    assert await refused([("r", f"{name}:0-10"), ("r", f"{recs[1]['name']}:0-10")]) \
        == (409, "untrusted")

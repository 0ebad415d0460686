"""Roll call (点名): each department online, its video and audio flowing, a command round trip.

Video and audio are measured where they matter, at the hub: the frames it received from each
department's published tracks during the check (`GET /api/state`, `video.participants`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hub.client import HubClient, HubClientError
from hub.roster import Roster, load_roster

ROLLCALL_TEXT = "视频点名：请签收本指令并确认本单位视频、音频正常"
WATCH_MIN_S = 3.0  # watch the media at least this long before judging it
POLL_S = 0.1


class RollCallError(Exception):
    """The roll call could not run (hub unreachable, refused, no media connection)."""


@dataclass
class DeptCheck:
    dept: str
    name_zh: str
    online: bool
    video: bool | None = None  # None: not checked
    video_fps: float | None = None
    audio: bool | None = None
    command: bool | None = None
    command_s: float | None = None  # issue -> receipt, hub clock
    note: str = ""

    @property
    def ready(self) -> bool:
        return bool(self.online and self.video and self.audio is not False and self.command)


@dataclass
class RollCallReport:
    when: str
    url: str
    timeout_s: float
    command_id: str | None
    rows: list[DeptCheck] = field(default_factory=list)

    @property
    def ready_count(self) -> int:
        return sum(r.ready for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"when": self.when, "url": self.url, "timeout_s": self.timeout_s,
                "command_id": self.command_id, "ready": self.ready_count,
                "departments": [{**asdict(r), "ready": r.ready} for r in self.rows]}


def published(state: dict[str, Any]) -> dict[tuple[str, str], int]:
    """(dept, kind) -> frames the hub has received from that department's published track."""
    out: dict[tuple[str, str], int] = {}
    for p in ((state.get("video") or {}).get("participants") or {}).values():
        dept = p.get("dept")
        if p.get("role") != "department" or not dept:
            continue
        for kind, track in (p.get("published") or {}).items():
            key = (str(dept), str(kind))
            out[key] = max(out.get(key, 0), int(track.get("frames") or 0))
    return out


def flow(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], dept: str,
         kind: str, watched_s: float) -> tuple[bool, float | None]:
    """Frames arrived at the hub from `dept` while we watched, and their rate."""
    if (dept, kind) not in after:
        return False, None
    got = after[(dept, kind)] - before.get((dept, kind), 0)
    return got > 0, round(got / max(watched_s, 1e-9), 1)


async def roll_call(url: str, token: str, roster: Roster, *, timeout_s: float = 20.0,
                    audio: bool = True,
                    say: Callable[[str], None] = print) -> RollCallReport:
    """Run one roll call as the commander on a running hub."""
    n = len(roster.departments)
    client = HubClient(url, token, client_id="rollcall", reconnect=False)
    try:
        welcome = await client.connect()
    except HubClientError as exc:
        raise RollCallError(f"cannot reach the hub at {url}: {exc}") from exc
    report = RollCallReport(time.strftime("%Y-%m-%d %H:%M:%S %z"), url, timeout_s, None)
    try:
        online = {d["id"] for d in welcome["state"]["departments"] if d.get("online")}
        await client.subscribe()
        say(f"{len(online)}/{n} departments online; issuing the roll-call command ...")
        t_start = time.monotonic()
        before = published(await client.rest("GET", "/api/state"))
        ack = await client.issue(["all"], ROLLCALL_TEXT, priority="urgent", requires=["receipt"],
                                 deadlines={"receipt": timeout_s})
        cid = report.command_id = str(ack["command_id"])
        issued_us: int | None = None
        answers: dict[str, tuple[str, int]] = {}  # dept -> (kind, ts_us)
        deadline = t_start + timeout_s
        while time.monotonic() < deadline:  # bounded by the timeout
            while not client.events.empty():
                ev = client.events.get_nowait()
                p = ev.get("payload") or {}
                if p.get("command_id") != cid:
                    continue
                if ev["kind"] == "command.issued":
                    issued_us = int(ev["ts_us"])
                elif ev["kind"] in ("command.acknowledged", "command.declined"):
                    answers.setdefault(str(ev.get("dept")), (ev["kind"], int(ev["ts_us"])))
            if online <= set(answers) and time.monotonic() - t_start >= WATCH_MIN_S:
                break
            await asyncio.sleep(POLL_S)
        after = published(await client.rest("GET", "/api/state"))
        watched = time.monotonic() - t_start
        for d in roster.departments:
            row = DeptCheck(d.id, d.name_zh, d.id in online)
            row.video, row.video_fps = flow(before, after, d.id, "video", watched)
            if audio:
                row.audio = flow(before, after, d.id, "audio", watched)[0]
            kind_ts = answers.get(d.id)
            if kind_ts is None:
                row.command = False
                row.note = "no receipt within the timeout"
            elif kind_ts[0] == "command.declined":
                row.command, row.note = False, "declined (cannot comply)"
            else:
                row.command = True
                if issued_us is not None:
                    row.command_s = round((kind_ts[1] - issued_us) / 1e6, 3)
            report.rows.append(row)
        pending = [d.id for d in roster.departments if d.id not in answers]
        if pending:
            with contextlib.suppress(HubClientError):
                await client.request("command.cancel", command_id=cid,
                                     reason="roll call over: no receipt within the timeout")
    finally:
        await client.close()
    return report


def save(report: RollCallReport, out: Path) -> dict[str, Path]:
    from drills.report import table_text, write_pdf

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "rollcall.json", "txt": out / "rollcall.txt", "pdf": out / "rollcall.pdf"}
    paths["json"].write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n",
                             encoding="utf-8")
    paths["txt"].write_text(table_text(report), encoding="utf-8")
    write_pdf(report, paths["pdf"])
    return paths


async def rollcall_with_bots(bots: int, data: Path, timeout_s: float, seed: int = 1,
                             say: Callable[[str], None] = print) -> RollCallReport:
    """A self-contained roll call: a hub here, `bots` simulated departments, then the roll call."""
    from dataclasses import replace

    from drills.bot import Bot
    from drills.drill import DrillHub, join_bots
    from drills.profile import bundled, load_profile

    roster = load_roster()
    profile = load_profile(bundled("default"))
    hub = DrillHub(data, separate=True)
    await hub.start(roster)
    # 5 fps (16 feeds are decoded here) and answers at 10x: the check takes seconds, not minutes
    fleet = [Bot(url=hub.url, token=hub.token("department", d.id), dept=d, index=i,
                 behaviour=replace(profile.for_dept(d.id), fps=5.0), seed=seed, speed=10.0,
                 say=say)
             for i, d in enumerate(roster.departments[:bots])]
    try:
        joined = await join_bots(fleet, say)
        say(f"{joined}/{len(fleet)} simulated departments joined the hub at {hub.url}")
        return await roll_call(hub.url, hub.token("commander"), roster, timeout_s=timeout_s, say=say)
    finally:
        await asyncio.gather(*(b.close() for b in fleet), return_exceptions=True)
        await hub.stop()


def main_sync(args: argparse.Namespace) -> int:
    from drills.report import table_text

    out = Path(args.out) if args.out else Path.cwd() / f"rollcall-{time.strftime('%Y%m%d-%H%M%S')}"

    def say(msg: str) -> None:
        print(msg, flush=True)

    if args.url:
        report = asyncio.run(roll_call(args.url, args.token, load_roster(), timeout_s=args.timeout,
                                       say=say))
    else:
        report = asyncio.run(rollcall_with_bots(args.bots, out / "hub-data", args.timeout, say=say))
    paths = save(report, out)
    print(table_text(report), end="")
    print(f"saved: {paths['txt']}  {paths['pdf']}  {paths['json']}")
    return 0 if report.ready_count == len(report.rows) else 1

"""Synthetic drill logs for tests, demos and benchmarks: a small builder and a random drill generator."""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hub
from hub.logformat import Event, Record, append_batch, create, stored_head
from hub.yamlsrc import load_file
from scoring.drilllog import Department

T0_US = 1_780_275_600_000_000  # 2026-06-01 01:00:00 UTC = 09:00 in Beijing
S = 1_000_000


def default_roster() -> list[Department]:
    """The 16 departments of hub/roster.yaml."""
    doc = load_file(Path(hub.__file__).resolve().parent / "roster.yaml")
    return [Department(str(d["id"]), str(d["name_zh"]), str(d["name_en"])) for d in doc.data["departments"]]


@dataclass
class LogBuilder:
    """Builds one operation's events with times in seconds from the start; writes a real log."""

    op: str = "drill-20260601-01"
    roster: Sequence[Department] = field(default_factory=default_roster)
    title: str = "2026年汛期防汛联合实战演练"
    level: str = "II"
    scenario: str | None = "flood-2026"
    t0_us: int = T0_US
    speed: float = 1.0
    records: list[tuple[int, int, Record]] = field(default_factory=list)
    _n: int = 0

    def add(
        self,
        t_s: float,
        role: str,
        dept: str | None,
        kind: str,
        payload: dict[str, Any],
        op: str | None = None,
    ) -> None:
        ts = self.t0_us + round(t_s * S)
        in_op = op is None
        rec = Record(
            ts,
            ts * 1000 - self.t0_us * 1000 + 5_000_000_000,
            self.op if in_op else (op or "system"),
            "drill" if in_op else "system",
            role,
            dept,
            kind,
            payload,
        )
        self._n += 1
        self.records.append((ts, self._n, rec))

    def start(
        self, roster: Sequence[Department] | None = None, participants: Sequence[str] | None = None
    ) -> LogBuilder:
        """operation.started; `participants` (sorted ids) as the hub logs them, or none (older logs)."""
        people = self.roster if roster is None else roster
        payload: dict[str, Any] = {
            "title": self.title,
            "kind": "drill",
            "level": self.level,
            "scenario": self.scenario,
            "speed": self.speed,
            "roster": [
                {"id": d.id, "name_zh": d.name_zh, "name_en": d.name_en, "groups": [], "tier": "city"}
                for d in people
            ],
        }
        if participants is not None:
            payload["participants"] = sorted(participants)
        self.add(0, "commander", "center", "operation.started", payload)
        return self

    def excuse(self, t_s: float, dept: str, reason: str) -> None:
        """dept.excused: the commander excuses a department during the drill."""
        self.add(t_s, "commander", "center", "dept.excused", {"dept": dept, "reason": reason})

    def publish(
        self, t_s: float, dept: str, session: str = "s1", source: str = "webrtc", op: str | None = None
    ) -> None:
        """media.published: the department's feed starts (its first video arrives)."""
        self.add(
            t_s, "hub", None, "media.published", {"dept": dept, "source": source, "session": session}, op
        )

    def unpublish(
        self, t_s: float, dept: str, session: str = "s1", source: str = "webrtc", cause: str = "left"
    ) -> None:
        """media.unpublished: the feed ends."""
        self.add(
            t_s,
            "hub",
            None,
            "media.unpublished",
            {"dept": dept, "source": source, "session": session, "cause": cause},
        )

    def end(self, t_s: float) -> None:
        self.add(t_s, "commander", "center", "operation.ended", {"reason": "drill over"})

    def online(self, t_s: float, dept: str, conn: str = "c1", op: str | None = None) -> None:
        self.add(t_s, "department", dept, "presence.online", {"conn": conn}, op)

    def offline(self, t_s: float, dept: str, conn: str = "c1", reason: str = "heartbeat") -> None:
        self.add(
            t_s, "department", dept, "presence.offline", {"conn": conn, "reason": reason, "online_s": 0.0}
        )

    def checkin(self, t_s: float, dept: str) -> None:
        self.add(t_s, "department", dept, "dept.checked_in", {"client_ts_us": None})

    def issue(
        self,
        t_s: float,
        cid: str,
        depts: Sequence[str],
        requires: Sequence[str] = ("receipt",),
        deadlines: dict[str, float] | None = None,
        critical: bool = False,
        inject_id: str | None = None,
        level: str | None = None,
        text: str = "",
    ) -> None:
        dl = deadlines if deadlines is not None else {"receipt": 60.0, "on_scene": 900.0, "completed": 2100.0}
        self.add(
            t_s,
            "commander",
            "center",
            "command.issued",
            {
                "command_id": cid,
                "targets": list(depts),
                "departments": sorted(depts),
                "text": text or f"指令 {cid}",
                "priority": "urgent",
                "level": level or self.level,
                "requires": list(requires),
                "deadlines": {k: v for k, v in dl.items() if k in requires},
                "critical": critical,
                "inject_id": inject_id,
            },
        )

    def respond(self, t_s: float, kind: str, cid: str, dept: str, **extra: Any) -> None:
        """kind: delivered, acknowledged, on_scene, completed or declined."""
        payload: dict[str, Any] = {"command_id": cid, "dept": dept}
        if kind != "delivered":
            payload |= {"client_msg_id": f"{cid}-{dept}-{kind}", "client_ts_us": None}
        payload |= extra
        self.add(t_s, "department", dept, f"command.{kind}", payload)

    def overdue(self, t_s: float, cid: str, dept: str, stage: str) -> None:
        self.add(
            t_s,
            "hub",
            None,
            "command.overdue",
            {"command_id": cid, "dept": dept, "stage": stage, "deadline_ts_us": self.t0_us + int(t_s * S)},
        )

    def video(self, t_s: float, dept: str, what: str, was: str = "frozen", duration_s: float = 0.0) -> None:
        """what: lost, frozen, black or restored (with `was` and the measured `duration_s`)."""
        self.add(
            t_s,
            "hub",
            None,
            f"video.{what}",
            {"dept": dept} | ({"was": was, "duration_s": duration_s} if what == "restored" else {}),
        )

    def observe(
        self,
        t_s: float,
        criterion: str,
        rating: str,
        dept: str | None = None,
        note: str = "",
        evaluator: str | None = None,
        evaluator_id: str | None = None,
    ) -> None:
        """observation.recorded; `evaluator` is the name (or, in older logs, an 8-hex token id)."""
        payload: dict[str, Any] = {"criterion": criterion, "rating": rating, "note": note, "dept": dept}
        payload |= _author(evaluator, evaluator_id)
        self.add(t_s, "evaluator", "center", "observation.recorded", payload)

    def tick(
        self,
        t_s: float,
        item: str,
        checked: bool = True,
        note: str = "",
        evaluator: str | None = None,
        evaluator_id: str | None = None,
    ) -> None:
        payload: dict[str, Any] = {"item": item, "checked": checked, "note": note}
        payload |= _author(evaluator, evaluator_id)
        self.add(t_s, "evaluator", "center", "checklist.ticked", payload)

    def inject(self, t_s: float, iid: str, planned_s: float, title: str = "", type_: str = "event") -> None:
        self.add(
            t_s,
            "hub",
            None,
            "inject.released",
            {
                "inject_id": iid,
                "title": title or iid,
                "type": type_,
                "planned_offset_s": planned_s,
                "actual_offset_s": t_s,
            },
        )

    def sorted_records(self) -> list[Record]:
        return [r for _, _, r in sorted(self.records, key=lambda x: (x[0], x[1]))]

    def events(self) -> list[Event]:
        """The chained events, as a log would store them (no file)."""
        conn = create(":memory:")
        try:
            events, _ = append_batch(conn, stored_head(conn), self.sorted_records())
        finally:
            conn.close()
        return events

    def write(self, path: str | Path, batch: int = 50_000) -> Path:
        return write_records(path, self.sorted_records(), batch)


def _author(name: str | None, token_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name is not None:
        out["evaluator"] = name
    if token_id is not None:
        out["evaluator_id"] = token_id
    return out


def write_records(path: str | Path, records: list[Record], batch: int = 50_000) -> Path:
    """Append records to a (new) log file in batches."""
    conn = create(path, synchronous="OFF")
    try:
        head = stored_head(conn)
        for i in range(0, len(records), batch):
            _, head = append_batch(conn, head, records[i : i + batch])
    finally:
        conn.close()
    return Path(path)


def random_drill(
    n_commands: int = 200,
    seed: int = 1,
    target_events: int = 0,
    roster: Sequence[Department] | None = None,
    duration_s: float | None = None,
    op: str = "drill-20260601-01",
    t0_us: int = T0_US,
    title: str = "2026年汛期防汛联合实战演练",
    media: bool = True,
    participants: Sequence[str] | None = None,
    excused: Sequence[tuple[str, float, str]] = (),
) -> LogBuilder:
    """A plausible drill: check-ins, commands with responses, video trouble, injects, ratings.

    With `media` the hub logs media.published/unpublished (one department joins without a
    camera); without, the log looks like an older hub's. `participants` (ids) take part, and
    `excused` (dept, time, reason) are excused during the drill. With `target_events`,
    link.stats events are added until the log has about that many events.
    """
    rnd = random.Random(seed)
    b = LogBuilder(
        op=op, roster=list(roster) if roster is not None else default_roster(), t0_us=t0_us, title=title
    )
    depts = [d.id for d in b.roster]
    nd = len(depts)
    dur = duration_s or max(7200.0, n_commands * 1.5)
    speed = {d: rnd.uniform(0.5, 1.6) for d in depts}
    b.add(
        -600,
        "hub",
        None,
        "hub.started",
        {"version": "0.1.0", "roster_sha256": "0" * 64, "departments": depts},
        op="system",
    )
    if participants is not None:
        depts = [d for d in depts if d in set(participants)]
        nd = len(depts)
    no_camera = depts[1] if media and nd >= 8 else None  # joins by phone: never publishes video
    for i, d in enumerate(depts):
        b.online(-300 + i, d, op="system")
        if media and d != no_camera:
            b.publish(-295 + i, d, op="system")
    b.start(participants=participants)
    for d, at, reason in excused:
        b.excuse(at, d, reason)
    for i, d in enumerate(depts):
        if i == nd - 3 and nd >= 8:
            continue  # one department never checks in
        b.checkin(rnd.uniform(20, 240) * speed[d], d)
    # injects
    planned = [300.0 + k * (dur - 900) / 6 for k in range(6)]
    for k, p in enumerate(planned):
        b.inject(p + rnd.choice([0, 5, 20, 45, 90, 150]), f"I{k + 1}", p, f"情景注入 {k + 1}")
    # commands
    times = sorted(rnd.uniform(120, dur - 2400) for _ in range(n_commands))
    for n, t in enumerate(times):
        cid = f"C{n + 1}"
        k = rnd.choice([1, 1, 2, 2, 3, 4, 6, nd])
        targets = rnd.sample(depts, min(k, nd))
        requires = ["receipt"]
        if rnd.random() < 0.6:
            requires.append("on_scene")
        if rnd.random() < 0.8:
            requires.append("completed")
        critical = rnd.random() < 0.05
        b.issue(t, cid, targets, requires, critical=critical)
        for d in targets:
            f = speed[d]
            b.respond(t + rnd.uniform(0.2, 3.0), "delivered", cid, d)
            u = rnd.random()
            if u < 0.01:
                b.overdue(t + 60, cid, d, "receipt")
                if rnd.random() < 0.5:
                    b.add(
                        t + 90,
                        "commander",
                        "center",
                        "command.escalated",
                        {"command_id": cid, "departments": [d], "note": "请立即签收"},
                    )
                continue
            if u < 0.015:
                b.respond(t + rnd.uniform(20, 90), "declined", cid, d, reason="力量不足")
                continue
            ack = rnd.lognormvariate(3.2, 0.6) * f
            b.respond(t + ack, "acknowledged", cid, d)
            if ack > 60:
                b.overdue(t + 60, cid, d, "receipt")
            last = ack
            if "on_scene" in requires:
                if rnd.random() < 0.04 and not critical:
                    continue
                last = ack + rnd.lognormvariate(6.0, 0.5) * f
                b.respond(t + last, "on_scene", cid, d)
                if last > 900:
                    b.overdue(t + 900, cid, d, "on_scene")
            if "completed" in requires:
                if rnd.random() < 0.04 and not critical:
                    continue
                done = last + rnd.lognormvariate(6.3, 0.5) * f
                b.respond(t + done, "completed", cid, d)
                if done > 2100:
                    b.overdue(t + 2100, cid, d, "completed")
    # video trouble
    for d in depts:
        for _ in range(rnd.choice([0, 1, 1, 2])):
            s = rnd.uniform(60, dur - 600)
            what = rnd.choice(["frozen", "black", "lost"])
            b.video(s, d, what)
            span = rnd.uniform(5, 120)
            b.video(s + span, d, "restored", was=what, duration_s=round(span + 2.0, 3))
    for d in rnd.sample(depts, min(2, nd)):
        s = rnd.uniform(600, dur - 900)
        back = s + rnd.uniform(30, 300)
        b.offline(s, d, reason="heartbeat")
        b.online(back, d, conn="c2")
        if media and d != no_camera:
            b.unpublish(s, d, cause="connection")
            b.publish(back + 1.5, d, session="s2")
    # evaluators: names from their tokens (an id prefix beside each)
    lead, field_ = ("王明", "a1b2c3d4"), ("李华", "e5f6a7b8")
    b.observe(dur - 120, "command_coordination", rnd.choice("PSM"), None, "指挥部开设及时", *lead)
    for d in depts:
        b.observe(dur - 100, "field_operations", rnd.choice("PPSSSMU"), d, "", *field_)
    for item in ("plan_approved", "safety_brief", "comms_check"):
        b.tick(dur - 60, item, True, "", *lead)
    if target_events:
        have = len(b.records) + 1
        need = max(0, target_events - have)
        per = -(-need // max(nd, 1))
        step = dur / max(per, 1)
        added = 0
        for j in range(per):
            for d in depts:
                if added >= need:
                    break
                b.add(
                    j * step + 0.5,
                    "hub",
                    None,
                    "link.stats",
                    {
                        "dept": d,
                        "track": "video",
                        "fps": 25,
                        "bitrate_kbps": 1800,
                        "loss_pct": 0.1,
                        "rtt_ms": 18,
                        "freezes": 0,
                    },
                )
                added += 1
    last_t = max(ts for ts, _, _ in b.records) / S - b.t0_us / S
    b.end(max(dur, last_t + 1))
    return b


DAY_US = 86_400 * S


def year_of_drills(n: int = 66, commands: int = 40, seed: int = 100, t0_us: int = T0_US) -> list[LogBuilder]:
    """`n` drills spread over a year (as a city's 66 joint drills), each a random drill with its
    own op id (by date), title and time; write them to one log with write_all or one log each."""
    out: list[LogBuilder] = []
    step = max(1, 365 // max(n, 1)) * DAY_US
    for k in range(n):
        t = t0_us + k * step + (k % 2) * 5 * 3600 * S  # mornings (9:00) and afternoons (14:00)
        day = datetime.datetime.fromtimestamp(t / S, datetime.timezone(datetime.timedelta(hours=8)))
        out.append(
            random_drill(
                commands,
                seed=seed + k,
                op=f"drill-{day:%Y%m%d}-01",
                t0_us=t,
                title=f"第{k + 1}次联合实战演练",
                duration_s=3600.0,
            )
        )
    return out


def write_all(path: str | Path, drills: Sequence[LogBuilder]) -> Path:
    """Several drills in one log (the hub keeps one log for every operation)."""
    records = [r for b in drills for r in b.records]
    return write_records(path, [r for _, _, r in sorted(records, key=lambda x: (x[0], x[1]))])

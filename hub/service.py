"""Hub: the transport-independent core that turns client requests into logged events.

Every request is checked (role, department, state machine), logged, and answered only after
its event committed. Committed events update HubState and fan out to the connected sessions.
The web layer (hub/server.py) only moves JSON frames between sockets and this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.auth import Principal, Revocations, Role, TokenAuthority
from hub.clock import Clock
from hub.commands import LEVELS, Command, normalise_issue
from hub.eventlog import HUB, Actor, EventLog
from hub.logformat import Event, Record
from hub.ratelimit import TokenBucket
from hub.roster import Roster
from hub.state import HubState, actor_key

VERSION = "0.1.0"
OP_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
RATINGS = ("P", "S", "M", "U")


class HubError(Exception):
    """A request failed; `code` goes on the wire in the error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Session:
    """One live client connection."""

    principal: Principal
    send: Callable[[dict[str, Any] | str], None]  # a frame, or one already encoded with encode()
    close: Callable[[str], None]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    remote: str = ""
    bucket: TokenBucket | None = None
    subscribed: bool = False
    sent_clock: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(str(self.principal.role), self.principal.dept)


@dataclass
class HubConfig:
    tick_s: float = 0.2  # deadline scan period
    msg_rate: float = 200.0  # per-connection messages per second (departments, evaluators)
    msg_burst: float = 400.0
    commander_msg_rate: float = 1000.0  # the commander dispatches in bursts
    commander_msg_burst: float = 2000.0
    reject_rate: float = 5.0  # auth.rejected events logged per second, at most
    reject_burst: float = 20.0


class Hub:
    """The command hub's core: state, log, sessions and the request handlers."""

    def __init__(self, roster: Roster, data_dir: Path, clock: Clock, *,
                 authority: TokenAuthority, config: HubConfig | None = None,
                 synchronous: str = "FULL") -> None:
        self.roster = roster
        self.data_dir = data_dir
        self.clock = clock
        self.authority = authority
        self.config = config or HubConfig()
        self.log = EventLog(data_dir / "events.db", clock, synchronous=synchronous)
        self.revocations = Revocations(data_dir)
        self.state = HubState()
        self.sessions: dict[str, Session] = {}
        self._locks: dict[Any, list[Any]] = {}  # key -> [lock, holders and waiters]
        self._tasks: list[asyncio.Task[None]] = []
        self._next_cmd = 0
        self._report_ids = itertools.count(1)
        self._reject_bucket = TokenBucket(self.config.reject_rate, self.config.reject_burst)
        self._rejects_suppressed = 0
        self._overdue_inflight: set[tuple[str, str, str]] = set()
        self.extra_handlers: dict[str, Callable[[Session, dict[str, Any]], Any]] = {}
        self.on_session_closed: list[Callable[[Session, str], Any]] = []
        # Called with every committed batch, in seq order, after the state is updated.
        self.listeners: list[Callable[[list[Event]], None]] = []

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.log.open()
        self.log.on_commit = self._on_commit
        await asyncio.get_running_loop().run_in_executor(None, self._replay)
        # The replayed history lives as long as the process: keep the collector from
        # rescanning it on every full collection (pauses would grow with the log).
        gc.collect()
        gc.freeze()
        # Sessions the log still shows online died with the previous hub process.
        stale = list(self.state.online)
        records = []
        for key in stale:
            role, _, dept = key.partition(":")
            records.append(self._record("presence.offline", {"conn": None, "reason": "hub_restart",
                                                            "online_s": None},
                                        Actor(role, dept or None)))
        for dept, feed in self.state.feeds.items():  # feeds that died with it too
            records.append(self._record("media.unpublished", {
                "dept": dept, "source": feed.get("source"), "session": feed.get("session"),
                "cause": "closed", "reason": "hub_restart"}, HUB))
        records.append(self._record("hub.started", {
            "version": VERSION, "roster_sha256": self.roster.sha256,
            "departments": self.roster.ids}, HUB))
        await self.log.submit(records)
        self._tasks.append(asyncio.create_task(self._ticker(), name="hub-ticker"))

    def _replay(self) -> None:
        seq = 0
        while batch := self.log.after(seq, 20_000):
            for ev in batch:
                self.state.apply(ev)
            seq = batch[-1].seq
        self._next_cmd = self.state.commands._counter

    async def stop(self, reason: str = "shutdown") -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        for s in list(self.sessions.values()):
            s.close("hub stopping")
            await self.session_closed(s, "closed")
        with contextlib.suppress(Exception):
            await self.log.append("hub.stopped", {"reason": reason})
        await self.log.close()

    # -- events ------------------------------------------------------------------------------

    def _record(self, kind: str, payload: Mapping[str, Any], actor: Actor,
                op: str | None = None, op_kind: str | None = None) -> Record:
        return self.log.record(kind, payload, actor=actor,
                               op=op or self.state.op_id, op_kind=op_kind or self.state.op_kind)

    async def emit(self, kind: str, payload: Mapping[str, Any], actor: Actor = HUB) -> Event:
        """Log one event in the current operation and wait for its commit."""
        return (await self.log.submit([self._record(kind, payload, actor)]))[0]

    def _on_commit(self, events: list[Event]) -> None:
        """Called in seq order for every committed batch: update state, then fan out."""
        for ev in events:
            self.state.apply(ev)
        for ev in events:
            self._fan_out(ev)
        for listener in self.listeners:
            listener(events)

    def _fan_out(self, ev: Event) -> None:
        frame = encode({"v": 1, "type": "event", "event": ev.to_dict()})  # once for everyone
        for s in list(self.sessions.values()):
            if s.principal.can("read.all"):
                if s.subscribed:
                    s.send(frame)
            elif s.principal.dept and self._concerns(ev, s.principal.dept):
                s.send(frame)
        if ev.kind == "command.issued":
            cmd = self.state.commands.commands.get(ev.payload["command_id"])
            if cmd is not None:
                self._send_commands(cmd.departments, cmd, "issued")

    @staticmethod
    def _concerns(ev: Event, dept: str) -> bool:
        p = ev.payload
        return (ev.dept == dept or p.get("dept") == dept
                or dept in p.get("departments", ()) or ev.kind.startswith("operation.")
                or (ev.kind == "route.changed" and dept in p.get("targets", ())))

    def _send_commands(self, depts: list[str], cmd: Command, cause: str) -> None:
        """Send a command to the departments' sessions, each with its own progress only."""
        frames: dict[str, str] = {}
        wanted = set(depts)
        for s in self.sessions.values():
            dept = s.principal.dept
            if s.principal.role is Role.DEPARTMENT and dept in wanted:
                assert dept is not None
                if dept not in frames:
                    frames[dept] = encode({"v": 1, "type": "command", "cause": cause,
                                           "command": cmd.to_dict(dept)})
                s.send(frames[dept])

    @contextlib.asynccontextmanager
    async def _lock(self, key: Any) -> AsyncIterator[None]:
        """Serialise requests about one thing (a command and department, a check-in, ...);
        the lock is dropped when nobody holds or waits for it, so the table stays small."""
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    # -- sessions ----------------------------------------------------------------------------

    async def session_opened(self, s: Session) -> None:
        c = self.config
        s.bucket = (TokenBucket(c.commander_msg_rate, c.commander_msg_burst)
                    if s.principal.role is Role.COMMANDER else TokenBucket(c.msg_rate, c.msg_burst))
        key = actor_key(str(s.principal.role), s.principal.dept)
        first = not any(actor_key(str(o.principal.role), o.principal.dept) == key
                        for o in self.sessions.values())
        self.sessions[s.id] = s
        if first:
            await self.emit("presence.online", {"conn": s.id}, s.actor)
        s.send({"v": 1, "type": "welcome", "protocol": 1, "session": s.id,
                "you": {"role": str(s.principal.role), "dept": s.principal.dept},
                "state": self.snapshot(s.principal), "hub_time_us": self.clock.wall_us()})
        if s.principal.role is Role.DEPARTMENT and s.principal.dept:
            await self._replay_pending(s)

    async def _replay_pending(self, s: Session) -> None:
        dept = s.principal.dept
        assert dept is not None
        for cmd in self.state.commands.open_commands():
            if cmd.pending_for(dept):
                s.send({"v": 1, "type": "command", "cause": "replay", "command": cmd.to_dict(dept)})

    async def session_closed(self, s: Session, reason: str) -> None:
        if self.sessions.pop(s.id, None) is None:
            return
        key = actor_key(str(s.principal.role), s.principal.dept)
        if not any(actor_key(str(o.principal.role), o.principal.dept) == key
                   for o in self.sessions.values()):
            since = self.state.online.get(key)
            online_s = None if since is None else round((self.clock.wall_us() - since) / 1e6, 3)
            with contextlib.suppress(Exception):
                await self.emit("presence.offline",
                                {"conn": s.id, "reason": reason, "online_s": online_s}, s.actor)
        for cb in self.on_session_closed:
            res = cb(s, reason)
            if asyncio.iscoroutine(res):
                await res

    async def reject(self, reason: str, path: str, remote: str) -> None:
        """Log a refused authentication, at most `reject_rate` a second (the rest are counted)."""
        if self._reject_bucket.take(self.clock.mono_ns() / 1e9):
            records = []
            if self._rejects_suppressed:
                records.append(self._record("auth.rejected_suppressed",
                                            {"count": self._rejects_suppressed}, HUB))
                self._rejects_suppressed = 0
            records.append(self._record("auth.rejected",
                                        {"reason": reason, "path": path, "remote": remote},
                                        HUB))
            await self.log.submit(records)
        else:
            self._rejects_suppressed += 1

    def snapshot(self, principal: Principal) -> dict[str, Any]:
        """The current state as a client of this role may see it."""
        st = self.state
        depts = []
        for d in self.roster.departments:
            depts.append({**d.to_dict(), "online": st.dept_online(d.id),
                          "feed": st.feeds.get(d.id), "checked_in_us": st.checked_in.get(d.id)})
        everything = principal.can("read.all")
        cmds = [c.to_dict(None if everything else principal.dept)
                for c in st.commands.open_commands()
                if everything or (principal.dept is not None and principal.dept in c.progress)]
        return {"operation": st.operation.to_dict() if st.operation else None,
                "center": self.roster.center.to_dict(), "departments": depts,
                "groups": self.roster.groups, "commands": cmds,
                "commander_online": "commander:center" in st.online,
                "head": {"seq": self.log.head.seq, "hash": self.log.head.hash}}

    # -- requests ----------------------------------------------------------------------------

    async def handle(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        """Run one request; return the ack fields or raise HubError/CommandError."""
        mtype = msg.get("type")
        if not isinstance(mtype, str):
            raise HubError("bad_request", "type: required")
        handler = self.extra_handlers.get(mtype) or getattr(self, "_h_" + mtype.replace(".", "_"),
                                                           None)
        if handler is None:
            raise HubError("unknown_type", f"unknown message type {mtype!r}")
        perm = REQUEST_PERMISSION.get(mtype)
        if perm is not None and not s.principal.can(perm):
            raise HubError("forbidden", f"role {s.principal.role} may not {mtype}")
        result = handler(s, msg)
        if asyncio.iscoroutine(result):
            result = await result
        return result if isinstance(result, dict) else {}

    async def _h_ping(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        return {"hub_time_us": self.clock.wall_us()}

    async def _h_clock(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        offset, rtt = msg.get("offset_ms"), msg.get("rtt_ms")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (offset, rtt)):
            raise HubError("bad_request", "offset_ms and rtt_ms: numbers")
        if not s.sent_clock:  # once per connection; the hub's time is the one that counts
            s.sent_clock = True
            await self.emit("presence.clock", {"offset_ms": round(float(offset), 3),  # type: ignore[arg-type]
                                               "rtt_ms": round(float(rtt), 3)}, s.actor)  # type: ignore[arg-type]
        return {}

    async def _h_subscribe(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        after = msg.get("after", self.log.head.seq)
        if not isinstance(after, int) or after < 0:
            raise HubError("bad_request", "after: a seq (integer >= 0)")
        s.subscribed = False
        seq = after
        while batch := self.log.after(seq, 2000):
            for ev in batch:
                s.send({"v": 1, "type": "event", "event": ev.to_dict()})
            seq = batch[-1].seq
        s.subscribed = True
        return {"after": after, "head": seq}

    # commands ---------------------------------------------------------------------------------

    async def issue_command(self, actor: Actor, request: Mapping[str, Any]) -> Event:
        """Validate and log a new command; return its committed `command.issued` event."""
        level = self.state.operation.level if self.state.operation else "III"
        fields = normalise_issue(request, level=level, resolve=self.roster.resolve)
        self._next_cmd += 1
        payload = {"command_id": f"C{self._next_cmd}", **fields}
        return await self.emit("command.issued", payload, actor)

    async def _h_command_issue(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        ev = await self.issue_command(s.actor, msg)
        return {"command_id": ev.payload["command_id"], "seq": ev.seq,
                "departments": ev.payload["departments"]}

    async def _h_command_respond(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        dept = s.principal.dept
        cid, response = msg.get("command_id"), msg.get("response")
        if not isinstance(cid, str) or not isinstance(response, str):
            raise HubError("bad_request", "command_id and response: required strings")
        if "dept" in msg and msg["dept"] != dept:
            raise HubError("forbidden", "a department may respond only as itself")
        assert dept is not None
        client_msg_id = msg.get("id") if isinstance(msg.get("id"), str) else None
        async with self._lock((cid, dept)):
            new, dup_seq = self.state.commands.check_response(cid, dept, response, client_msg_id)
            if dup_seq is not None:
                return {"command_id": cid, "state": new, "seq": dup_seq, "duplicate": True}
            payload: dict[str, Any] = {"command_id": cid, "dept": dept,
                                       "client_msg_id": client_msg_id,
                                       "client_ts_us": _int_or_none(msg.get("client_ts_us"))}
            if new == "declined":
                reason = msg.get("reason")
                if not isinstance(reason, str) or not reason.strip():
                    raise HubError("bad_request", "reason: required when declining")
                payload["reason"] = reason[:1000]
            kind = {"delivered": "command.delivered", "acknowledged": "command.acknowledged",
                    "on_scene": "command.on_scene", "completed": "command.completed",
                    "declined": "command.declined"}[new]
            ev = await self.emit(kind, payload, s.actor)
        issued = self.state.commands.commands[cid].issued_us
        return {"command_id": cid, "state": new, "seq": ev.seq,
                "latency_s": round((ev.ts_us - issued) / 1e6, 6)}

    async def _h_command_cancel(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        cmd = self.state.commands.get(str(msg.get("command_id")))
        depts = [d for d in cmd.progress if cmd.pending_for(d)]
        if not depts:
            raise HubError("invalid_transition", f"{cmd.id} has nothing left to cancel")
        reason = str(msg.get("reason") or "")[:1000]
        ev = await self.emit("command.cancelled", {"command_id": cmd.id, "departments": depts,
                                                    "reason": reason}, s.actor)
        return {"seq": ev.seq, "departments": depts}

    async def _h_command_escalate(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        """催办: re-send an open command to its laggards and log the escalation."""
        cmd = self.state.commands.get(str(msg.get("command_id")))
        wanted = msg.get("departments") or [d for d in cmd.progress if cmd.pending_for(d)]
        if not isinstance(wanted, list) or any(not cmd.pending_for(d) for d in wanted):
            raise HubError("invalid_transition", "departments: only those still pending")
        if not wanted:
            raise HubError("invalid_transition", f"{cmd.id} has no pending department")
        note = str(msg.get("note") or "")[:1000]
        records = [self._record("command.escalated", {"command_id": cmd.id, "departments": wanted,
                                                      "note": note}, s.actor)]
        records += [self._record("command.resent", {"command_id": cmd.id, "dept": d,
                                                    "cause": "escalated"}, HUB)
                    for d in wanted]
        events = await self.log.submit(records)
        self._send_commands(wanted, cmd, "escalated")
        return {"seq": events[0].seq, "departments": wanted}

    async def _h_report_field(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        text = msg.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 4000:
            raise HubError("bad_request", "text: required, at most 4000 characters")
        cid = msg.get("command_id")
        if cid is not None:
            cmd = self.state.commands.get(str(cid))
            if s.principal.dept not in cmd.progress:
                raise HubError("not_targeted", f"{cid} is not addressed to {s.principal.dept}")
        dept = s.principal.dept
        assert dept is not None
        msg_id = msg.get("id") if isinstance(msg.get("id"), str) else None
        async with self._lock(("report", dept, msg_id)):
            if msg_id is not None and (dept, msg_id) in self.state.reports:
                report_id, seq = self.state.reports[(dept, msg_id)]
                return {"report_id": report_id, "seq": seq, "duplicate": True}
            report_id = f"R{uuid.uuid4().hex[:10]}"
            ev = await self.emit("report.field", {"report_id": report_id, "command_id": cid,
                                                  "text": text, "dept": dept,
                                                  "client_msg_id": msg_id}, s.actor)
        return {"report_id": report_id, "seq": ev.seq}

    async def _h_dept_checkin(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        if self.state.operation is None:
            raise HubError("no_operation", "no operation is running to check in to")
        dept = s.principal.dept
        assert dept is not None
        async with self._lock(("checkin", dept)):
            if dept in self.state.checked_in:
                return {"duplicate": True, "checked_in_us": self.state.checked_in[dept]}
            ev = await self.emit("dept.checked_in",
                                 {"client_ts_us": _int_or_none(msg.get("client_ts_us"))}, s.actor)
        return {"seq": ev.seq, "checked_in_us": ev.ts_us}

    # operations -------------------------------------------------------------------------------

    async def start_operation(self, actor: Actor, msg: Mapping[str, Any]) -> Event:
        async with self._lock("operation"):
            if self.state.operation is not None:
                raise HubError("operation_running",
                               f"operation {self.state.operation.id} is still running")
            kind = msg.get("kind", "drill")
            if kind not in ("drill", "incident"):
                raise HubError("bad_request", "kind: drill or incident")
            title = msg.get("title")
            if not isinstance(title, str) or not title.strip():
                raise HubError("bad_request", "title: required")
            level = msg.get("level", "IV")
            if level not in LEVELS:
                raise HubError("bad_request", f"level: one of {', '.join(LEVELS)}")
            speed = msg.get("speed", 1.0)
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= 1000:
                raise HubError("bad_request", "speed: a number in (0, 1000]")
            name = msg.get("operation_id") or uuid.uuid4().hex[:8]
            op_id = f"{kind}-{name}" if not str(name).startswith(kind + "-") else str(name)
            if not OP_ID_RE.match(op_id):
                raise HubError("bad_request", "operation_id: letters, digits, _ . : - only")
            if op_id in self._seen_operations():
                raise HubError("duplicate", f"operation {op_id} already exists in this log")
            payload = {"title": title, "kind": kind, "level": level,
                       "scenario": msg.get("scenario"), "speed": float(speed),
                       "roster": self.roster.to_list()}
            rec = self.log.record("operation.started", payload, actor=actor, op=op_id, op_kind=kind)
            ev = (await self.log.submit([rec]))[0]
        self._close_wrong_operation()
        return ev

    def _seen_operations(self) -> set[str]:
        assert self.log._reader is not None
        rows = self.log._reader.execute("SELECT DISTINCT op FROM events WHERE kind = ?",
                                        ("operation.started",))
        return {r[0] for r in rows}

    async def end_operation(self, actor: Actor, reason: str = "") -> Event:
        async with self._lock("operation"):
            if self.state.operation is None:
                raise HubError("no_operation", "no operation is running")
            ev = await self.emit("operation.ended", {"reason": reason}, actor)
        self._close_wrong_operation()
        return ev

    async def _h_operation_start(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        ev = await self.start_operation(s.actor, msg)
        return {"operation": ev.op, "seq": ev.seq}

    async def _h_operation_end(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        ev = await self.end_operation(s.actor, str(msg.get("reason") or ""))
        return {"operation": ev.op, "seq": ev.seq}

    async def _h_operation_level(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        op = self._require_operation()
        level = msg.get("level")
        if level not in LEVELS:
            raise HubError("bad_request", f"level: one of {', '.join(LEVELS)}")
        if level == op.level:
            return {"level": level, "unchanged": True}
        ev = await self.emit("operation.level_changed",
                             {"from": op.level, "to": level,
                              "reason": str(msg.get("reason") or "")[:1000]}, s.actor)
        return {"level": level, "seq": ev.seq}

    async def _h_operation_pause(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        op = self._require_operation()
        if op.paused:
            raise HubError("invalid_transition", "already paused")
        return {"seq": (await self.emit("operation.paused", {}, s.actor)).seq}

    async def _h_operation_resume(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        op = self._require_operation()
        if not op.paused:
            raise HubError("invalid_transition", "not paused")
        return {"seq": (await self.emit("operation.resumed", {}, s.actor)).seq}

    def _require_operation(self) -> Any:
        if self.state.operation is None:
            raise HubError("no_operation", "no operation is running")
        return self.state.operation

    async def _h_inject_release(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        """Log a scenario inject's release (its `inject_type` becomes the event's `type`)."""
        self._require_operation()
        if not isinstance(msg.get("inject_id"), str):
            raise HubError("bad_request", "inject_id: required")
        payload = {k: msg.get(k) for k in ("inject_id", "title", "planned_offset_s",
                                           "actual_offset_s")}
        payload["type"] = msg.get("inject_type")
        return {"seq": (await self.emit("inject.released", payload, s.actor)).seq}

    # evaluation -------------------------------------------------------------------------------

    async def _h_observation_record(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        crit, rating = msg.get("criterion"), msg.get("rating")
        if not isinstance(crit, str) or not crit:
            raise HubError("bad_request", "criterion: required (a rubric criterion id)")
        if rating not in RATINGS:
            raise HubError("bad_request", "rating: one of P, S, M, U")
        dept = msg.get("dept")
        if dept is not None and dept not in self.roster.by_id:
            raise HubError("unknown_target", f"dept: no department {dept!r}")
        ev = await self.emit("observation.recorded", {
            "criterion": crit, "rating": rating, "note": str(msg.get("note") or "")[:4000],
            "dept": dept, "evaluator": s.principal.jti[:8]}, s.actor)
        return {"seq": ev.seq}

    async def _h_checklist_tick(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        item, checked = msg.get("item"), msg.get("checked", True)
        if not isinstance(item, str) or not item or not isinstance(checked, bool):
            raise HubError("bad_request", "item: required; checked: true or false")
        ev = await self.emit("checklist.ticked", {"item": item, "checked": checked,
                                                  "note": str(msg.get("note") or "")[:4000]},
                             s.actor)
        return {"seq": ev.seq}

    async def _h_token_revoke(self, s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        jti = msg.get("jti")
        if not isinstance(jti, str) or not re.fullmatch(r"[0-9a-f]{32}", jti):
            raise HubError("bad_request", "jti: a token id (32 hex digits)")
        self.revocations.add(jti)
        ev = await self.emit("token.revoked", {"jti": jti}, s.actor)
        await self.enforce_tokens()
        return {"seq": ev.seq}

    # timers -----------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        last_auth = 0.0
        while True:
            await asyncio.sleep(self.config.tick_s)
            try:
                await self.check_deadlines()
                now = self.clock.mono_ns() / 1e9
                if now - last_auth >= 1.0:
                    last_auth = now
                    await self.enforce_tokens()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the ticker alive; the failure is visible
                print(f"commandhub: ticker error: {exc!r}", flush=True)

    async def check_deadlines(self) -> None:
        """Mark passed stage deadlines overdue and re-send the command to that department."""
        now = self.clock.wall_us()
        op = self.state.operation
        if op is not None and op.paused:
            return

        def paused_us(op_id: str) -> int:
            return op.paused_us(now) if op is not None and op.id == op_id else 0

        due = [d for d in self.state.commands.overdue_due(now, paused_us)
               if (d[0].id, d[1], d[2]) not in self._overdue_inflight]
        if not due:
            return
        records = []
        for cmd, dept, stage, deadline in due:
            self._overdue_inflight.add((cmd.id, dept, stage))
            records.append(self.log.record("command.overdue", {
                "command_id": cmd.id, "dept": dept, "stage": stage, "deadline_us": deadline},
                actor=HUB, op=cmd.op, op_kind=self._op_kind_of(cmd.op)))
            records.append(self.log.record("command.resent", {
                "command_id": cmd.id, "dept": dept, "cause": "overdue"},
                actor=HUB, op=cmd.op, op_kind=self._op_kind_of(cmd.op)))
        try:
            await self.log.submit(records)
        finally:
            for cmd, dept, stage, _ in due:
                self._overdue_inflight.discard((cmd.id, dept, stage))
        for cmd, dept, _, _ in due:
            self._send_commands([dept], cmd, "overdue")

    def _op_kind_of(self, op: str) -> str:
        if op == "system":
            return "system"
        return op.split("-", 1)[0] if op.split("-", 1)[0] in ("drill", "incident") else "system"

    async def enforce_tokens(self) -> None:
        """Close sessions whose token was revoked or has expired."""
        self.revocations.refresh()
        now = self.clock.wall_us() // 1_000_000
        for s in list(self.sessions.values()):
            if s.principal.jti in self.revocations:
                s.close("token revoked")
                await self.session_closed(s, "revoked")
            elif s.principal.exp <= now:
                s.close("token expired")
                await self.session_closed(s, "expired")

    def _close_wrong_operation(self) -> None:
        op = self.state.op_id
        for s in list(self.sessions.values()):
            if s.principal.operation not in ("*", op):
                s.close("token is for another operation")


# Message type -> permission needed (handlers also check department identity themselves).
REQUEST_PERMISSION = {
    "command.issue": "command.issue",
    "command.cancel": "command.cancel",
    "command.escalate": "command.escalate",
    "command.respond": "command.respond",
    "report.field": "report.field",
    "dept.checkin": "dept.checkin",
    "operation.start": "operation.start",
    "operation.end": "operation.end",
    "operation.level": "operation.level",
    "operation.pause": "operation.pause",
    "operation.resume": "operation.resume",
    "inject.release": "inject.release",
    "observation.record": "observation.record",
    "checklist.tick": "checklist.tick",
    "token.revoke": "token.revoke",
    "subscribe": "read.all",
    "ping": "read.own",
    "clock": "read.own",
}


def encode(frame: dict[str, Any]) -> str:
    """A frame as sent on the wire; encode once when the same frame goes to many sessions."""
    return json.dumps(frame, ensure_ascii=False)


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


"""Hub: the transport-independent core that turns client requests into logged events.

Every request goes through the message table (hub/api/messages.py: permission, schema,
handler) and is answered only after its event committed. Committed events update HubState
and fan out to the sessions allowed to see them (hub/api/audience.py). The web layer
(hub/server.py) only moves JSON frames between sockets and this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.api.audience import audience
from hub.api.dispatch import dispatch
from hub.api.errors import HubError as HubError  # re-exported: the hub's request error
from hub.auth import UNITS, Principal, Revocations, Role, TokenAuthority
from hub.checkpoint import HeadSigner
from hub.clock import Clock
from hub.commands import Command
from hub.eventlog import HUB, Actor, EventLog, EventLogError, VerifySkip
from hub.logformat import Event, Record
from hub.ratelimit import TokenBucket
from hub.roster import Roster
from hub.rubricinfo import RubricInfo
from hub.state import HubState, Operation, actor_key

if TYPE_CHECKING:
    from hub.api.handlers.video import VideoPort

VERSION = "0.1.0"


SESSION_ID = re.compile(r"[0-9a-f]{12}")  # a Session's id, as `welcome` names it


@dataclass
class Session:
    """One client connection (or, `transient`, one REST request)."""

    principal: Principal
    send: Callable[[dict[str, Any] | str], None]  # a frame, or one already encoded with encode()
    close: Callable[[str], None]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    remote: str = ""
    transient: bool = False
    bucket: TokenBucket | None = None  # messages its token may send (shared by its sessions)
    refusals: TokenBucket | None = None  # over-limit messages answered `rate_limited`
    subscribed: bool = False
    sent_clock: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(str(self.principal.role), self.principal.dept)

    @property
    def actor_key(self) -> str:
        """Its actor as hub.state keys presence ("department:fire")."""
        return actor_key(str(self.principal.role), self.principal.dept)


@dataclass
class HubConfig:
    tick_s: float = 0.2  # deadline scan period
    msg_rate: float = 200.0  # per-connection messages per second (departments, evaluators)
    msg_burst: float = 400.0
    commander_msg_rate: float = 1000.0  # the commander dispatches in bursts
    commander_msg_burst: float = 2000.0
    # Over its rate (or with `msg_burst` messages waiting to be handled) a session gets this
    # many `rate_limited` answers a second; past that it is closed as `flooding`.
    refusal_rate: float = 50.0
    refusal_burst: float = 200.0
    connect_rate: float = 2.0  # WebSocket connections per token per second
    connect_burst: float = 20.0
    rpc_rate: float = 50.0  # POST /api/rpc and /api/commands per token
    rpc_burst: float = 200.0
    upload_rate: float = 2.0  # POST /api/snapshots per token
    upload_burst: float = 10.0
    snapshot_quota_count: int = 2000  # browser snapshots per operation
    snapshot_quota_bytes: int = 1024 * 1024 * 1024
    reject_rate: float = 5.0  # auth.rejected events logged per second, at most
    reject_burst: float = 20.0
    # Fault point for crash tests: hold the ack of a request whose id matches (after its
    # event committed) until the process is killed. From $COMMANDHUB_FAULT_HOLD_ACK.
    hold_ack: re.Pattern[str] | None = None


class Hub:
    """The command hub's core: state, log, sessions, fan-out and timers."""

    def __init__(self, roster: Roster, data_dir: Path, clock: Clock, *,
                 authority: TokenAuthority, config: HubConfig | None = None,
                 synchronous: str = "FULL", rubric: RubricInfo | None = None) -> None:
        self.roster = roster
        self.data_dir = data_dir
        self.clock = clock
        self.authority = authority
        self.config = config or HubConfig()
        self.rubric = rubric or RubricInfo.load()
        self.log = EventLog(data_dir / "events.db", clock, synchronous=synchronous,
                            signer=HeadSigner.load_or_create(data_dir))
        self.log.context = lambda: (self.state.op_id, self.state.op_kind)
        self.revocations = Revocations(data_dir)
        self.state = HubState()
        self.sessions: dict[str, Session] = {}
        self.video: VideoPort | None = None  # set when the video hub is attached (hub/wiring.py)
        self._locks: dict[Any, list[Any]] = {}  # key -> [lock, holders and waiters]
        self._tasks: list[asyncio.Task[None]] = []
        self._next_command = 0
        self._reject_bucket = TokenBucket(self.config.reject_rate, self.config.reject_burst)
        self._rates: dict[str, tuple[TokenBucket, TokenBucket]] = {}  # jti -> (messages, refusals)
        self._rejects_suppressed = 0
        self._overdue_inflight: set[tuple[str, str, str]] = set()
        self.on_session_closed: list[Callable[[Session, str], Any]] = []
        self.on_session_opened: list[Callable[[Session], None]] = []  # after its welcome
        # Run after every token check (revocation, expiry): WHIP/WHEP end their sessions.
        self.token_watchers: list[Callable[[], Awaitable[None]]] = []
        self._revocations_logged: set[str] | None = None  # jtis with a token.revoked event
        # Called with every committed batch, in seq order, after the state is updated.
        self.listeners: list[Callable[[list[Event]], None]] = []
        # questions waiting for their town hub's answer (link.report, link.callup_ack):
        # id -> (town, answer)
        self.queries: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}

    # -- life cycle ------------------------------------------------------------------------

    async def start(self, *, skip_verify: VerifySkip | None = None) -> None:
        """Open (and verify) the log, replay it, log `hub.started`. LogVerificationError if the
        log does not verify since the last start or extend its signed heads (`skip_verify`
        overrides, logged)."""
        self.log.open(skip_verify=skip_verify)
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
        startup = self.log.startup
        assert startup is not None
        for dept, feed in self.state.feeds.items():  # feeds that died with it too
            records.append(self._record("media.unpublished", {
                "dept": dept, "source": feed.get("source"), "session": feed.get("session"),
                "cause": "closed", "reason": "hub_restart"}, HUB))
        records.append(self._record("hub.started", {
            "version": VERSION, "roster_sha256": self.roster.sha256,
            "departments": self.roster.ids, "log": startup.payload()}, HUB))
        skipped = startup.skipped_payload()
        if skipped is not None:
            records.append(self._record("log.verify_skipped", skipped, HUB))
        await self.log.submit(records)
        self._tasks.append(asyncio.create_task(self._ticker(), name="hub-ticker"))

    def _replay(self) -> None:
        seq = 0
        while batch := self.log.after(seq, 20_000):
            for ev in batch:
                self.state.apply(ev)
            seq = batch[-1].seq
        self._next_command = self.state.commands._counter

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

    record = _record  # public name for the request handlers (hub/api/handlers)

    def new_command_id(self) -> str:
        """The next command id (C1, C2, ...; the count survives restarts via the log)."""
        self._next_command += 1
        return f"C{self._next_command}"

    async def emit(self, kind: str, payload: Mapping[str, Any], actor: Actor = HUB) -> Event:
        """Log one event in the current operation and wait for its commit."""
        return (await self.log.submit([self._record(kind, payload, actor)]))[0]

    async def submit(self, records: Sequence[Record]) -> list[Event]:
        """Log records together (one commit) and wait for it."""
        return await self.log.submit(records)

    def event_at(self, seq: int) -> Event:
        """The committed event `seq` (read back from the log)."""
        found = self.log.after(seq - 1, 1)
        if not found or found[0].seq != seq:
            raise HubError("log_unavailable", f"event {seq} cannot be read back")
        return found[0]

    def _on_commit(self, events: list[Event]) -> None:
        """Called in seq order for every committed batch: update state, then fan out."""
        for ev in events:
            self.state.apply(ev)
        for ev in events:
            self._fan_out(ev)
        for listener in self.listeners:
            listener(events)

    def _fan_out(self, ev: Event) -> None:
        who = audience(ev)
        frame: str | None = None  # encoded once, for everyone who may see it
        for s in list(self.sessions.values()):
            p = s.principal
            if not who.admits(p.role, p.dept) or (p.can("read.all") and not s.subscribed):
                continue
            if frame is None:
                frame = encode({"v": 1, "type": "event", "event": ev.to_dict()})
            s.send(frame)
        if ev.kind == "command.issued":
            cmd = self.state.commands.commands.get(ev.payload["command_id"])
            if cmd is not None:
                self.send_commands(cmd.departments, cmd, "issued")

    def send_commands(self, depts: list[str], cmd: Command, cause: str) -> None:
        """Send a command to the departments' sessions, each with its own progress only."""
        frames: dict[str, str] = {}
        wanted = set(depts)
        for s in self.sessions.values():
            dept = s.principal.dept
            if s.principal.role in UNITS and dept in wanted:
                assert dept is not None
                if dept not in frames:
                    frames[dept] = encode({"v": 1, "type": "command", "cause": cause,
                                           "command": cmd.to_dict(dept)})
                s.send(frames[dept])

    @contextlib.asynccontextmanager
    async def lock(self, key: Any) -> AsyncIterator[None]:
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

    async def session_opened(self, s: Session, replaces: str | None = None) -> None:
        """Register a live connection; its first frame is `welcome`, then everything else.

        `replaces`: the id of this actor's session the client gave up on (its pings went
        unanswered while the hub still heard the socket's pongs). That session is ended first,
        logged `presence.offline` with reason `link_lost`, so the outage is in the log; an id
        that is gone or another actor's is ignored."""
        s.bucket, s.refusals = self._rate_of(s.principal)
        key = s.actor_key
        old = self.sessions.get(replaces) if replaces else None
        if old is not None and old.actor_key == key:
            await self.session_closed(old, "link_lost")
            old.close("replaced")
        first = not any(o.actor_key == key for o in self.sessions.values())
        # Welcome, register, replay, with no await between: no event can fall between the
        # welcome's state (and head) and the event frames that follow it, and what is replayed
        # is what was pending at the welcome (a command issued while presence.online commits
        # reaches the session live, once, not again as a replay).
        s.send({"v": 1, "type": "welcome", "protocol": 1, "session": s.id,
                "you": {"role": str(s.principal.role), "dept": s.principal.dept,
                        "name": s.principal.name},
                "state": self.snapshot(s.principal), "hub_time_us": self.clock.wall_us()})
        self.sessions[s.id] = s
        if s.principal.role in UNITS and s.principal.dept:
            self._replay_pending(s)
        if s.principal.role is Role.HUB and s.principal.dept:
            self._replay_cancels(s, s.principal.dept)
            dept = self.state.callups.get(s.principal.dept)
            if dept is not None:  # the call-up goes on over the new link (no answer asked)
                s.send({"v": 1, "type": "link.callup", "query": None, "dept": dept})
        if first:
            await self.emit("presence.online", {"conn": s.id}, s.actor)
        for cb in self.on_session_opened:
            cb(s)

    def _rate_of(self, principal: Principal) -> tuple[TokenBucket, TokenBucket]:
        """The message and refusal buckets of a token, shared by all its sessions (a flooder
        that reconnects does not get a fresh burst); the most recent 10,000 tokens kept."""
        pair = self._rates.pop(principal.jti, None)
        if pair is None:
            c = self.config
            msgs = (TokenBucket(c.commander_msg_rate, c.commander_msg_burst)
                    if principal.role is Role.COMMANDER else TokenBucket(c.msg_rate, c.msg_burst))
            pair = (msgs, TokenBucket(c.refusal_rate, c.refusal_burst))
            if len(self._rates) >= 10_000:
                del self._rates[next(iter(self._rates))]
        self._rates[principal.jti] = pair  # most recently used last
        return pair

    def _replay_pending(self, s: Session) -> None:
        dept = s.principal.dept
        assert dept is not None
        for cmd in self.state.commands.open_commands():
            if cmd.pending_for(dept):
                s.send({"v": 1, "type": "command", "cause": "replay", "command": cmd.to_dict(dept)})

    def _replay_cancels(self, s: Session, town: str) -> None:
        """A town hub is sent again every cancel naming its town (as logged, `cause` replay):
        one made while its uplink was down reaches it; the town applies each once."""
        for cmd in self.state.commands.commands.values():
            prog = cmd.progress.get(town)
            seq = prog.seqs.get("cancelled") if prog is not None else None
            if seq is not None:
                s.send({"v": 1, "type": "event", "cause": "replay",
                        "event": self.event_at(seq).to_dict()})

    async def session_closed(self, s: Session, reason: str) -> None:
        if self.sessions.pop(s.id, None) is None:
            return
        key = s.actor_key
        if not any(o.actor_key == key for o in self.sessions.values()):
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
                "groups": self.roster.groups, "group_info": self.roster.group_info(), "commands": cmds,
                "commander_online": "commander:center" in st.online,
                "head": {"seq": self.log.head.seq, "hash": self.log.head.hash}}

    # -- requests ----------------------------------------------------------------------------

    async def handle(self, s: Session, msg: Mapping[str, Any]) -> dict[str, Any]:
        """Run one request through the message table; return the ack fields or raise."""
        return await dispatch(self, s, msg)

    def require_operation(self) -> Operation:
        if self.state.operation is None:
            raise HubError("no_operation", "no operation is running")
        return self.state.operation

    def seen_operations(self) -> set[str]:
        assert self.log._reader is not None
        rows = self.log._reader.execute("SELECT DISTINCT op FROM events WHERE kind = ?",
                                        ("operation.started",))
        return {r[0] for r in rows}

    def close_wrong_operation(self) -> None:
        op = self.state.op_id
        for s in list(self.sessions.values()):
            if s.principal.operation not in ("*", op):
                s.close("token is for another operation")

    async def _h_token_revoke(self, s: Session, msg: dict[str, Any]) -> Event:
        """token.revoke (the table's handler calls this): revoke a jti, close its sessions."""
        jti = msg["jti"]
        logged = await self._logged_revocations()
        logged.add(jti)  # before the file changes, so the file watcher does not log it as cli
        self.revocations.add(jti)
        ev = await self.emit("token.revoked", {"jti": jti, "by": "request",
                                               "client_msg_id": msg.get("id")}, s.actor)
        await self.enforce_tokens()
        return ev

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
            except EventLogError:
                pass  # the log reports its own failures (once per cause, /healthz)
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
            self.send_commands([dept], cmd, "overdue")

    def _op_kind_of(self, op: str) -> str:
        if op == "system":
            return "system"
        return op.split("-", 1)[0] if op.split("-", 1)[0] in ("drill", "incident") else "system"

    def token_problem(self, principal: Principal) -> str | None:
        """Why a token no longer holds (`revoked`, `expired`, `wrong_operation`), or None."""
        if principal.jti in self.revocations:
            return "revoked"
        if principal.exp <= self.clock.wall_us() // 1_000_000:
            return "expired"
        if principal.operation not in ("*", self.state.op_id):
            return "wrong_operation"
        return None

    async def enforce_tokens(self) -> None:
        """Close every session (WS here, WHIP/WHEP through `token_watchers`) whose token was
        revoked, has expired or is for another operation; log revocations made with the CLI
        (DATA/revoked.txt) as `token.revoked` with `by: cli`."""
        self.revocations.refresh()
        logged = await self._logged_revocations()
        new = [jti for jti in self.revocations if jti not in logged]
        if new:
            logged.update(new)  # first, so a concurrent check does not log them twice
            try:
                await self.log.submit([self._record("token.revoked", {"jti": jti, "by": "cli"},
                                                    HUB) for jti in new])
            except EventLogError:  # logged by a later check; sessions close regardless
                logged.difference_update(new)
        for s in list(self.sessions.values()):
            problem = self.token_problem(s.principal)
            if problem is not None:
                s.close(f"token {problem.replace('_', ' ')}")
                await self.session_closed(s, problem)
        for watcher in self.token_watchers:
            await watcher()

    async def _logged_revocations(self) -> set[str]:
        """Token ids the log already has a `token.revoked` for (read from the log once)."""
        if self._revocations_logged is None:
            events = await asyncio.get_running_loop().run_in_executor(
                None, self.log.of_kind, "token.revoked")
            self._revocations_logged = {str(e.payload.get("jti")) for e in events}
        return self._revocations_logged


def encode(frame: dict[str, Any]) -> str:
    """A frame as sent on the wire; encode once when the same frame goes to many sessions."""
    return json.dumps(frame, ensure_ascii=False)

"""The drill runner: starts the operation, releases each inject at its drill time, records the timing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from drills.progress import ProgressBook
from drills.scenario import LAGGARDS, Inject, Scenario

PAUSE_CHECK_S = 0.25  # while waiting for an inject, look for a pause this often (real s)


class RunnerError(Exception):
    """The drill could not be run (the hub refused the operation or a scripted request)."""


class Clock(Protocol):
    """Real time for the runner: monotonic seconds and a sleep (injected; tests may fake it)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class Commander(Protocol):
    """What the runner needs of the commander's connection (HubClient fits)."""

    async def request(self, type: str, *, msg_id: str | None = None, **fields: Any) -> dict[str, Any]: ...


@dataclass
class Release:
    """One inject: planned and actual drill seconds, whether it was released, what it did."""

    inject_id: str
    type: str
    title: str
    planned_s: float
    actual_s: float | None = None
    released: bool = False
    note: str = ""
    command_id: str | None = None  # the hub's id of the command it issued


@dataclass
class RunResult:
    operation: str
    scenario: str
    speed: float
    auto: bool
    releases: list[Release] = field(default_factory=list)
    command_map: dict[str, str] = field(default_factory=dict)  # scenario command id -> hub id
    book: ProgressBook = field(default_factory=ProgressBook)
    real_s: float = 0.0


def fmt_drill(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m:02d}:{s:02d}"


class DrillRunner:
    """Runs one scenario against a hub as the commander.

    `auto`: issue the scripted commands, level changes and chases itself (unattended runs);
    otherwise only log `inject.released` so the commander console shows each inject as a prompt.
    Drill time is real time x `speed`; deadlines sent to the hub are real seconds.
    """

    def __init__(self, commander: Commander, scenario: Scenario, *, speed: float = 1.0,
                 auto: bool = True, operation_id: str | None = None, clock: Clock | None = None,
                 say: Callable[[str], None] | None = None, status_every_s: float = 600.0) -> None:
        if not 0 < speed <= 1000:
            raise RunnerError("speed: a number in (0, 1000]")
        self.commander = commander
        self.scenario = scenario
        self.speed = float(speed)
        self.auto = auto
        self.clock = clock or MonotonicClock()
        self.say = say or (lambda _msg: None)
        self.status_every_s = status_every_s
        self.operation_id = operation_id or f"{scenario.id}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.level = scenario.level
        self.book = ProgressBook()
        self._t0: float | None = None
        self._paused_at: float | None = None  # real time the current pause began
        self._paused_total = 0.0  # real seconds spent in earlier pauses
        self._running = asyncio.Event()
        self._running.set()

    # -- time ---------------------------------------------------------------------------------

    def drill_now(self) -> float:
        """Drill seconds since the start: real time x speed, pauses excluded."""
        assert self._t0 is not None
        now = self.clock.now()
        stopped = self._paused_total + (now - self._paused_at if self._paused_at is not None else 0)
        return (now - self._t0 - stopped) * self.speed

    async def _until(self, drill_s: float) -> None:
        """Wait until drill time `drill_s`; the drill clock stands still while paused."""
        while True:
            await self._running.wait()
            remaining = (drill_s - self.drill_now()) / self.speed
            if remaining <= 0:
                return
            await self.clock.sleep(min(remaining, PAUSE_CHECK_S))

    def paused(self, paused: bool) -> None:
        """The operation was paused or resumed (from its events)."""
        now = self.clock.now()
        if paused and self._paused_at is None:
            self._paused_at = now
            self._running.clear()
            self._say("drill paused")
        elif not paused and self._paused_at is not None:
            self._paused_total += now - self._paused_at
            self._paused_at = None
            self._running.set()
            self._say("drill resumed")

    def _say(self, msg: str) -> None:
        self.say(f"[{fmt_drill(self.drill_now()) if self._t0 is not None else '--:--'}] {msg}")

    # -- the run ------------------------------------------------------------------------------

    async def feed(self, events: asyncio.Queue[dict[str, Any]]) -> None:
        """Fold the commander's event stream into the progress book (run as a task)."""
        while True:
            ev = await events.get()
            self.book.apply(ev)
            if ev.get("op") == self.operation_id and ev.get("kind") in ("operation.paused",
                                                                       "operation.resumed"):
                self.paused(ev["kind"] == "operation.paused")

    async def start(self) -> str:
        s = self.scenario
        try:
            ack = await self.commander.request(
                "operation.start", title=s.title, kind="drill", level=s.level,
                operation_id=self.operation_id, scenario=s.id, speed=self.speed)
        except Exception as exc:
            raise RunnerError(f"cannot start the drill: {exc}") from exc
        self.operation_id = str(ack["operation"])
        self.book.operation = self.operation_id
        self._t0 = self.clock.now()
        note = f" at {self.speed:g}x compressed time" if self.speed != 1 else ""
        self._say(f"drill {self.operation_id} started{note}: {s.title} (level {s.level})")
        return self.operation_id

    async def run(self) -> RunResult:
        """Start, release every inject at its time, wait for the end, end the operation."""
        t_real = self.clock.now()
        await self.start()
        result = RunResult(self.operation_id, self.scenario.id, self.speed, self.auto,
                           book=self.book)
        next_status = self.status_every_s
        for inj in self.scenario.injects:
            while next_status < inj.at:
                await self._until(next_status)
                self._say(self.book.summary())
                next_status += self.status_every_s
            await self._until(inj.at)
            result.releases.append(await self.release(inj))
        while next_status < self.scenario.end:
            await self._until(next_status)
            self._say(self.book.summary())
            next_status += self.status_every_s
        await self._until(self.scenario.end)
        await self.end("scenario complete")
        result.command_map = dict(self.book.by_inject)
        for r in result.releases:
            if r.type in ("command", "contingency") and r.command_id is None:
                r.command_id = self.book.by_inject.get(self._command_id(r.inject_id) or "")
        result.real_s = self.clock.now() - t_real
        return result

    async def end(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.commander.request("operation.end", reason=reason)
        self._say(f"drill ended ({reason}): {self.book.summary()}")

    def _command_id(self, inject_id: str) -> str | None:
        for inj in self.scenario.injects:
            if inj.id == inject_id and inj.command is not None:
                return inj.command.id
        return None

    async def release(self, inj: Inject) -> Release:
        rel = Release(inj.id, inj.type, inj.title, inj.at)
        laggards: list[str] = []
        if inj.expect is not None:
            prog = self.book.command_for(inj.expect.command)
            if prog is not None and prog.met(inj.expect.stage):
                rel.note = f"not needed: every department reached {inj.expect.stage} of " \
                           f"{inj.expect.command}"
                self._say(f"{inj.id} {rel.note}")
                return rel
            laggards = prog.laggards(inj.expect.stage) if prog is not None else []
        rel.actual_s = round(self.drill_now(), 3)
        # The frame's own `type` is the request type, so the inject's type travels as
        # `inject_type` (the hub must copy it into the payload's `type`: see docs/scenario.md).
        await self._request("inject.release", inject_id=inj.id, title=inj.title,
                            inject_type=inj.type, planned_offset_s=inj.at,
                            actual_offset_s=rel.actual_s)
        rel.released = True
        self._say(f"{inj.id} {inj.type}: {inj.title}")
        if not self.auto:
            return rel
        if inj.type == "escalation" and inj.level is not None and inj.level != self.level:
            await self._request("operation.level", level=inj.level, reason=inj.title)
            self._say(f"response level {self.level} -> {inj.level}")
            self.level = inj.level
        if inj.escalate and inj.expect is not None:
            prog = self.book.command_for(inj.expect.command)
            if prog is not None and laggards:
                await self._request("command.escalate", command_id=prog.command_id,
                                    departments=laggards, note=inj.title)
                rel.note = f"chased {', '.join(laggards)} on {inj.expect.command} ({prog.command_id})"
                self._say(rel.note)
        if inj.command is not None:
            rel.command_id = await self.issue(inj, laggards)
        return rel

    async def issue(self, inj: Inject, laggards: list[str]) -> str | None:
        cmd = inj.command
        assert cmd is not None
        targets: list[str] = []
        for t in cmd.targets:
            targets.extend(laggards if t == LAGGARDS else [t])
        if not targets:
            self._say(f"{cmd.id}: no department to send it to")
            return None
        deadlines = self.scenario.deadlines(cmd, self.level)
        ack = await self._request(
            "command.issue", targets=targets, text=cmd.text, priority=cmd.priority,
            level=self.level, requires=list(cmd.requires),
            deadlines={s: round(max(d / self.speed, 0.001), 3) for s, d in deadlines.items()},
            critical=cmd.critical, inject_id=cmd.id)
        hub_id = str(ack["command_id"])
        self.book.by_inject.setdefault(cmd.id, hub_id)
        depts = ack.get("departments") or []
        self._say(f"{cmd.id} issued as hub command {hub_id} to {len(depts)} departments")
        return hub_id

    async def _request(self, type_: str, **fields: Any) -> dict[str, Any]:
        try:
            return await self.commander.request(type_, **fields)
        except Exception as exc:
            raise RunnerError(f"{type_} refused: {exc}") from exc

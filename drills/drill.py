"""One unattended drill end to end: a hub (in this process or its own), N bots, the runner."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.bot import Bot, BotError
from drills.profile import Profile
from drills.runner import DrillRunner, RunResult
from drills.scenario import Scenario
from hub.auth import TokenAuthority, load_secret
from hub.client import HubClient
from hub.roster import Roster, load_roster
from hub.sfu.ice import IceConfig, apply_host_addresses

JOIN_CONCURRENCY = 4  # bots negotiating WebRTC at once (2 cores: do not stampede)
TOKEN_TTL_S = 12 * 3600


class DrillError(Exception):
    """The drill could not be set up (hub not starting, no bot could join, ...)."""


@dataclass
class DrillConfig:
    scenario: Scenario
    profile: Profile
    data: Path
    bots: int = 16
    seed: int = 1
    speed: float = 60.0
    auto: bool = True
    hub_process: bool = False  # run the hub in its own process (so its CPU can be measured)
    operation_id: str | None = None
    roster: Roster | None = None
    say: Callable[[str], None] = print
    on_ready: Callable[[str], None] | None = None  # gets the commander console URL (hub is up)
    status_every_s: float = 600.0


@dataclass
class DrillOutcome:
    result: RunResult
    log_path: Path
    url: str
    console_url: str
    bots: dict[str, dict[str, str]] = field(default_factory=dict)  # dept -> hub cid -> outcome
    joined: int = 0
    hub_cpu_s: float | None = None  # hub process CPU during the drill (hub_process only)
    drill_real_s: float = 0.0


class DrillHub:
    """The hub for a drill: in this process or in its own (then its CPU is measured apart)."""

    def __init__(self, data: Path, separate: bool) -> None:
        self.data, self.separate = data, separate
        self.url = ""
        self.authority: TokenAuthority | None = None
        self._running: Any = None
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self, roster: Roster) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        if self.separate:
            from hub.bench import free_port, hub_log_tail, start_hub_process, wait_http

            self.authority = TokenAuthority(load_secret(self.data), set(roster.ids))
            port = free_port()
            self._proc = start_hub_process(self.data, port, "--ice-host", "127.0.0.1")
            self.url = f"http://127.0.0.1:{port}"
            try:
                await wait_http(self.url, timeout=30.0)
            except RuntimeError as exc:
                await self.stop()
                raise DrillError(f"{exc}: {hub_log_tail(self.data)}") from exc
            apply_host_addresses(IceConfig.loopback())  # the bots in this process: loopback ICE
        else:
            from hub.runtime import ServeOptions, start_hub

            self._running = await start_hub(ServeOptions(data=self.data, port=0,
                                                         ice_hosts=["127.0.0.1"]))
            self.url = self._running.url
            self.authority = self._running.hub.authority

    def cpu_s(self) -> float | None:
        if self._proc is None:
            return None
        from hub.bench import proc_cpu_s

        return proc_cpu_s(self._proc.pid)

    def token(self, role: str, dept: str | None = None) -> str:
        assert self.authority is not None
        return self.authority.issue(role, now=int(time.time()), ttl_s=TOKEN_TTL_S, dept=dept)

    async def stop(self) -> None:
        if self._running is not None:
            await self._running.stop()
            self._running = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def join_bots(bots: list[Bot], say: Callable[[str], None]) -> int:
    """Join every bot, a few at a time; return how many joined (failures are reported)."""
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)

    async def one(bot: Bot) -> bool:
        async with gate:
            try:
                await bot.join()
                return True
            except BotError as exc:
                say(f"bot {bot.dept.id} could not join: {exc}")
                return False

    return sum(await asyncio.gather(*(one(b) for b in bots)))


async def run_drill(cfg: DrillConfig) -> DrillOutcome:
    """Start the hub, join the bots, run the scenario unattended, stop everything."""
    roster = cfg.roster or load_roster()
    if not 0 <= cfg.bots <= len(roster.departments):
        raise DrillError(f"--bots: 0 to {len(roster.departments)} (the roster's departments)")
    hub = DrillHub(cfg.data, cfg.hub_process)
    await hub.start(roster)
    bots: list[Bot] = []
    commander: HubClient | None = None
    feeder: asyncio.Task[None] | None = None
    try:
        console = f"{hub.url}/commander?token={hub.token('commander')}"
        if cfg.on_ready is not None:
            cfg.on_ready(console)
        commander = HubClient(hub.url, hub.token("commander"), client_id="drill-runner")
        await commander.connect()
        await commander.subscribe()
        for i, dept in enumerate(roster.departments[:cfg.bots]):
            bots.append(Bot(url=hub.url, token=hub.token("department", dept.id), dept=dept,
                            index=i, behaviour=cfg.profile.for_dept(dept.id), seed=cfg.seed,
                            speed=cfg.speed, say=cfg.say))
        cfg.say(f"hub on {hub.url}; joining {len(bots)} simulated departments ...")
        t_join = time.monotonic()
        joined = await join_bots(bots, cfg.say)
        if bots and not joined:
            raise DrillError("no simulated department could join the hub")
        cfg.say(f"{joined}/{len(bots)} departments online with video "
                f"({time.monotonic() - t_join:.1f} s)")
        runner = DrillRunner(commander, cfg.scenario, speed=cfg.speed, auto=cfg.auto,
                             operation_id=cfg.operation_id, say=cfg.say,
                             status_every_s=cfg.status_every_s)
        feeder = asyncio.ensure_future(runner.feed(commander.events))
        cpu0 = hub.cpu_s()
        t0 = time.monotonic()
        result = await runner.run()
        drill_real = time.monotonic() - t0
        cpu1 = hub.cpu_s()
        await asyncio.sleep(0.2)  # let the last events reach the book
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        await asyncio.gather(*(b.close() for b in bots), return_exceptions=True)
        if commander is not None:
            await commander.close()
        await hub.stop()
    return DrillOutcome(
        result=result, log_path=cfg.data / "events.db", url=hub.url, console_url=console,
        bots={b.dept.id: dict(b.answers) for b in bots}, joined=joined,
        hub_cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0, drill_real_s=drill_real)

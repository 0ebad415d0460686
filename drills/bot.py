"""A simulated department: joins over the real WebSocket and WebRTC, answers commands per its profile."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from drills.profile import Behaviour, Episode, checkin_delay, plan_command, plan_episodes
from hub.client import HubClient, HubClientError
from hub.media_client import MediaClient
from hub.roster import Department
from hub.sfu.ice import IceConfig
from media.source import DepartmentAudio, DepartmentVideo, EpisodeVideo

RETRYABLE = frozenset({"closed", "timeout", "unreachable", "log_unavailable", "rate_limited"})
MAX_ATTEMPTS = 60  # per response: bounded, at 0.25 s apart while the bot is online
JOIN_TIMEOUT_S = 30.0
OFFLINE_WAIT_S = 120.0  # longest a response waits for the bot to be back online


class BotError(Exception):
    """A simulated department could not join the hub."""


class Bot:
    """One simulated department. `await join()`, then it runs by itself until `close()`.

    Times in its behaviour are drill time; it waits drill time / `speed` in real time.
    """

    def __init__(self, *, url: str, token: str, dept: Department, index: int, behaviour: Behaviour,
                 seed: int, speed: float, ice: IceConfig | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.url, self.token, self.dept, self.index = url, token, dept, index
        self.behaviour, self.seed, self.speed = behaviour, seed, speed
        self.ice = ice or IceConfig.loopback()
        self.say = say or (lambda _msg: None)
        self.client: HubClient | None = None
        self.media: MediaClient | None = None
        self.online = asyncio.Event()
        self.video_mode = "normal"
        self.operation: str | None = None
        self.op_t0: float | None = None  # monotonic time of the operation's start
        self.answers: dict[str, str] = {}  # hub command id -> outcome planned
        self.joins = 0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    # -- connection ---------------------------------------------------------------------------

    async def join(self) -> None:
        """Connect the WebSocket, publish video (and audio), wait until the peer connection is up."""
        client = HubClient(self.url, self.token, client_id=self.dept.id, reconnect=True)
        client.on_command = self._on_command
        media: MediaClient | None = None
        try:
            welcome = await client.connect()
            b = self.behaviour
            number = self.index + 1
            video = EpisodeVideo(DepartmentVideo(number, self.dept.name_zh, self.dept.name_en,
                                                 fps=b.fps), lambda: self.video_mode)
            media = MediaClient(ice=self.ice, video=video,
                                audio=DepartmentAudio(number) if b.audio else None,
                                video_slots=1, audio_slots=0)
            client.on_frame = self._frame_handler(media)
            await asyncio.wait_for(media.connect_over(client, timeout=JOIN_TIMEOUT_S),
                                   JOIN_TIMEOUT_S + 5)
        except Exception as exc:  # any failure to join: close what was opened, report it
            if media is not None:
                await media.close()
            await client.close()
            raise BotError(f"{self.dept.id}: cannot join: {exc}") from exc
        self.client, self.media = client, media
        self.joins += 1
        self.online.set()
        op = (welcome.get("state") or {}).get("operation")
        if op and op.get("id") != self.operation:  # joined while an operation runs
            elapsed = (int(welcome["hub_time_us"]) - int(op["started_us"])) / 1e6
            self._operation_started(str(op["id"]), time.monotonic() - max(elapsed, 0.0))

    async def leave(self, *, dropout: bool = False) -> None:
        """Close the socket and the peer connection: at the end, saying so (`rtc.leave`, so
        the hub does not log an outage), or as a network dropout (the connection just dies)."""
        self.online.clear()
        media, client = self.media, self.client
        self.media = self.client = None
        if client is not None and not dropout:
            with contextlib.suppress(HubClientError):
                await client.request("rtc.leave")
        if media is not None:
            await media.close()
        if client is not None:
            await (client.abort() if dropout else client.close())

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.leave()

    def _frame_handler(self, media: MediaClient) -> Callable[[dict[str, Any]], None]:
        def on_frame(frame: dict[str, Any]) -> None:
            media.on_frame(frame)
            if frame.get("type") == "event":
                ev = frame.get("event") or {}
                if ev.get("kind") == "operation.started" and ev.get("op") != self.operation:
                    self._operation_started(str(ev.get("op")), time.monotonic())
        return on_frame

    def _spawn(self, key: str, coro: Any) -> None:
        if key in self._tasks or self._closing:
            coro.close()
            return
        self._tasks[key] = asyncio.ensure_future(coro)

    # -- time ---------------------------------------------------------------------------------

    async def _sleep_drill(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.speed)

    async def _until_drill(self, at: float) -> None:
        assert self.op_t0 is not None
        delay = self.op_t0 + at / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- behaviour ----------------------------------------------------------------------------

    def _operation_started(self, op: str, t0: float) -> None:
        self.operation, self.op_t0 = op, t0
        self._spawn(f"checkin/{op}", self._checkin(op))
        for ep in plan_episodes(self.behaviour, self.seed, self.index):
            self._spawn(f"{ep.kind}/{op}", self._episode(ep))

    async def _checkin(self, op: str) -> None:
        await self._until_drill(checkin_delay(self.behaviour, self.seed, self.index))
        await self._request(f"{self.dept.id}/checkin/{op}", "dept.checkin",
                            client_ts_us=time.time_ns() // 1000)

    async def _episode(self, ep: Episode) -> None:
        await self._until_drill(ep.start)
        self.say(f"{self.dept.id}: {ep.kind} for {ep.duration:g} s (drill time)")
        if ep.kind == "dropouts":
            await self.leave(dropout=True)
            await self._sleep_drill(ep.duration)
            for attempt in range(5):
                try:
                    await self.join()
                    break
                except BotError as exc:
                    self.say(f"{exc} (attempt {attempt + 1})")
                    await asyncio.sleep(1.0)
            return
        self.video_mode = ep.kind
        try:
            await self._sleep_drill(ep.duration)
        finally:
            self.video_mode = "normal"

    def _on_command(self, frame: dict[str, Any]) -> None:
        cmd = frame.get("command") or {}
        cid = cmd.get("command_id")
        if isinstance(cid, str):
            self._spawn(f"command/{cid}", self._answer(cmd))

    async def _answer(self, cmd: dict[str, Any]) -> None:
        cid = str(cmd["command_id"])
        scenario_id = str(cmd.get("inject_id") or cid)
        plan = plan_command(self.behaviour, self.seed, self.index, scenario_id)
        self.answers[cid] = plan.outcome
        prefix = f"{self.dept.id}/{cid}"
        if not await self._request(f"{prefix}/delivered", "command.respond", command_id=cid,
                                   response="delivered"):
            return
        if plan.outcome == "miss":
            return
        await self._sleep_drill(plan.delays["receipt"])
        if plan.outcome == "decline":
            await self._request(f"{prefix}/declined", "command.respond", command_id=cid,
                                response="declined", reason=self.behaviour.decline_reason)
            return
        if not await self._request(f"{prefix}/receipt", "command.respond", command_id=cid,
                                   response="receipt"):
            return
        for stage in ("on_scene", "completed"):
            if stage in (cmd.get("requires") or []):
                await self._sleep_drill(plan.delays[stage])
                if not await self._request(f"{prefix}/{stage}", "command.respond", command_id=cid,
                                           response=stage):
                    return

    async def _request(self, msg_id: str, type_: str, **fields: Any) -> bool:
        """Send once online, retrying with the same message id (the hub logs it once)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                await asyncio.wait_for(self.online.wait(), OFFLINE_WAIT_S)
            except TimeoutError:
                return False
            client = self.client
            if client is None:
                await asyncio.sleep(0.25)
                continue
            if "client_ts_us" in fields or type_ == "command.respond":
                fields["client_ts_us"] = time.time_ns() // 1000
            try:
                await client.request(type_, msg_id=msg_id, **fields)
                return True
            except HubClientError as exc:
                if exc.code not in RETRYABLE:
                    self.say(f"{self.dept.id}: {type_} refused: {exc}")
                    return False
            await asyncio.sleep(0.25)
        return False

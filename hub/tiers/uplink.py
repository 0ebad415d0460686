"""The town side of a tier link: one WebSocket to the city hub (role `hub`), city commands
issued here as linked commands, the town's aggregate answers sent up exactly once.

What the city must still learn is read from this hub's own log, not kept in memory: a linked
`command.issued` (payload `link`) says which city command it answers, and a `link.acked` (the
city's ack, with its seq and signed head) says which stage the city has logged. On (re)connect
the city replays the commands still pending for the town; every stage reached here and not
acked there is sent again with the same message id (`link:CITY_CMD:STAGE`), so the city logs
it once however often the link drops. The city also replays its cancels naming the town; one
already applied here (a `command.cancelled` with `link`) changes nothing.

Video goes over WHIP/WHEP beside the socket (hub/sfu/tiervideo.py): the city's `link.callup`
and `link.pushes` frames say which town feed to send up and which city feeds to pull down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hub.api.errors import HubError
from hub.api.handlers.commands import resolver
from hub.client import HubClient, HubClientError
from hub.commands import RESPONSE_EVENTS, CommandError, normalise_issue
from hub.eventlog import Actor
from hub.logformat import Event
from hub.tiers.aggregate import TownStage, reached

if TYPE_CHECKING:
    from hub.service import Hub

UPLINK = Actor("uplink", None)  # the actor of what the city link makes this hub log
TRANSIENT = frozenset({"timeout", "closed", "unreachable", "rate_limited", "log_unavailable"})
RESYNC_S = 10.0  # clock offset measured again this often
MAX_BACKOFF_S = 2.0  # reconnect attempts: 0.2 s doubling to this (one TCP connect each)


class TownVideo(Protocol):
    """This town's video link to the city (hub/sfu/tiervideo.py's TierVideo)."""

    async def call_up(self, town: str, dept: str | None, fresh: bool = False) -> None:
        """Send `dept`'s feed up as the town's (None: stop); HubError if it cannot.
        `fresh`: set it up again even if it looks alive."""

    async def set_pushes(self, sources: list[str], fresh: bool = False) -> None:
        """Show the city's `sources` to this town's departments (and only those)."""

    async def close(self) -> None: ...


@dataclass
class Link:
    """A city command and the town command that carries it out."""

    city_command_id: str
    city_seq: int
    requires: list[str]
    town_command_id: str | None  # None: nobody here could take it (`refusal`)
    town_seq: int  # of the town's command.issued, or of its link.declined
    settled: set[str] = field(default_factory=set)  # responses the city acked (or refused)
    refusal: TownStage | None = None

    @property
    def finished(self) -> bool:
        """The city has learned the last stage it will get (or cancelled it for the town)."""
        return bool(self.settled & {"declined", "cancelled", self.requires[-1]})


class Uplink:
    """Keeps this (town) hub linked to the city hub at `url`."""

    def __init__(self, hub: Hub, url: str, token: str,
                 ssl_context: ssl.SSLContext | None = None,
                 video: TownVideo | None = None) -> None:
        self.hub = hub
        self.video = video  # None: this hub runs without video (call-ups are refused)
        self.url = url
        self.client = HubClient(url, token, client_id="uplink", request_timeout=5.0,
                                max_backoff=MAX_BACKOFF_S, ssl_context=ssl_context)
        self.links: dict[str, Link] = {}  # city command id -> link
        self.by_town: dict[str, str] = {}  # town command id -> city command id
        self.offset_us = 0  # city clock minus this hub's clock (best of a few pings)
        self.rtt_us = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._fold()
        self.hub.listeners.append(self._on_events)
        self.client.on_command = self._on_command
        self.client.on_frame = self._on_frame
        self._tasks.append(asyncio.create_task(self._run(), name="uplink"))

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._sending.values(), *self._background]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.client.close()
        if self.video is not None:
            await self.video.close()

    def _fold(self) -> None:
        """The links and what the city acked, from this hub's log."""
        for ev in [*self.hub.log.of_kind("command.issued"),
                   *self.hub.log.of_kind("link.declined")]:
            self._remember(ev)
        for ev in self.hub.log.of_kind("command.cancelled"):
            self._city_cancelled(ev)
        for ev in [*self.hub.log.of_kind("link.acked"), *self.hub.log.of_kind("link.refused")]:
            link = self.links.get(str(ev.payload.get("city_command_id")))
            if link is not None:
                link.settled.add(str(ev.payload.get("response")))

    def _remember(self, ev: Event) -> None:
        up = ev.payload.get("link")
        if ev.kind == "link.declined":
            p = ev.payload
            self.links[p["city_command_id"]] = Link(
                p["city_command_id"], int(p.get("city_seq") or 0), ["receipt"], None, ev.seq,
                refusal=TownStage("declined", ev.ts_us, [], f"{p['code']}: {p['message']}"[:1000]))
            return
        if ev.kind != "command.issued" or not isinstance(up, dict):
            return
        town_cid = str(ev.payload["command_id"])
        self.links[str(up["command_id"])] = Link(str(up["command_id"]), int(up["seq"]),
                                                 list(ev.payload["requires"]), town_cid, ev.seq)
        self.by_town[town_cid] = str(up["command_id"])

    @property
    def town(self) -> str | None:
        """This hub's department id in the city roster (once linked)."""
        dept = (self.client.welcome or {}).get("you", {}).get("dept")
        return dept if isinstance(dept, str) else None

    def _city_cancelled(self, ev: Event) -> None:
        """A cancel the city made (payload `link`): nothing more goes up for that command."""
        up = ev.payload.get("link")
        link = self.links.get(str(up.get("command_id"))) if isinstance(up, dict) else None
        if link is not None:
            link.settled.add("cancelled")

    async def _run(self) -> None:
        backoff, said = 0.2, ""
        while True:  # the first connection (HubClient reconnects by itself afterwards)
            try:
                await self.client.connect()
                break
            except HubClientError as exc:
                if exc.code != said:  # each kind of failure once on the console
                    said = exc.code
                    print(f"commandhub: uplink to {self.url}: {exc} (retrying)",
                          file=sys.stderr, flush=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        print(f"commandhub: uplink to {self.url}: linked as "
              f"{(self.client.welcome or {}).get('you')}", flush=True)
        last_sync = -RESYNC_S * 1e9
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            if not self.client.connected.is_set():
                continue
            if self.hub.clock.mono_ns() - last_sync >= RESYNC_S * 1e9:
                last_sync = self.hub.clock.mono_ns()
                with contextlib.suppress(HubClientError):
                    await self._measure_clock()
            for cid, link in list(self.links.items()):
                if not link.finished:
                    self._send_soon(cid)

    async def _measure_clock(self) -> None:
        """NTP-like: three pings, keep the one with the shortest round trip."""
        best: tuple[int, int] | None = None
        for _ in range(3):
            t0 = self.hub.clock.wall_us()
            ack = await self.client.request("ping")
            t1 = self.hub.clock.wall_us()
            rtt, offset = t1 - t0, int(ack["hub_time_us"]) - (t0 + t1) // 2
            if best is None or rtt < best[0]:
                best = (rtt, offset)
        assert best is not None
        self.rtt_us, self.offset_us = best

    # -- down: a city command becomes a town command ----------------------------------------

    async def _on_command(self, frame: dict[str, Any]) -> None:
        cmd = frame.get("command")
        if not isinstance(cmd, dict) or not isinstance(cmd.get("command_id"), str):
            return
        cid = cmd["command_id"]
        async with self.hub.lock(("uplink", cid)):
            if cid not in self.links:
                await self._link(cmd, str(frame.get("cause")))
        self._wake.set()

    async def _link(self, cmd: dict[str, Any], cause: str) -> None:
        hub = self.hub
        level = hub.state.operation.level if hub.state.operation else str(cmd.get("level"))
        within = cmd.get("within")
        targets = (within.get(self.town) if isinstance(within, dict) else None) or ["all"]
        request = {"targets": targets, "text": cmd["text"], "priority": cmd.get("priority"),
                   "level": cmd.get("level"), "requires": cmd.get("requires"),
                   "deadlines": cmd.get("deadlines"), "critical": cmd.get("critical")}
        try:
            fields = normalise_issue({k: v for k, v in request.items() if v is not None},
                                     level=level, resolve=resolver(hub))
        except (CommandError, HubError) as exc:  # nobody here can take it: declined up
            ev = await hub.emit("link.declined", {
                "city_command_id": cmd["command_id"], "city_seq": cmd.get("seq"),
                "targets": targets, "code": exc.code, "message": str(exc)}, UPLINK)
            self._remember(ev)
            return
        ev = await hub.emit("command.issued", {
            "command_id": hub.new_command_id(), **fields,
            "client_msg_id": f"link:{cmd['command_id']}",
            "link": {"hub": self.url, "command_id": cmd["command_id"], "seq": cmd.get("seq"),
                     "issued_us": cmd.get("issued_us"), "cause": cause,
                     "targets": cmd.get("targets"), "offset_us": self.offset_us}}, UPLINK)
        self._remember(ev)

    def _on_frame(self, frame: dict[str, Any]) -> None:
        """A city cancel of a linked command cancels the town's: live, or replayed by the city
        on (re)connect when it was made while the uplink was down (applied once: see _cancel)."""
        ev = frame.get("event") if frame.get("type") == "event" else None
        if isinstance(ev, dict) and ev.get("kind") == "command.cancelled":
            self._spawn(self._cancel(ev))
        elif frame.get("type") == "link.query":
            self._spawn(self._report(frame))
        elif frame.get("type") == "link.callup":
            self._spawn(self._callup(frame))
        elif frame.get("type") == "link.pushes" and self.video is not None:
            sources = frame.get("sources")
            if isinstance(sources, list):  # on (re)connect: pulled again, the city may be new
                self._spawn(self.video.set_pushes([x for x in sources if isinstance(x, str)],
                                                  fresh=frame.get("cause") == "connect"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _report(self, frame: dict[str, Any]) -> None:
        """The city asks where each department here stands on one of its commands: answered
        from this hub's state (folded from its log); nothing linked, no departments."""
        link = self.links.get(str(frame.get("command_id")))
        cmd = self.hub.state.commands.commands.get(
            link.town_command_id or "") if link is not None else None
        progs = cmd.progress if cmd is not None else {}
        with contextlib.suppress(HubClientError):  # the city says unreachable after 5 s
            await self.client.request(
                "link.report", query=frame.get("query"),
                town_command_id=cmd.id if cmd is not None else None,
                town_time_us=self.hub.clock.wall_us(),
                states={d: p.state for d, p in progs.items()},
                times_us={d: dict(p.times_us) for d, p in progs.items()},
                reasons={d: p.reason for d, p in progs.items() if p.reason})

    async def _callup(self, frame: dict[str, Any]) -> None:
        """The city calls up one department's feed (`dept` null: releases it); answered with
        `link.callup_ack` when the frame asks (`query`), with the failure's code if any."""
        dept = frame.get("dept")
        code = message = None
        try:
            if self.video is None:
                raise HubError("video_unavailable", "this town hub runs without video")
            town = self.town
            if town is None or not (dept is None or isinstance(dept, str)):
                raise HubError("bad_request", "a call-up names a department (or null)")
            await self.video.call_up(town, dept, fresh=not frame.get("query"))  # a replay
        except HubError as exc:
            code, message = exc.code, str(exc)
        if frame.get("query"):
            with contextlib.suppress(HubClientError):  # the city says unreachable
                await self.client.request("link.callup_ack", query=frame["query"], code=code,
                                          message=message)

    async def _cancel(self, ev: dict[str, Any]) -> None:
        p = ev.get("payload") or {}
        town = self.town
        cid = str(p.get("command_id"))
        if town not in (p.get("departments") or []):
            return
        async with self.hub.lock(("uplink", cid)):  # after a link being made for it
            link = self.links.get(cid)
            if link is None or link.town_command_id is None:
                return
            cmd = self.hub.state.commands.commands.get(link.town_command_id)
            pending = [d for d in cmd.progress if cmd.pending_for(d)] if cmd else []
            if not pending:
                return
            await self.hub.emit("command.cancelled", {
                "command_id": link.town_command_id, "departments": pending,
                "reason": f"cancelled by the city ({link.city_command_id}): "
                          f"{p.get('reason') or ''}".strip()[:1000],
                "client_msg_id": f"link-cancel:{link.city_command_id}",
                "link": {"command_id": link.city_command_id, "seq": ev.get("seq")}}, UPLINK)

    # -- up: the town's aggregate answers ---------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        for ev in events:
            if ev.kind == "command.cancelled":
                self._city_cancelled(ev)
            if ev.kind in RESPONSE_EVENTS or ev.kind == "command.cancelled":
                cid = self.by_town.get(str(ev.payload.get("command_id")))
                if cid is not None:
                    self._send_soon(cid)

    def _send_soon(self, cid: str) -> None:
        if cid in self._sending or not self.client.connected.is_set():
            return
        link = self.links[cid]
        cmd = self.hub.state.commands.commands.get(link.town_command_id or "")
        if link.finished or (cmd is None and link.refusal is None):
            return
        stages = reached(cmd, link.requires) if cmd is not None else [link.refusal]
        todo = [st for st in stages if st is not None and st.response not in link.settled]
        if todo:
            task = asyncio.create_task(self._send(link, todo), name=f"uplink-{cid}")
            self._sending[cid] = task
            task.add_done_callback(lambda _t: self._sent(cid))

    def _sent(self, cid: str) -> None:
        """One send finished: a stage reached meanwhile goes next."""
        self._sending.pop(cid, None)
        self._send_soon(cid)

    async def _send(self, link: Link, stages: list[TownStage]) -> None:
        for st in stages:
            try:
                ack = await self.client.request(
                    "link.respond", msg_id=f"link:{link.city_command_id}:{st.response}",
                    command_id=link.city_command_id, response=st.response, reason=st.reason,
                    town_command_id=link.town_command_id, town_seq=link.town_seq,
                    town_ts_us=st.ts_us, offset_us=self.offset_us, rtt_us=self.rtt_us,
                    departments=st.departments, head=self._head())
            except HubClientError as exc:
                if exc.code in TRANSIENT:
                    return  # sent again on reconnect (the pump runs every second)
                await self.hub.emit("link.refused", {
                    "city_command_id": link.city_command_id, "response": st.response,
                    "town_command_id": link.town_command_id, "code": exc.code,
                    "message": str(exc)}, UPLINK)
                link.settled.add(st.response)
                continue
            await self.hub.emit("link.acked", {
                "city_command_id": link.city_command_id, "response": st.response,
                "town_command_id": link.town_command_id, "city_seq": ack.get("seq"),
                "city_state": ack.get("state"), "duplicate": bool(ack.get("duplicate")),
                "head": ack.get("head")}, UPLINK)
            link.settled.add(st.response)

    def _head(self) -> str:
        """This hub's current head, signed, as the city logs it with the answer."""
        signer = self.hub.log.signer
        assert signer is not None
        return json.dumps(signer.sign(self.hub.log.head, self.hub.clock.wall_us(),
                                      "link").to_dict(), sort_keys=True)

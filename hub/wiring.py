"""Plugs the video hub into a running hub: signaling and routing requests, slots, stats, outages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from hub.auth import Role
from hub.consoles import attach_consoles
from hub.eventlog import HUB, Actor
from hub.logformat import Event
from hub.media_wiring import attach_media
from hub.replay.web import attach_replay
from hub.server import METRICS_EXTRAS_KEY, STATE_EXTRAS_KEY
from hub.service import Hub, HubError, Session
from hub.sfu import router
from hub.sfu.ice import IceConfig, installed_automatically, installed_hosts
from hub.sfu.videohub import VideoError, VideoHub

COMMANDER = Actor("commander", "center")
VIDEO_HUB_KEY = web.AppKey("video_hub", VideoHub)


def attach_video(hub: Hub, ice: IceConfig) -> VideoHub:
    """A VideoHub whose events go to the hub's log and whose frames go to the sessions."""

    async def emit(kind: str, dept: str | None, payload: dict[str, Any]) -> None:
        body = dict(payload)
        if dept is not None:
            body.setdefault("dept", dept)
        await hub.emit(kind, body, COMMANDER if kind == "route.changed" else HUB)

    async def on_slots(participant_id: str, info: dict[str, Any]) -> None:
        s = hub.sessions.get(participant_id)
        if s is not None:
            s.send({"v": 1, "type": "rtc.slots", **info})

    async def on_error(participant_id: str, code: str, message: str) -> None:
        s = hub.sessions.get(participant_id)
        if s is not None:
            s.send({"v": 1, "type": "error", "re": None, "code": code, "message": message})

    video = VideoHub(emit=emit, groups=hub.roster.groups, ice=ice, on_slots=on_slots,
                     on_error=on_error, departments=hub.roster.ids)

    hub.video = VideoRequests(video, hub.roster.valid_ids())

    async def closed(s: Session, reason: str) -> None:
        await video.leave(s.id, reason)

    hub.on_session_closed.append(closed)
    _send_tier_pushes(hub, video)
    return video


def _send_tier_pushes(hub: Hub, video: VideoHub) -> None:
    """Tell each linked town hub which feeds of this hub are pushed to it (`link.pushes`):
    when it links, and after every route change that alters its list. The town pulls each
    one by WHEP and shows it to its own departments (hub/sfu/tiervideo.py)."""
    sent: dict[str, list[str]] = {}  # session id -> the list it was last sent

    def send(s: Session, cause: str = "route") -> None:
        if s.principal.role is not Role.HUB or not s.principal.dept:
            return
        sources = router.pushed_to(video.routes, s.principal.dept)
        if sent.get(s.id) != sources:
            sent[s.id] = sources
            s.send({"v": 1, "type": "link.pushes", "sources": sources, "cause": cause})

    def on_events(events: list[Event]) -> None:
        if any(ev.kind == "route.changed" for ev in events):
            for s in list(hub.sessions.values()):
                send(s)

    async def closed(s: Session, reason: str) -> None:
        sent.pop(s.id, None)

    hub.listeners.append(on_events)
    hub.on_session_opened.append(lambda s: send(s, "connect"))
    hub.on_session_closed.append(closed)


@contextlib.contextmanager
def _as_hub_errors(valid_ids: str = "") -> Iterator[None]:
    try:
        yield
    except VideoError as exc:
        if valid_ids and exc.code == "bad_route" and "unknown" in exc.message:
            raise HubError(exc.code, f"{exc} ({valid_ids})") from exc  # name the valid ids
        raise HubError(exc.code, str(exc)) from exc


class VideoRequests:
    """The video hub as the message table's handlers see it (VideoPort in
    hub/api/handlers/video.py): its VideoErrors become HubErrors with the same code."""

    def __init__(self, video: VideoHub, valid_ids: str = "") -> None:
        self.video = video
        self.valid_ids = valid_ids  # appended to an unknown-department error

    async def offer(self, s: Session, sdp: str) -> dict[str, Any]:
        with _as_hub_errors():
            answer = await self.video.handle_offer(s.id, str(s.principal.role), s.principal.dept,
                                                   sdp)
        return {"sdp": answer, "slots": self.video.slot_info(s.id)}

    async def leave(self, s: Session) -> None:
        await self.video.leave(s.id, "left")

    async def push(self, source: str, targets: list[str] | None) -> None:
        with _as_hub_errors(self.valid_ids):
            await self.video.push(source, "all" if targets in (None, ["all"]) else targets)

    async def unpush(self, source: str) -> None:
        with _as_hub_errors():
            await self.video.unpush(source)

    async def group(self, group: str, on: bool) -> None:
        with _as_hub_errors():
            await self.video.set_group_channel(group, on)

    async def link(self, a: str, b: str) -> None:
        with _as_hub_errors():
            await self.video.link(a, b)

    async def unlink(self, a: str, b: str) -> None:
        with _as_hub_errors():
            await self.video.unlink(a, b)

    async def mute(self, dept: str, muted: bool) -> None:
        with _as_hub_errors():
            await self.video.mute(dept, muted)

    async def talk(self, dept: str | None) -> None:
        with _as_hub_errors():
            await self.video.talk_to(dept)


async def attach_extensions(app: web.Application, hub: Hub, opts: Any) -> None:
    """Attach video routing, the consoles' routes and media (health, wall, recording, ingest,
    WHIP/WHEP) to a hub's web app."""
    ice = IceConfig(hosts=tuple(opts.ice_hosts))
    video = attach_video(hub, ice)
    app[VIDEO_HUB_KEY] = video
    app[STATE_EXTRAS_KEY].append(lambda: {"video": video.stats()})
    app[STATE_EXTRAS_KEY].append(lambda: {"ice": {"hosts": list(installed_hosts() or ()),
                                                  "automatic": installed_automatically()}})
    app[METRICS_EXTRAS_KEY].append(video.metrics_text)
    attach_consoles(app, hub)
    attach_replay(app, hub.data_dir)

    async def close_video(_: web.Application) -> None:
        await video.close()

    app.on_cleanup.append(close_video)
    attach_media(app, hub, video, opts)

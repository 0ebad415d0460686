"""Plugs the video hub into a running hub: signaling and routing requests, slots, stats, outages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.consoles import attach_consoles
from hub.eventlog import HUB, Actor
from hub.ice import IceConfig, installed_automatically, installed_hosts
from hub.media_wiring import attach_media
from hub.server import METRICS_EXTRAS_KEY, STATE_EXTRAS_KEY
from hub.service import Hub, HubError, Session
from hub.videohub import VideoError, VideoHub

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

    def video_error(exc: VideoError) -> HubError:
        if exc.code == "bad_route" and "unknown" in exc.message:  # name the valid ids
            return HubError(exc.code, f"{exc} ({hub.roster.valid_ids()})")
        return HubError(exc.code, str(exc))

    async def offer(s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        s.principal.require("video.view")
        try:
            answer = await video.handle_offer(s.id, str(s.principal.role), s.principal.dept,
                                              msg.get("sdp"))  # type: ignore[arg-type]
        except VideoError as exc:
            raise video_error(exc) from exc
        return {"sdp": answer, "slots": video.slot_info(s.id)}

    def route(action: str) -> Any:
        async def handler(s: Session, msg: dict[str, Any]) -> dict[str, Any]:
            s.principal.require("route.change")
            try:
                if action == "push":
                    await video.push(_str(msg, "source"), msg.get("targets", "all"))
                elif action == "unpush":
                    await video.unpush(_str(msg, "source"))
                elif action == "group":
                    await video.set_group_channel(_str(msg, "group"), bool(msg.get("on", True)))
                elif action == "link":
                    await video.link(_str(msg, "a"), _str(msg, "b"))
                elif action == "unlink":
                    await video.unlink(_str(msg, "a"), _str(msg, "b"))
                elif action == "mute":
                    await video.mute(_str(msg, "dept"), bool(msg.get("muted", True)))
                elif action == "talk":
                    dept = msg.get("dept")
                    await video.talk_to(dept if isinstance(dept, str) else None)
            except VideoError as exc:
                raise video_error(exc) from exc
            return {}
        return handler

    async def leave(s: Session, msg: dict[str, Any]) -> dict[str, Any]:
        """The participant stops its media on purpose (not an outage)."""
        await video.leave(s.id, "left")
        return {}

    hub.extra_handlers["rtc.offer"] = offer
    hub.extra_handlers["rtc.leave"] = leave
    for action in ("push", "unpush", "group", "link", "unlink", "mute", "talk"):
        hub.extra_handlers[f"route.{action}"] = route(action)

    async def closed(s: Session, reason: str) -> None:
        await video.leave(s.id, reason)

    hub.on_session_closed.append(closed)
    return video


def _str(msg: dict[str, Any], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str) or not value:
        raise HubError("bad_request", f"{key}: required, a department id")
    return value


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

    async def close_video(_: web.Application) -> None:
        await video.close()

    app.on_cleanup.append(close_video)
    attach_media(app, hub, video, opts)

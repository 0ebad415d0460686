"""Video signaling and routing requests (rtc.offer, rtc.leave, route.*), run by the video hub.

The hub's core knows the video plane only through `VideoPort` (hub/wiring.py adapts the
VideoHub to it and turns its errors into HubErrors); without one, video requests get
`video_unavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from hub.api.errors import HubError
from hub.api.spec import Ack, Request

if TYPE_CHECKING:
    from hub.service import Hub, Session


class VideoPort(Protocol):
    async def offer(self, s: Session, sdp: str) -> Ack:
        """Answer the session's SDP offer: `{sdp, slots}`."""

    async def leave(self, s: Session) -> None:
        """The session stops its media on purpose (no outage is logged)."""

    async def push(self, source: str, targets: list[str] | None) -> None:
        """Horizontal dispatch: show `source` to `targets` (None: everyone)."""

    async def unpush(self, source: str) -> None: ...

    async def group(self, group: str, on: bool) -> None: ...

    async def link(self, a: str, b: str) -> None: ...

    async def unlink(self, a: str, b: str) -> None: ...

    async def mute(self, dept: str, muted: bool) -> None: ...

    async def talk(self, dept: str | None) -> None:
        """The commander's audio to one department only (None: to all)."""


def _port(hub: Hub) -> VideoPort:
    if hub.video is None:
        raise HubError("video_unavailable", "this hub runs without video")
    return hub.video


async def offer(hub: Hub, s: Session, req: Request) -> Ack:
    return await _port(hub).offer(s, req["sdp"])


async def leave(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).leave(s)
    return {}


async def push(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).push(req["source"], req["targets"])
    return {}


async def unpush(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).unpush(req["source"])
    return {}


async def group(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).group(req["group"], req["on"])
    return {}


async def link(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).link(req["a"], req["b"])
    return {}


async def unlink(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).unlink(req["a"], req["b"])
    return {}


async def mute(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).mute(req["dept"], req["muted"])
    return {}


async def talk(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).talk(req["dept"])
    return {}

"""Video signaling and routing requests (rtc.offer, rtc.leave, route.*), run by the video hub.

The hub's core knows the video plane only through `VideoPort` (hub/wiring.py adapts the
VideoHub to it and turns its errors into HubErrors); without one, video requests get
`video_unavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from hub.api.errors import HubError
from hub.api.spec import Ack, Handler, Request

if TYPE_CHECKING:
    from hub.service import Hub, Session

ROUTE_ACTIONS = ("push", "unpush", "group", "link", "unlink", "mute", "talk")


class VideoPort(Protocol):
    async def offer(self, s: Session, sdp: str) -> Ack:
        """Answer the session's SDP offer: `{sdp, slots}`."""

    async def leave(self, s: Session) -> None:
        """The session stops its media on purpose (no outage is logged)."""

    async def route(self, action: str, req: Request) -> None:
        """One of ROUTE_ACTIONS with its validated fields."""


def _port(hub: Hub) -> VideoPort:
    if hub.video is None:
        raise HubError("video_unavailable", "this hub runs without video")
    return hub.video


async def offer(hub: Hub, s: Session, req: Request) -> Ack:
    return await _port(hub).offer(s, req["sdp"])


async def leave(hub: Hub, s: Session, req: Request) -> Ack:
    await _port(hub).leave(s)
    return {}


def route(action: str) -> Handler:
    """The handler of `route.<action>`."""
    async def handler(hub: Hub, s: Session, req: Request) -> Ack:
        await _port(hub).route(action, req)
        return {}
    handler.__name__ = f"route_{action}"
    return handler

"""Connection-level requests: ping, clock report, subscribe (event replay, then live events)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.api.audience import audience
from hub.api.spec import Ack, Request

if TYPE_CHECKING:
    from hub.service import Hub, Session


async def ping(hub: Hub, s: Session, req: Request) -> Ack:
    return {"hub_time_us": hub.clock.wall_us()}


async def clock(hub: Hub, s: Session, req: Request) -> Ack:
    """The client's clock offset estimate, logged once per connection (the hub's time counts)."""
    if not s.sent_clock:
        s.sent_clock = True
        await hub.emit("presence.clock", {"offset_ms": round(req["offset_ms"], 3),
                                          "rtt_ms": round(req["rtt_ms"], 3)}, s.actor)
    return {}


async def subscribe(hub: Hub, s: Session, req: Request) -> Ack:
    """Replay what this role may see after `after`, then send live events."""
    after = req["after"] if req["after"] is not None else hub.log.head.seq
    role, dept = str(s.principal.role), s.principal.dept
    s.subscribed = False
    seq = after
    while batch := hub.log.after(seq, 2000):
        for ev in batch:
            if audience(ev).admits(role, dept):
                s.send({"v": 1, "type": "event", "event": ev.to_dict()})
        seq = batch[-1].seq
    s.subscribed = True
    return {"after": after, "head": seq}

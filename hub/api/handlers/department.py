"""A department's own reports: field reports (现场报告) and check-in (报到) for the operation."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from hub.api.errors import HubError
from hub.api.handlers.commands import own_dept, taking_part
from hub.api.spec import Ack, Request
from hub.logformat import Event

if TYPE_CHECKING:
    from hub.service import Hub, Session


async def report_field(hub: Hub, s: Session, req: Request) -> Event:
    dept = own_dept(s, req)
    cid = req["command_id"]
    if cid is not None and dept not in hub.state.commands.get(cid).progress:
        raise HubError("not_targeted", f"{cid} is not addressed to {dept}")
    return await hub.emit("report.field", {"report_id": f"R{uuid.uuid4().hex[:10]}",
                                           "command_id": cid, "text": req["text"], "dept": dept,
                                           "client_msg_id": req["id"]}, s.actor)


def report_ack(hub: Hub, ev: Event) -> Ack:
    return {"report_id": ev.payload["report_id"], "seq": ev.seq}


async def checkin(hub: Hub, s: Session, req: Request) -> Event | Ack:
    """Once per operation: a second check-in (whatever its id) answers the first one's time."""
    hub.require_operation()
    dept = own_dept(s, req)
    active = taking_part(hub)
    if active is not None and dept not in active:
        raise HubError("not_participant", f"{dept} does not take part in this operation "
                       "(not named at its start, or excused): nothing to check in to")
    async with hub.lock(("checkin", dept)):
        if dept in hub.state.checked_in:
            return {"duplicate": True, "checked_in_us": hub.state.checked_in[dept]}
        return await hub.emit("dept.checked_in", {"client_ts_us": req["client_ts_us"],
                                                  "client_msg_id": req["id"]}, s.actor)


def checkin_ack(hub: Hub, ev: Event) -> Ack:
    return {"seq": ev.seq, "checked_in_us": ev.ts_us}

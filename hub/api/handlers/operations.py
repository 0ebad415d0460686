"""Operations (drills and incidents): start, end, level, pause, resume, injects, excusing a department."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from hub.api.errors import HubError
from hub.api.spec import Ack, Request
from hub.logformat import Event

if TYPE_CHECKING:
    from hub.service import Hub, Session

OP_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


async def start(hub: Hub, s: Session, req: Request) -> Event:
    async with hub.lock("operation"):
        if hub.state.operation is not None:
            raise HubError("operation_running",
                           f"operation {hub.state.operation.id} is still running")
        kind = req["kind"]
        name = req["operation_id"] or uuid.uuid4().hex[:8]
        op_id = name if name.startswith(kind + "-") else f"{kind}-{name}"
        if not OP_ID_RE.match(op_id):
            raise HubError("bad_request", "operation_id: letters, digits, _ . : - only")
        if op_id in hub.seen_operations():
            raise HubError("duplicate", f"operation {op_id} already exists in this log")
        try:
            participants = hub.roster.resolve(req["participants"] or ["all"])
        except KeyError as exc:
            raise HubError("unknown_target",
                           f"participants: no department or group {exc.args[0]!r}") from None
        payload = {"title": req["title"], "kind": kind, "level": req["level"],
                   "scenario": req["scenario"], "speed": req["speed"],
                   "roster": hub.roster.to_list(), "participants": participants,
                   "client_msg_id": req["id"]}
        rec = hub.record("operation.started", payload, s.actor, op=op_id, op_kind=kind)
        ev = (await hub.submit([rec]))[0]
    hub.close_wrong_operation()
    return ev


async def end(hub: Hub, s: Session, req: Request) -> Event:
    async with hub.lock("operation"):
        hub.require_operation()
        ev = await hub.emit("operation.ended", {"reason": req["reason"] or "",
                                                "client_msg_id": req["id"]}, s.actor)
    hub.close_wrong_operation()
    return ev


def operation_ack(hub: Hub, ev: Event) -> Ack:
    return {"operation": ev.op, "seq": ev.seq}


async def level(hub: Hub, s: Session, req: Request) -> Event | Ack:
    op = hub.require_operation()
    if req["level"] == op.level:
        return {"level": op.level, "unchanged": True}
    return await hub.emit("operation.level_changed",
                          {"from": op.level, "to": req["level"], "reason": req["reason"] or "",
                           "client_msg_id": req["id"]}, s.actor)


def level_ack(hub: Hub, ev: Event) -> Ack:
    return {"level": ev.payload["to"], "seq": ev.seq}


async def pause(hub: Hub, s: Session, req: Request) -> Event:
    if hub.require_operation().paused:
        raise HubError("invalid_transition", "already paused")
    return await hub.emit("operation.paused", {"client_msg_id": req["id"]}, s.actor)


async def resume(hub: Hub, s: Session, req: Request) -> Event:
    if not hub.require_operation().paused:
        raise HubError("invalid_transition", "not paused")
    return await hub.emit("operation.resumed", {"client_msg_id": req["id"]}, s.actor)


async def release_inject(hub: Hub, s: Session, req: Request) -> Event:
    """Log a scenario inject's release (its `inject_type` becomes the event's `type`)."""
    hub.require_operation()
    payload = {k: req[k] for k in ("inject_id", "title", "planned_offset_s", "actual_offset_s")}
    payload["type"] = req["inject_type"]
    payload["client_msg_id"] = req["id"]
    return await hub.emit("inject.released", payload, s.actor)


async def excuse(hub: Hub, s: Session, req: Request) -> Event:
    """A participant excused during the operation (scoring treats it as not applicable)."""
    op = hub.require_operation()
    dept = req["dept"]
    if dept not in hub.roster.by_id:
        raise HubError("unknown_target", f"dept: no department {dept!r}")
    if dept not in op.participants:
        raise HubError("not_participant", f"{dept} does not take part in {op.id}")
    if dept in op.excused:
        raise HubError("invalid_transition", f"{dept} is already excused: {op.excused[dept]}")
    return await hub.emit("dept.excused", {"dept": dept, "reason": req["reason"],
                                           "client_msg_id": req["id"]}, s.actor)

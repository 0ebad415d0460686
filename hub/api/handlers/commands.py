"""Commands: issue, respond (a department's receipt, on scene, completed, declined), cancel, 催办."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub.api.errors import Forbidden, HubError
from hub.api.spec import Ack, Request
from hub.commands import EVENT_STATE, STATE_EVENT, normalise_issue
from hub.eventlog import HUB
from hub.logformat import Event

if TYPE_CHECKING:
    from hub.service import Hub, Session


def own_dept(s: Session, req: Request) -> str:
    """The sender's department; a `dept` field naming another one is refused."""
    dept = s.principal.dept
    assert dept is not None  # the table lets only departments send these
    if req.get("dept") not in (None, dept):
        raise Forbidden(f"a department acts only as itself ({dept}), not {req['dept']}")
    return dept


def taking_part(hub: Hub) -> set[str] | None:
    """The departments taking part in the running operation and not excused (None: no
    operation, every roster department)."""
    op = hub.state.operation
    return None if op is None else set(op.participants) - set(op.excused)


def resolver(hub: Hub) -> Callable[[list[str]], list[str]]:
    """Targets -> department ids: `all` and groups mean those of them taking part; a
    department named on its own that does not take part (or was excused) is refused."""
    active = taking_part(hub)
    if active is None:
        return hub.roster.resolve

    def resolve(targets: list[str]) -> list[str]:
        ids = hub.roster.resolve(targets)  # unknown names: unknown_target
        op = hub.state.operation
        assert op is not None
        for t in targets:
            if t in op.excused:
                raise HubError("not_participant", f"targets: {t} was excused from this "
                               f"operation ({op.excused[t]})")
            if t in hub.roster.by_id and t not in active:
                raise HubError("not_participant", f"targets: {t} does not take part in this "
                               f"operation (taking part: {', '.join(sorted(active))})")
        kept = [d for d in ids if d in active]
        if not kept:
            raise HubError("not_participant", f"targets: none of {', '.join(targets)} takes part "
                           f"in this operation (taking part: {', '.join(sorted(active))})")
        return kept
    return resolve


async def issue(hub: Hub, s: Session, req: Request) -> Event:
    level = hub.state.operation.level if hub.state.operation else "III"
    request = {k: v for k, v in req.items() if v is not None}
    fields = normalise_issue(request, level=level, resolve=resolver(hub))
    within = {t: ids for t, ids in hub.roster.within(fields["targets"]).items()
              if t in fields["departments"]}  # `TOWN:ID` targets, for the town hubs
    payload = {"command_id": hub.new_command_id(), **fields, "client_msg_id": req["id"],
               **({"within": within} if within else {})}
    return await hub.emit("command.issued", payload, s.actor)


def issue_ack(hub: Hub, ev: Event) -> Ack:
    return {"command_id": ev.payload["command_id"], "seq": ev.seq,
            "departments": ev.payload["departments"]}


async def respond(hub: Hub, s: Session, req: Request) -> Event:
    return await record_response(hub, s, req, own_dept(s, req), req["client_ts_us"], {})


async def record_response(hub: Hub, s: Session, req: Request, dept: str, client_ts_us: Any,
                          extra: dict[str, Any]) -> Event:
    """Log `dept`'s response to a command (a department's, or a town hub's with `extra`)."""
    cid = req["command_id"]
    async with hub.lock((cid, dept)):
        new = hub.state.commands.check_response(cid, dept, req["response"])
        payload: dict[str, Any] = {"command_id": cid, "dept": dept, "client_msg_id": req["id"],
                                   "client_ts_us": client_ts_us, **extra}
        if new == "declined":
            if not req["reason"] or not req["reason"].strip():
                raise HubError("bad_request", "reason: required when declining")
            payload["reason"] = req["reason"]
        return await hub.emit(STATE_EVENT[new], payload, s.actor)


def respond_ack(hub: Hub, ev: Event) -> Ack:
    cid = ev.payload["command_id"]
    issued = hub.state.commands.commands[cid].issued_us
    return {"command_id": cid, "state": EVENT_STATE[ev.kind], "seq": ev.seq,
            "latency_s": round((ev.ts_us - issued) / 1e6, 6)}


async def cancel(hub: Hub, s: Session, req: Request) -> Event:
    cmd = hub.state.commands.get(req["command_id"])
    depts = [d for d in cmd.progress if cmd.pending_for(d)]
    if not depts:
        raise HubError("invalid_transition", f"{cmd.id} has nothing left to cancel")
    return await hub.emit("command.cancelled", {"command_id": cmd.id, "departments": depts,
                                                "reason": req["reason"] or "",
                                                "client_msg_id": req["id"]}, s.actor)


async def escalate(hub: Hub, s: Session, req: Request) -> Event:
    """催办: re-send an open command to its laggards and log the escalation."""
    cmd = hub.state.commands.get(req["command_id"])
    wanted = req["departments"] or [d for d in cmd.progress if cmd.pending_for(d)]
    if any(not cmd.pending_for(d) for d in wanted):
        raise HubError("invalid_transition", "departments: only those still pending")
    if not wanted:
        raise HubError("invalid_transition", f"{cmd.id} has no pending department")
    records = [hub.record("command.escalated", {"command_id": cmd.id, "departments": wanted,
                                                "note": req["note"] or "",
                                                "client_msg_id": req["id"]}, s.actor)]
    records += [hub.record("command.resent", {"command_id": cmd.id, "dept": d,
                                              "cause": "escalated"}, HUB)
                for d in wanted]
    events = await hub.submit(records)
    hub.send_commands(wanted, cmd, "escalated")
    return events[0]


def departments_ack(hub: Hub, ev: Event) -> Ack:
    """cancel and escalate: the seq, and the departments it reached."""
    return {"seq": ev.seq, "departments": ev.payload["departments"]}


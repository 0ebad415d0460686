"""A town hub's answers to a command for its town (`link.respond`, role `hub`; hub/tiers/),
and a question the city asks it on request (`link.status`, answered with `link.report`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

from hub.api.errors import BadRequest, HubError
from hub.api.handlers.commands import record_response, respond_ack
from hub.api.spec import Ack, Request
from hub.auth import Role
from hub.checkpoint import CheckpointError, SignedHead
from hub.logformat import Event

if TYPE_CHECKING:
    from hub.service import Hub, Session


def signed_head(text: str) -> dict[str, Any]:
    """The town's signed head (canonical JSON of hub.checkpoint.SignedHead), checked."""
    try:
        head = SignedHead.from_dict(json.loads(text))
        head.verify()
    except (ValueError, CheckpointError) as exc:
        raise BadRequest(f"head: not a valid signed head ({exc})") from exc
    return head.to_dict()


async def respond(hub: Hub, s: Session, req: Request) -> Event:
    """Log the town's answer as the town's response to the command, with the link."""
    town = s.principal.dept
    assert town is not None  # hub tokens always name their town
    head = signed_head(req["head"])
    link = {"hub": town, "command_id": req["town_command_id"], "seq": req["town_seq"],
            "ts_us": req["town_ts_us"], "offset_us": req["offset_us"], "rtt_us": req["rtt_us"],
            "departments": req["departments"] or []}
    return await record_response(hub, s, req, town, req["town_ts_us"],
                                 {"link": link, "head": head})


def respond_link_ack(hub: Hub, ev: Event) -> Ack:
    """As command.respond's ack, plus this hub's signed head (the town logs it)."""
    ack = respond_ack(hub, ev)
    signer = hub.log.signer
    if signer is not None:
        ack["head"] = signer.sign(hub.log.head, hub.clock.wall_us(), "link").to_dict()
    return ack


QUERY_TIMEOUT_S = 5.0  # a town hub answers link.query within this, or the city says unreachable


async def status(hub: Hub, s: Session, req: Request) -> Ack:
    """Where each of a town's departments stands on a city command, asked of the town hub
    (it answers from its own log); `unreachable` if its uplink is down or it stays silent."""
    cmd = hub.state.commands.get(req["command_id"])
    town = req["town"]
    if town not in cmd.progress:
        raise HubError("not_targeted", f"command {cmd.id} is not addressed to {town}")
    uplink = next((x for x in hub.sessions.values()
                   if x.principal.role is Role.HUB and x.principal.dept == town), None)
    if uplink is None:
        raise HubError("unreachable", f"{town}: no town hub is linked as it (uplink down)")
    qid = uuid.uuid4().hex
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    hub.queries[qid] = (town, answer)
    try:
        uplink.send({"v": 1, "type": "link.query", "query": qid, "command_id": cmd.id})
        report = await asyncio.wait_for(answer, QUERY_TIMEOUT_S)
    except TimeoutError:
        raise HubError("unreachable", f"{town}: its hub did not answer within "
                       f"{QUERY_TIMEOUT_S:g} s") from None
    finally:
        hub.queries.pop(qid, None)
    return {"town": town, "command_id": cmd.id, "city_state": cmd.progress[town].state,
            **report}


async def report(hub: Hub, s: Session, req: Request) -> Ack:
    """A town hub's answer to `link.query`, handed to the link.status waiting for it."""
    entry = hub.queries.get(req["query"])
    if entry is None or entry[0] != s.principal.dept:
        raise HubError("not_found", "no such question for this town (it timed out)")
    depts = {d: {"state": st, "times_us": (req["times_us"] or {}).get(d, {}),
                 "reason": (req["reasons"] or {}).get(d)} for d, st in req["states"].items()}
    if not entry[1].done():
        entry[1].set_result({"town_command_id": req["town_command_id"],
                             "town_time_us": req["town_time_us"], "departments": depts})
    return {}

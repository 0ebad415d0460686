"""A town hub's answers to a command for its town (`link.respond`, role `hub`; hub/tiers/),
and what the city asks it on request: `link.status` (answered with `link.report`) and a
town feed called up (`tier.callup`, answered with `link.callup_ack`)."""

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
CALLUP_TIMEOUT_S = 8.0  # a call-up is a WHIP exchange of the town hub with this one


async def ask_town(hub: Hub, town: str, frame: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send `frame` (with a new `query` id) to the town hub linked as `town`, wait for its
    answer (link.report or link.callup_ack); `unreachable` if it is not linked or silent."""
    uplink = next((x for x in hub.sessions.values()
                   if x.principal.role is Role.HUB and x.principal.dept == town), None)
    if uplink is None:
        raise HubError("unreachable", f"{town}: no town hub is linked as it (uplink down)")
    qid = uuid.uuid4().hex
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    hub.queries[qid] = (town, answer)
    try:
        uplink.send({"v": 1, **frame, "query": qid})
        return await asyncio.wait_for(answer, timeout)
    except TimeoutError:
        raise HubError("unreachable", f"{town}: its hub did not answer within "
                       f"{timeout:g} s") from None
    finally:
        hub.queries.pop(qid, None)


def _answer(hub: Hub, s: Session, query: str, value: dict[str, Any]) -> None:
    """A town hub's answer to one of `ask_town`'s questions, handed to the request waiting."""
    entry = hub.queries.get(query)
    if entry is None or entry[0] != s.principal.dept:
        raise HubError("not_found", "no such question for this town (it timed out)")
    if not entry[1].done():
        entry[1].set_result(value)


async def status(hub: Hub, s: Session, req: Request) -> Ack:
    """Where each of a town's departments stands on a city command, asked of the town hub
    (it answers from its own log); `unreachable` if its uplink is down or it stays silent."""
    cmd = hub.state.commands.get(req["command_id"])
    town = req["town"]
    if town not in cmd.progress:
        raise HubError("not_targeted", f"command {cmd.id} is not addressed to {town}")
    report = await ask_town(hub, town, {"type": "link.query", "command_id": cmd.id},
                            QUERY_TIMEOUT_S)
    return {"town": town, "command_id": cmd.id, "city_state": cmd.progress[town].state,
            **report}


async def report(hub: Hub, s: Session, req: Request) -> Ack:
    """A town hub's answer to `link.query`, handed to the link.status waiting for it."""
    depts = {d: {"state": st, "times_us": (req["times_us"] or {}).get(d, {}),
                 "reason": (req["reasons"] or {}).get(d)} for d, st in req["states"].items()}
    _answer(hub, s, req["query"], {"town_command_id": req["town_command_id"],
                                   "town_time_us": req["town_time_us"], "departments": depts})
    return {}


async def callup(hub: Hub, s: Session, req: Request) -> Ack:
    """Call up one department's feed of a town hub (None: release it): the town sends that
    feed here by WHIP as the town's own (`/whep/TOWN` to watch it). One per town at a time;
    kept in the log (HubState.callups) and sent again whenever the town's uplink reconnects."""
    town, dept = req["town"], req["dept"]
    unit = hub.roster.by_id.get(town)
    if unit is None or unit.tier != "town":
        towns = [u.id for u in hub.roster.departments if u.tier == "town"]
        raise HubError("unknown_target", f"{town!r} is not a town hub of this roster "
                       f"(towns: {', '.join(towns) or 'none'})")
    answer = await ask_town(hub, town, {"type": "link.callup", "dept": dept}, CALLUP_TIMEOUT_S)
    code = answer.get("code")
    if code:
        code = code if code == "unknown_target" else "callup_failed"
        raise HubError(code, f"{town}: {answer.get('message')}")
    shown = dept or hub.state.callups.get(town)  # the state follows the event
    await hub.emit("route.changed", {"action": "callup" if dept else "release", "source": town,
                                     "targets": [shown] if shown else []}, s.actor)
    return {"town": town, "dept": dept, "whep": f"/whep/{town}"}


async def callup_ack(hub: Hub, s: Session, req: Request) -> Ack:
    """A town hub's answer to `link.callup`: done, or the code and message of its failure."""
    _answer(hub, s, req["query"], {"code": req["code"], "message": req["message"]})
    return {}

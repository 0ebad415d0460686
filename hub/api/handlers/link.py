"""A town hub's answers to a command for its town (`link.respond`, role `hub`; hub/tiers/)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hub.api.errors import BadRequest
from hub.api.handlers.commands import record_response, respond_ack
from hub.api.spec import Ack, Request
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

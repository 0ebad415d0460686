"""The request pipeline: table lookup, permission, transport, schema, exactly-once, handler, ack.

Deny by default: a type that is not a key of MESSAGES is `unknown_type`, and the permission is
checked before anything about the request is looked at. A state-changing request without an
`id` is refused (`bad_request`): without one a resend could not be told from a new request.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hub.api.errors import BadRequest, Forbidden, HubError, UnknownType
from hub.api.messages import MESSAGES
from hub.api.spec import Ack, Message
from hub.logformat import Event
from hub.state import RequestKey

if TYPE_CHECKING:
    from hub.service import Hub, Session

MAX_ID = 128


def request_id(msg: Mapping[str, Any]) -> str | None:
    """The client's message id, if it is a usable one (else BadRequest)."""
    mid = msg.get("id")
    if mid is None:
        return None
    if not isinstance(mid, str) or not 0 < len(mid) <= MAX_ID:
        raise BadRequest(f"id: a string of 1 to {MAX_ID} characters")
    return mid


def lookup(mtype: object) -> Message:
    if not isinstance(mtype, str):
        raise BadRequest("type: required, a string")
    spec = MESSAGES.get(mtype)
    if spec is None:
        raise UnknownType(mtype)
    return spec


async def dispatch(hub: Hub, s: Session, msg: Mapping[str, Any]) -> Ack:
    """Run one request; return the ack fields or raise a coded error (nothing logged)."""
    spec = lookup(msg.get("type"))
    if not s.principal.can(spec.permission):
        raise Forbidden(f"role {s.principal.role} may not {spec.type}")
    if spec.socket_only and s.transient:
        raise BadRequest(f"{spec.type} needs the WebSocket (/ws)")
    mid = request_id(msg)
    req = spec.schema.validate(msg)
    req["id"] = mid
    if not spec.writes:
        out = await spec.handler(hub, s, req)
        assert not isinstance(out, Event)
        return out
    if mid is None:
        raise BadRequest(f"id: required for {spec.type} (a resend with the same id is "
                         "then answered, not logged again)")
    key: RequestKey = (s.actor_key, req["command_id"] if spec.per_command else "", mid)
    async with hub.lock(("request", key)):
        prior = hub.state.requests.get(key)
        if prior is not None:
            return _repeat(hub, spec, mid, prior)
        out = await spec.handler(hub, s, req)
    if not isinstance(out, Event):
        return out
    assert spec.ack is not None
    ack = spec.ack(hub, out)
    pattern = hub.config.hold_ack
    if pattern is not None and pattern.search(mid):
        print(f"commandhub: fault point: holding the ack of {mid} (seq {out.seq})",
              file=sys.stderr, flush=True)
        await asyncio.Event().wait()  # until the test kills the process
    return ack


def _repeat(hub: Hub, spec: Message, mid: str, prior: tuple[str, int]) -> Ack:
    """The first answer again, rebuilt from the event that recorded it."""
    kind, seq = prior
    if kind not in spec.logs:
        raise HubError("id_reused", f"id {mid!r} was already used for a {kind} (seq {seq}); "
                                    "use a new id for a new request")
    assert spec.ack is not None
    return {**spec.ack(hub, hub.event_at(seq)), "duplicate": True}

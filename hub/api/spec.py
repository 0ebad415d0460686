"""What one row of the message table holds (`Message`), and the handler and ack signatures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.api.schema import Schema
from hub.logformat import Event

if TYPE_CHECKING:
    from hub.service import Hub, Session

Ack = dict[str, Any]
Request = dict[str, Any]  # the validated fields (defaults filled in) plus `id`
# A handler returns the request's main logged event (the dispatcher builds the ack from it,
# the same way it rebuilds it for a repeat), or, when it logged nothing, the ack itself.
Handler = Callable[["Hub", "Session", Request], Awaitable["Event | Ack"]]
AckOf = Callable[["Hub", Event], Ack]


@dataclass(frozen=True)
class Message:
    """One canonical message type: who may send it, what it takes, what runs it."""

    type: str
    permission: str  # a name in hub.auth.PERMISSIONS
    schema: Schema
    handler: Handler
    # Kinds of the event that records the request (with its `client_msg_id`). Non-empty:
    # the request changes state, needs an `id`, and is answered exactly once per (actor, id).
    logs: tuple[str, ...] = ()
    ack: AckOf | None = None  # the ack, built from that logged event
    per_command: bool = False  # the exactly-once key includes `command_id` (responses)
    socket_only: bool = False  # needs a live WebSocket session (not POST /api/rpc)
    answers: str = ""  # the ack fields, for the protocol table

    @property
    def writes(self) -> bool:
        return bool(self.logs)


def seq_ack(hub: Hub, ev: Event) -> Ack:
    """The ack of most state-changing requests: the seq of the event that records it."""
    return {"seq": ev.seq}

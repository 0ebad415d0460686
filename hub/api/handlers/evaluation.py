"""Evaluators' ratings (observation.record) and checklist ticks, checked against the rubric in use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.api.errors import HubError
from hub.api.spec import Request
from hub.logformat import Event
from hub.rubricinfo import PER_DEPARTMENT

if TYPE_CHECKING:
    from hub.service import Hub, Session


def _author(s: Session) -> dict[str, str]:
    """Who rated: the token's name (fallback: its id), and the token id (8 hex)."""
    evaluator_id = s.principal.jti[:8]
    return {"evaluator": s.principal.name or evaluator_id, "evaluator_id": evaluator_id}


async def record_observation(hub: Hub, s: Session, req: Request) -> Event:
    crit, dept = req["criterion"], req["dept"]
    rubric = hub.rubric
    scope = rubric.scopes.get(crit)
    if scope is None:
        raise HubError("bad_scope", f"criterion: {crit!r} is not an observation criterion of "
                                    f"rubric {rubric.id} ({', '.join(sorted(rubric.scopes))})")
    if scope == PER_DEPARTMENT and dept is None:
        raise HubError("bad_scope", f"criterion {crit} is rated per department: give dept")
    if scope != PER_DEPARTMENT and dept is not None:
        raise HubError("bad_scope", f"criterion {crit} is rated overall: give no dept")
    if dept is not None and dept not in hub.roster.by_id:
        raise HubError("unknown_target", f"dept: no department {dept!r}")
    return await hub.emit("observation.recorded", {
        "criterion": crit, "rating": req["rating"], "note": req["note"] or "", "dept": dept,
        **_author(s), "client_msg_id": req["id"]}, s.actor)


async def tick_checklist(hub: Hub, s: Session, req: Request) -> Event:
    item = req["item"]
    if item not in hub.rubric.checklist:
        raise HubError("bad_scope", f"item: {item!r} is not a checklist item of rubric "
                                    f"{hub.rubric.id}")
    return await hub.emit("checklist.ticked", {
        "item": item, "checked": req["checked"], "note": req["note"] or "", **_author(s),
        "client_msg_id": req["id"]}, s.actor)

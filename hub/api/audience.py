"""Need to know: the one rule deciding which roles and departments see an event.

Every event stream goes through `audience(event)`: the live fan-out, `subscribe` replay and
`GET /api/events`. Commanders and evaluators see everything; observers everything but the
evaluators' ratings, ticks and notes; a department only what concerns it (its own actions,
events naming it, commands addressed to it, the operation's life cycle) and never evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.logformat import Event

EVALUATION = frozenset({"observation.recorded", "checklist.ticked"})
SCORERS = frozenset({"commander", "evaluator"})
READ_ALL = frozenset({"commander", "evaluator", "observer"})
UNIT_ROLES = frozenset({"department", "hub"})  # a department, or a town hub as one (hub/tiers/)


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may see one event: these roles, plus these departments (or every department)."""

    roles: frozenset[str]
    depts: frozenset[str] = frozenset()
    every_dept: bool = False

    def admits(self, role: str, dept: str | None) -> bool:
        if role in self.roles:
            return True
        return role in UNIT_ROLES and (self.every_dept or dept in self.depts)


def audience(ev: Event) -> Audience:
    """The one rule (see the module docstring)."""
    if ev.kind in EVALUATION:
        return Audience(SCORERS)
    if ev.kind.startswith("operation."):
        return Audience(READ_ALL, every_dept=True)
    p = ev.payload
    named: set[str] = set()
    if ev.role in UNIT_ROLES and ev.dept:
        named.add(ev.dept)
    if isinstance(p.get("dept"), str):
        named.add(p["dept"])
    # command.issued's `targets` are as written (groups, `all`); `departments` are resolved
    for key in ("departments", "targets") if ev.kind == "route.changed" else ("departments",):
        value = p.get(key)
        if isinstance(value, list):
            named.update(v for v in value if isinstance(v, str))
    return Audience(READ_ALL, frozenset(named))


def visible(role: str, dept: str | None, ev: Event) -> bool:
    """May a client of this role (and department) see this event?"""
    return audience(ev).admits(role, dept)

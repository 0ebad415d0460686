"""HubState folds what a restarted hub must still know from the log: here, tier call-ups."""

from __future__ import annotations

from typing import Any

from hub.logformat import Event
from hub.state import HubState


def route(seq: int, role: str, action: str, source: str, targets: list[str]) -> Event:
    payload: dict[str, Any] = {"action": action, "source": source, "targets": targets}
    return Event(seq, seq, seq, "system", "system", role, None, "route.changed", payload)


def test_callups_follow_the_citys_events_only() -> None:
    state = HubState()
    for ev in [route(1, "commander", "callup", "town01", ["town01-u1"]),
               route(2, "commander", "callup", "town02", ["town02-u3"]),
               route(3, "commander", "callup", "town01", ["town01-u2"]),  # replaces u1
               route(4, "commander", "push", "police", ["town02"]),
               route(5, "uplink", "callup", "town01-u1", ["city"]),  # a town's own side
               route(6, "commander", "release", "town02", ["town02-u3"])]:
        state.apply(ev)
    assert state.callups == {"town01": "town01-u2"}

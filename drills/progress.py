"""Where each department stands on each command, folded from log events (pure; the runner's view)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# event kind -> stages it shows reached (any answer, even "cannot comply", is a receipt)
REACHED = {
    "command.acknowledged": ("receipt",),
    "command.on_scene": ("receipt", "on_scene"),
    "command.completed": ("receipt", "on_scene", "completed"),
    "command.declined": ("receipt",),
}


@dataclass
class CommandProgress:
    command_id: str  # the hub's
    inject_id: str | None  # the scenario's
    departments: list[str]
    requires: list[str]
    reached: dict[str, set[str]] = field(default_factory=dict)
    declined: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    overdue: set[tuple[str, str]] = field(default_factory=set)

    def laggards(self, stage: str) -> list[str]:
        """Departments that have not reached `stage` and are still expected to (not declined)."""
        return sorted(d for d in self.departments if stage not in self.reached.get(d, set())
                      and d not in self.declined and d not in self.cancelled)

    def met(self, stage: str) -> bool:
        return all(stage in self.reached.get(d, set()) for d in self.departments)


@dataclass
class ProgressBook:
    """Fold `event` frames (dicts as in docs/events.md) of one operation."""

    operation: str | None = None
    commands: dict[str, CommandProgress] = field(default_factory=dict)
    by_inject: dict[str, str] = field(default_factory=dict)  # scenario command id -> hub id
    checked_in: set[str] = field(default_factory=set)
    online: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0

    def apply(self, ev: Mapping[str, Any]) -> None:
        seq = int(ev.get("seq") or 0)
        if seq and seq <= self.last_seq:
            return  # a replayed event
        self.last_seq = max(self.last_seq, seq)
        kind = str(ev.get("kind"))
        p: Mapping[str, Any] = ev.get("payload") or {}
        self.counts[kind] = self.counts.get(kind, 0) + 1
        dept = ev.get("dept")
        if kind == "presence.online" and ev.get("role") == "department":
            self.online.add(str(dept))
        elif kind == "presence.offline" and ev.get("role") == "department":
            self.online.discard(str(dept))
        if self.operation is not None and ev.get("op") != self.operation:
            return
        if kind == "dept.checked_in" and dept:
            self.checked_in.add(str(dept))
        elif kind == "command.issued":
            cid = str(p.get("command_id"))
            inj = p.get("inject_id")
            self.commands[cid] = CommandProgress(cid, str(inj) if inj else None,
                                                 list(p.get("departments") or []),
                                                 list(p.get("requires") or ["receipt"]))
            if inj:
                self.by_inject.setdefault(str(inj), cid)
        elif kind in REACHED or kind in ("command.cancelled", "command.overdue"):
            cmd = self.commands.get(str(p.get("command_id")))
            if cmd is None:
                return
            if kind == "command.cancelled":
                cmd.cancelled.update(str(d) for d in p.get("departments") or [])
            elif kind == "command.overdue":
                cmd.overdue.add((str(p.get("dept")), str(p.get("stage"))))
            else:
                d = str(p.get("dept") or dept)
                cmd.reached.setdefault(d, set()).update(REACHED[kind])
                if kind == "command.declined":
                    cmd.declined.add(d)

    def command_for(self, scenario_command_id: str) -> CommandProgress | None:
        hub_id = self.by_inject.get(scenario_command_id)
        return None if hub_id is None else self.commands.get(hub_id)

    def summary(self) -> str:
        answered = sum(len(c.reached) for c in self.commands.values())
        pairs = sum(len(c.departments) for c in self.commands.values())
        overdue = sum(len(c.overdue) for c in self.commands.values())
        return (f"{len(self.checked_in)} checked in, {len(self.online)} online, "
                f"{len(self.commands)} commands, {answered}/{pairs} answered, {overdue} overdue")

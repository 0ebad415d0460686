"""Commands and responses: the per-(command, department) state machine, deadlines and overdue marks.

Pure: it validates requests and folds committed events; it never reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("I", "II", "III", "IV")
PRIORITIES = ("routine", "urgent", "flash")
STAGES = ("receipt", "on_scene", "completed")
# Default deadlines (seconds after issue) per response level; level I is the most severe.
DEFAULT_DEADLINES: dict[str, dict[str, float]] = {
    "I": {"receipt": 30, "on_scene": 600, "completed": 1800},
    "II": {"receipt": 60, "on_scene": 900, "completed": 2100},
    "III": {"receipt": 120, "on_scene": 1800, "completed": 3600},
    "IV": {"receipt": 300, "on_scene": 3600, "completed": 7200},
}

# Department responses and the state each one leads to.
RESPONSES = {
    "delivered": "delivered",
    "receipt": "acknowledged",
    "on_scene": "on_scene",
    "completed": "completed",
    "declined": "declined",
}
STATE_EVENT = {  # state -> event kind that records reaching it
    "delivered": "command.delivered",
    "acknowledged": "command.acknowledged",
    "on_scene": "command.on_scene",
    "completed": "command.completed",
    "declined": "command.declined",
}
EVENT_STATE = {v: k for k, v in STATE_EVENT.items()}
RESPONSE_EVENTS = frozenset(EVENT_STATE)  # a department's answers (exactly-once per command)
STAGE_STATE = {"receipt": "acknowledged", "on_scene": "on_scene", "completed": "completed"}
TERMINAL = frozenset({"completed", "declined", "cancelled"})
ORDER = {"issued": 0, "delivered": 1, "acknowledged": 2, "on_scene": 3, "completed": 4}
MAX_TEXT = 4000


class CommandError(Exception):
    """A request about a command is invalid; nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class DeptProgress:
    """Where one department stands on one command."""

    state: str = "issued"
    times_us: dict[str, int] = field(default_factory=dict)  # state -> hub time reached
    overdue: list[str] = field(default_factory=list)  # stages whose deadline passed
    reason: str | None = None
    seqs: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "times_us": dict(self.times_us),
                "overdue": list(self.overdue), "reason": self.reason}


@dataclass
class Command:
    id: str
    text: str
    targets: list[str]
    departments: list[str]
    priority: str
    level: str
    requires: list[str]
    deadlines: dict[str, float]
    critical: bool
    issued_us: int
    issued_seq: int
    inject_id: str | None = None
    op: str = "system"
    progress: dict[str, DeptProgress] = field(default_factory=dict)
    paused_us_at_issue: int = 0  # the operation's paused time when this was issued
    within: dict[str, list[str]] = field(default_factory=dict)  # town -> its own ids named

    def done(self, prog: DeptProgress) -> bool:
        """Finished: completed, declined, cancelled, or the last required stage reached."""
        return prog.state in TERMINAL or ORDER[prog.state] >= ORDER[STAGE_STATE[self.requires[-1]]]

    @property
    def open(self) -> bool:
        return any(not self.done(p) for p in self.progress.values())

    def pending_for(self, dept: str) -> bool:
        p = self.progress.get(dept)
        return p is not None and not self.done(p)

    def to_dict(self, dept: str | None = None) -> dict[str, Any]:
        """The command; with `dept`, only that department's progress (what it is sent)."""
        progress = self.progress if dept is None else {dept: self.progress[dept]}
        return {
            "command_id": self.id, "text": self.text, "targets": self.targets,
            "departments": self.departments, "priority": self.priority, "level": self.level,
            "requires": self.requires, "deadlines": self.deadlines, "critical": self.critical,
            "issued_us": self.issued_us, "seq": self.issued_seq, "inject_id": self.inject_id,
            "op": self.op, "progress": {d: p.to_dict() for d, p in progress.items()},
            **({"within": self.within} if self.within else {}),
        }


def normalise_issue(
    request: Mapping[str, Any], *, level: str, resolve: Any
) -> dict[str, Any]:
    """Validate an issue request; return the payload fields of `command.issued` (without id).

    `resolve(targets) -> sorted ids` raises KeyError for an unknown target.
    """
    text = request.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CommandError("bad_request", "text: required, a non-empty string")
    if len(text) > MAX_TEXT:
        raise CommandError("bad_request", f"text: at most {MAX_TEXT} characters")
    targets = request.get("targets")
    if isinstance(targets, str):
        targets = [t for t in targets.split(",") if t]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise CommandError("bad_request", "targets: required, department ids, groups or 'all'")
    try:
        departments = resolve(targets)
    except KeyError as exc:
        valid = getattr(exc, "valid", "")  # the roster's list of valid ids
        raise CommandError("unknown_target", f"targets: no department or group {exc.args[0]!r}"
                           + (f" ({valid})" if valid else "")) from exc
    priority = request.get("priority", "routine")
    if priority not in PRIORITIES:
        raise CommandError("bad_request", f"priority: one of {', '.join(PRIORITIES)}")
    lvl = request.get("level", level)
    if lvl not in LEVELS:
        raise CommandError("bad_request", f"level: one of {', '.join(LEVELS)}")
    requires = request.get("requires", ["receipt"])
    if not isinstance(requires, list) or any(r not in STAGES for r in requires):
        raise CommandError("bad_request", f"requires: a list of {', '.join(STAGES)}")
    requires = [s for s in STAGES if s in requires or s == "receipt"]
    deadlines_in = request.get("deadlines") or {}
    if not isinstance(deadlines_in, dict):
        raise CommandError("bad_request", "deadlines: a mapping stage -> seconds")
    deadlines: dict[str, float] = {}
    for stage in requires:
        value = deadlines_in.get(stage, DEFAULT_DEADLINES[lvl][stage])
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400 * 7:
            raise CommandError("bad_request", f"deadlines.{stage}: seconds, > 0 and at most 7 days")
        deadlines[stage] = float(value)
    extra = set(deadlines_in) - set(requires)
    if extra:
        raise CommandError("bad_request", f"deadlines: {sorted(extra)[0]!r} is not a required stage")
    critical = request.get("critical", False)
    if not isinstance(critical, bool):
        raise CommandError("bad_request", "critical: true or false")
    inject_id = request.get("inject_id")
    if inject_id is not None and not isinstance(inject_id, str):
        raise CommandError("bad_request", "inject_id: a string")
    return {"targets": targets, "departments": departments, "text": text, "priority": priority,
            "level": lvl, "requires": requires, "deadlines": deadlines, "critical": critical,
            "inject_id": inject_id}


class CommandBook:
    """All commands and their per-department progress, folded from committed events."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.open_ids: dict[str, None] = {}  # ids of open commands, in issue order
        self._counter = 0

    def next_id(self) -> str:
        return f"C{self._counter + 1}"

    def get(self, command_id: str) -> Command:
        try:
            return self.commands[command_id]
        except KeyError:
            raise CommandError("unknown_command", f"no command {command_id!r}") from None

    def check_response(self, command_id: str, dept: str, response: str) -> str:
        """Validate a department's response; return the state it leads to."""
        cmd = self.get(command_id)
        if dept not in cmd.progress:
            raise CommandError("not_targeted", f"command {command_id} is not addressed to {dept}")
        if response not in RESPONSES:
            raise CommandError("bad_request", f"response: one of {', '.join(RESPONSES)}")
        new = RESPONSES[response]
        prog = cmd.progress[dept]
        cur = prog.state
        if cmd.done(prog):
            raise CommandError("invalid_transition", f"{command_id}/{dept} is already {cur}")
        if new == "declined":
            return new
        stage = next((s for s, st in STAGE_STATE.items() if st == new), None)
        if stage is not None and stage not in cmd.requires:
            raise CommandError("not_required", f"{command_id} does not ask for {stage}")
        if new == "delivered":
            if cur != "issued":
                raise CommandError("invalid_transition", f"{command_id}/{dept} is already {cur}")
            return new
        # The next required stage after the current one must be the one answered.
        reached = ORDER[cur]
        wanted = next((STAGE_STATE[s] for s in cmd.requires if ORDER[STAGE_STATE[s]] > reached), None)
        if new != wanted:
            raise CommandError(
                "invalid_transition",
                f"{command_id}/{dept} is {cur}; next expected is {wanted or 'nothing'}, not {new}",
            )
        return new

    def overdue_due(self, now_us: int, paused_us: Callable[[str], int] = lambda op: 0
                    ) -> list[tuple[Command, str, str, int]]:
        """(command, dept, stage, deadline_us) for every stage deadline passed and not yet marked.

        `paused_us(op)`: how long that operation has been paused in all; a deadline moves
        later by the pause time since its command was issued.
        """
        out = []
        for cid in self.open_ids:
            cmd = self.commands[cid]
            shift = max(0, paused_us(cmd.op) - cmd.paused_us_at_issue)
            for dept, prog in cmd.progress.items():
                if cmd.done(prog):
                    continue
                for stage in cmd.requires:
                    if stage in prog.overdue or ORDER[prog.state] >= ORDER[STAGE_STATE[stage]]:
                        continue
                    deadline = cmd.issued_us + round(cmd.deadlines[stage] * 1_000_000) + shift
                    if deadline <= now_us:
                        out.append((cmd, dept, stage, deadline))
        return out

    def apply(self, kind: str, payload: Mapping[str, Any], ts_us: int, seq: int, op: str) -> None:
        """Fold one committed command event."""
        if kind == "command.issued":
            cid = payload["command_id"]
            self._counter = max(self._counter, int(cid[1:]) if cid[1:].isdigit() else 0)
            self.commands[cid] = Command(
                cid, payload["text"], list(payload["targets"]), list(payload["departments"]),
                payload["priority"], payload["level"], list(payload["requires"]),
                dict(payload["deadlines"]), bool(payload["critical"]), ts_us, seq,
                payload.get("inject_id"), op,
                {d: DeptProgress(times_us={"issued": ts_us}) for d in payload["departments"]},
                within={t: list(ids) for t, ids in (payload.get("within") or {}).items()},
            )
            self.open_ids[cid] = None
            return
        cmd = self.commands.get(payload.get("command_id", ""))
        if cmd is None:
            return
        if kind in EVENT_STATE:
            prog = cmd.progress[payload["dept"]]
            state = EVENT_STATE[kind]
            prog.state = state
            prog.times_us[state] = ts_us
            prog.seqs[state] = seq
            if kind == "command.declined":
                prog.reason = payload.get("reason")
        elif kind == "command.overdue":
            cmd.progress[payload["dept"]].overdue.append(payload["stage"])
        elif kind == "command.cancelled":
            for d in payload["departments"]:
                prog = cmd.progress[d]
                if not cmd.done(prog):
                    prog.state = "cancelled"
                    prog.times_us["cancelled"] = ts_us
                    prog.seqs["cancelled"] = seq
                    prog.reason = payload.get("reason")
        if not cmd.open:
            self.open_ids.pop(cmd.id, None)

    def open_commands(self) -> list[Command]:
        """Commands with a department still pending, in issue order."""
        return [self.commands[cid] for cid in self.open_ids]

"""Drill scenarios (a Master Scenario Events List in YAML): model, validation with file:line errors."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hub.commands import DEFAULT_DEADLINES, LEVELS, PRIORITIES, STAGES
from hub.yamlsrc import Checker, Doc, YamlSourceError, load_file, load_text

INJECT_TYPES = ("event", "command", "escalation", "contingency")
LAGGARDS = "laggards"  # a contingency command's target: the departments that missed the expectation
BUNDLED_DIR = "scenarios"
MAX_INJECTS = 500
MAX_DRILL_S = 7 * 86400.0

Path_ = tuple[str | int, ...]


class ScenarioError(YamlSourceError):
    """A scenario file is invalid; the message reads `file:line:col: key: why`."""


@dataclass(frozen=True)
class CommandSpec:
    """A scripted command; `deadlines` are drill seconds given explicitly (others: the level's)."""

    id: str
    targets: tuple[str, ...]
    text: str
    priority: str = "routine"
    requires: tuple[str, ...] = ("receipt",)
    deadlines: Mapping[str, float] = field(default_factory=dict)
    critical: bool = False


@dataclass(frozen=True)
class Expectation:
    """What a contingency checks at its time: every department sent `command` reached `stage`."""

    command: str
    stage: str


@dataclass(frozen=True)
class Inject:
    """One line of the events list, released `at` drill seconds after the start."""

    id: str
    at: float
    type: str
    title: str
    text: str = ""
    command: CommandSpec | None = None
    level: str | None = None  # escalation: the new response level
    expect: Expectation | None = None  # contingency: released only when this is not met
    escalate: bool = False  # contingency: chase (催办) the departments that missed it


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    level: str
    levels: Mapping[str, Mapping[str, float]]
    injects: tuple[Inject, ...]
    end: float
    start: str | None = None
    description: str = ""
    file: str = ""
    sha256: str = ""

    def commands(self) -> list[CommandSpec]:
        return [i.command for i in self.injects if i.command is not None]

    def command(self, cid: str) -> CommandSpec:
        for c in self.commands():
            if c.id == cid:
                return c
        raise KeyError(cid)

    def deadlines(self, cmd: CommandSpec, level: str) -> dict[str, float]:
        """Drill seconds per required stage: the command's own, else the level's, else the hub's."""
        table = {**DEFAULT_DEADLINES[level], **self.levels.get(level, {})}
        return {s: float(cmd.deadlines.get(s, table[s])) for s in cmd.requires}


# --- loading ----------------------------------------------------------------------------------

def bundled(name: str) -> Path:
    """Path of a bundled scenario (`extreme-weather`, `hazmat-vehicle`, `rollcall`)."""
    path = Path(str(resources.files("drills") / BUNDLED_DIR / f"{name}.yaml"))
    if not path.is_file():
        raise FileNotFoundError(f"no bundled scenario {name!r} (have: {', '.join(bundled_names())})")
    return path


def bundled_names() -> list[str]:
    folder = Path(str(resources.files("drills") / BUNDLED_DIR))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def resolve_path(name_or_path: str) -> Path:
    """A file path, or the name of a bundled scenario."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return bundled(name_or_path)


def load_scenario(path: str | Path, targets: set[str] | None = None) -> Scenario:
    """Load and validate a scenario file; `targets`: known department ids and groups (and `all`)."""
    try:
        doc = load_file(path)
        raw = Path(path).read_bytes()
    except YamlSourceError as exc:
        raise ScenarioError.of(exc) from exc
    return parse_scenario(doc, targets, hashlib.sha256(raw).hexdigest())


def load_scenario_text(text: str, file: str = "<scenario>", targets: set[str] | None = None) -> Scenario:
    try:
        doc = load_text(text, file)
    except YamlSourceError as exc:
        raise ScenarioError.of(exc) from exc
    return parse_scenario(doc, targets, hashlib.sha256(text.encode()).hexdigest())


def parse_scenario(doc: Doc, targets: set[str] | None = None, sha256: str = "") -> Scenario:
    try:
        return _Reader(doc, targets).scenario(sha256)
    except YamlSourceError as exc:
        raise ScenarioError.of(exc) from exc


TOP_KEYS = {"id", "title", "start", "level", "levels", "injects", "end", "description"}
INJECT_KEYS = {"id", "at", "type", "title", "text", "command", "level", "expect", "escalate"}
COMMAND_KEYS = {"id", "targets", "text", "priority", "requires", "deadlines", "critical"}


class _Reader(Checker):
    def __init__(self, doc: Doc, targets: set[str] | None) -> None:
        super().__init__(doc)
        self.targets = targets

    def text(self, m: Mapping[str, Any], key: str, path: Path_, required: bool = True) -> str:
        v = m.get(key)
        if v is None and not required:
            return ""
        if not isinstance(v, str | int) or isinstance(v, bool) or not str(v).strip():
            raise self.err((*path, key), "required, a non-empty string")
        return str(v).strip()

    def drill_time(self, value: Any, path: Path_) -> float:
        return self.duration(value, path, MAX_DRILL_S, "7 days")

    def scenario(self, sha256: str) -> Scenario:
        top = self.mapping(self.doc.data, (), TOP_KEYS)
        sid = self.text(top, "id", ())
        title = self.text(top, "title", ())
        level = top.get("level")
        if level not in LEVELS:
            raise self.err(("level",), f"required, one of {', '.join(LEVELS)}")
        start = top.get("start")
        if start is not None and not isinstance(start, str):
            start = str(start)  # YAML may read an unquoted date as a date
        levels = self.levels(top.get("levels"))
        raw = top.get("injects")
        if not isinstance(raw, list) or not raw:
            raise self.err(("injects",), "required, a non-empty list")
        if len(raw) > MAX_INJECTS:
            raise self.err(("injects",), f"at most {MAX_INJECTS} injects")
        injects = [self.inject(r, ("injects", i)) for i, r in enumerate(raw)]
        self.check_references(injects)
        last = max(i.at for i in injects)
        if "end" in top:
            end = self.drill_time(top["end"], ("end",))
            if end < last:
                raise self.err(("end",), f"before the last inject ({last:g} s)")
        else:
            end = last + 300.0
        order = sorted(range(len(injects)), key=lambda k: (injects[k].at, k))
        return Scenario(id=sid, title=title, level=str(level), levels=levels,
                        injects=tuple(injects[k] for k in order), end=end, start=start,
                        description=str(top.get("description") or ""), file=self.doc.file,
                        sha256=sha256)

    def levels(self, raw: Any) -> dict[str, dict[str, float]]:
        if raw is None:
            return {}
        m = self.mapping(raw, ("levels",), set(LEVELS))
        out: dict[str, dict[str, float]] = {}
        for lvl, stages in m.items():
            sm = self.mapping(stages, ("levels", lvl), set(STAGES))
            out[lvl] = {s: self.positive(v, ("levels", lvl, s)) for s, v in sm.items()}
        return out

    def positive(self, value: Any, path: Path_) -> float:
        secs = self.drill_time(value, path)
        if secs <= 0:
            raise self.err(path, "must be more than 0")
        return secs

    def inject(self, raw: Any, path: Path_) -> Inject:
        m = self.mapping(raw, path, INJECT_KEYS)
        iid = self.text(m, "id", path)
        if "at" not in m:
            raise self.err((*path, "at"), "required, a drill time such as 5m")
        at = self.drill_time(m["at"], (*path, "at"))
        itype = m.get("type")
        if itype not in INJECT_TYPES:
            raise self.err((*path, "type"), f"required, one of {', '.join(INJECT_TYPES)}")
        allowed = {"event": {"text"}, "command": {"command"}, "escalation": {"level", "text"},
                   "contingency": {"expect", "escalate", "command", "text"}}[itype]
        for k in m:
            if k in INJECT_KEYS - {"id", "at", "type", "title"} - allowed:
                raise self.err((*path, k), f"not used by a {itype} inject")
        command = None
        if "command" in m:
            command = self.command(m["command"], (*path, "command"), iid, itype == "contingency")
        elif itype == "command":
            raise self.err((*path, "command"), "required for a command inject")
        title = self.text(m, "title", path, required=False) or (command.text if command else "")
        if not title:
            raise self.err((*path, "title"), "required (a short line read to the players)")
        level = None
        if itype == "escalation":
            level = m.get("level")
            if level not in LEVELS:
                raise self.err((*path, "level"), f"required, one of {', '.join(LEVELS)}")
        expect, escalate = None, False
        if itype == "contingency":
            e = self.mapping(m.get("expect"), (*path, "expect"), {"command", "stage"})
            stage = e.get("stage", "receipt")
            if stage not in STAGES:
                raise self.err((*path, "expect", "stage"), f"one of {', '.join(STAGES)}")
            expect = Expectation(self.text(e, "command", (*path, "expect")), str(stage))
            escalate = m.get("escalate", False)
            if not isinstance(escalate, bool):
                raise self.err((*path, "escalate"), "true or false")
            if not escalate and command is None and not m.get("text"):
                raise self.err(path, "a contingency needs escalate: true, a command or a text")
        text = self.text(m, "text", path, required=False)
        return Inject(iid, at, str(itype), title, text, command, level, expect, escalate)

    def command(self, raw: Any, path: Path_, inject_id: str, contingency: bool) -> CommandSpec:
        m = self.mapping(raw, path, COMMAND_KEYS)
        cid = self.text(m, "id", path, required=False) or inject_id
        targets = m.get("targets")
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not isinstance(targets, list) or not targets or \
                not all(isinstance(t, str) and t for t in targets):
            raise self.err((*path, "targets"), "required, department ids, groups or all")
        for k, t in enumerate(targets):
            if t == LAGGARDS:
                if not contingency:
                    raise self.err((*path, "targets", k), "laggards: only in a contingency")
            elif self.targets is not None and t not in self.targets:
                raise self.err((*path, "targets", k), f"no department or group {t!r} in the roster")
        text = self.text(m, "text", path)
        priority = m.get("priority", "routine")
        if priority not in PRIORITIES:
            raise self.err((*path, "priority"), f"one of {', '.join(PRIORITIES)}")
        requires = m.get("requires", ["receipt"])
        if isinstance(requires, str):
            requires = [requires]
        if not isinstance(requires, list) or any(r not in STAGES for r in requires):
            raise self.err((*path, "requires"), f"a list of {', '.join(STAGES)}")
        req = tuple(s for s in STAGES if s in requires or s == "receipt")
        dl_raw = m.get("deadlines") or {}
        dl = self.mapping(dl_raw, (*path, "deadlines"), set(STAGES))
        deadlines: dict[str, float] = {}
        for stage, v in dl.items():
            if stage not in req:
                raise self.err((*path, "deadlines", stage), "not a required stage of this command")
            deadlines[stage] = self.positive(v, (*path, "deadlines", stage))
        critical = m.get("critical", False)
        if not isinstance(critical, bool):
            raise self.err((*path, "critical"), "true or false")
        return CommandSpec(cid, tuple(targets), text, str(priority), req, deadlines, critical)

    def check_references(self, injects: Sequence[Inject]) -> None:
        seen: dict[str, int] = {}
        cmd_at: dict[str, float] = {}
        for k, inj in enumerate(injects):
            if inj.id in seen:
                raise self.err(("injects", k, "id"), f"duplicate inject id (also injects[{seen[inj.id]}])")
            seen[inj.id] = k
        for k, inj in enumerate(injects):
            if inj.command is None:
                continue
            cid = inj.command.id
            if cid in cmd_at or (cid in seen and seen[cid] != k):
                raise self.err(("injects", k, "command", "id"), f"command id {cid} is used twice")
            cmd_at[cid] = inj.at
        for k, inj in enumerate(injects):
            if inj.expect is None:
                continue
            when = cmd_at.get(inj.expect.command)
            if when is None:
                raise self.err(("injects", k, "expect", "command"),
                               f"no command {inj.expect.command} in this scenario")
            if when >= inj.at:
                raise self.err(("injects", k, "at"),
                               f"must come after command {inj.expect.command} (at {when:g} s)")
            src = next(i.command for i in injects if i.command and i.command.id == inj.expect.command)
            if inj.expect.stage not in src.requires:
                raise self.err(("injects", k, "expect", "stage"),
                               f"command {src.id} does not require {inj.expect.stage}")

"""The few scenario fields scoring reads (id, title, level, per-level deadlines, planned injects)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.yamlsrc import Doc, load_file, parse_duration
from scoring.notes import Note, note

STAGE_KEYS = ("receipt", "on_scene", "completed")


@dataclass(frozen=True)
class ScenarioView:
    """A read-only view of a drill scenario; anything missing or malformed is simply absent."""

    id: str
    title: str
    level: str
    levels: Mapping[str, Mapping[str, float]]
    injects: tuple[tuple[str, str, float], ...]  # (id, title, planned seconds from start)
    sha256: str = ""
    notes: tuple[Note, ...] = field(default_factory=tuple)
    conditional: frozenset[str] = frozenset()  # contingency injects: released only if needed

    def deadline(self, level: str, stage: str) -> float:
        """Seconds allowed for `stage` at response `level`; NaN when the scenario has none."""
        return self.levels.get(level, {}).get(stage, math.nan)

    def planned_injects(self) -> dict[str, tuple[str, float]]:
        return {i: (t, at) for i, t, at in self.injects}


def _duration(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def scenario_from_data(data: Any, sha256: str = "", doc: Doc | None = None) -> ScenarioView:
    """Read the fields scoring needs from a parsed scenario mapping, defensively."""
    if not isinstance(data, Mapping):
        if doc is not None:
            raise doc.error((), "a scenario must be a mapping")
        raise ValueError("a scenario must be a mapping")
    notes: list[Note] = []
    levels: dict[str, dict[str, float]] = {}
    raw_levels = data.get("levels")
    if isinstance(raw_levels, Mapping):
        for name, stages in raw_levels.items():
            if not isinstance(stages, Mapping):
                continue
            parsed: dict[str, float] = {}
            for stage in STAGE_KEYS:
                if stage in stages:
                    secs = _duration(stages[stage])
                    if secs is None:
                        if doc is not None:
                            raise doc.error(("levels", name, stage), f"bad duration {stages[stage]!r}")
                        notes.append(note("scenario_bad_duration", level=name, stage=stage))
                        continue
                    parsed[stage] = secs
            levels[str(name)] = parsed
    injects: list[tuple[str, str, float]] = []
    conditional: set[str] = set()
    raw_injects = data.get("injects")
    if isinstance(raw_injects, list):
        for i, inj in enumerate(raw_injects):
            if not isinstance(inj, Mapping) or "id" not in inj:
                continue
            at = _duration(inj.get("at"))
            if at is None:
                if doc is not None:
                    raise doc.error(("injects", i, "at"), f"bad duration {inj.get('at')!r}")
                continue
            title = inj.get("title")
            if not isinstance(title, str):
                cmd = inj.get("command")
                title = str(cmd.get("text", "")) if isinstance(cmd, Mapping) else ""
            injects.append((str(inj["id"]), title, at))
            if inj.get("type") == "contingency":
                conditional.add(str(inj["id"]))
    return ScenarioView(
        id=str(data.get("id") or ""),
        title=str(data.get("title") or ""),
        level=str(data.get("level") or ""),
        levels=levels,
        injects=tuple(injects),
        sha256=sha256,
        notes=tuple(notes),
        conditional=frozenset(conditional),
    )


def load_scenario(path: str | Path) -> ScenarioView:
    """Load a scenario YAML file; YamlSourceError on a bad file or a bad duration."""
    p = Path(path)
    doc = load_file(p)
    return scenario_from_data(doc.data, hashlib.sha256(p.read_bytes()).hexdigest(), doc)

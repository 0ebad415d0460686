"""The rubric the hub scores with: what its evaluators may rate (criterion scopes, checklist items)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OVERALL = "overall"
PER_DEPARTMENT = "per_department"


class RubricInfoError(Exception):
    """The rubric file cannot be loaded (the message names file:line)."""


@dataclass(frozen=True)
class RubricInfo:
    """Observation criteria (id -> scope) and checklist item ids of one rubric file."""

    id: str
    path: Path
    scopes: dict[str, str] = field(default_factory=dict)
    checklist: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: str | Path | None = None) -> RubricInfo:
        """The rubric at `path`, or the bundled one (scoring.rubric is pure: no hub, no I/O
        beyond the file)."""
        from scoring.rubric import RubricError, bundled, load_rubric

        where = Path(path) if path is not None else bundled()
        try:
            rubric = load_rubric(where)
        except (RubricError, OSError) as exc:
            raise RubricInfoError(str(exc)) from exc
        scopes: dict[str, str] = {}
        items: set[str] = set()
        for _, crit in rubric.criteria():
            kind: Any = getattr(crit, "type", None)
            if kind == "observation":
                scopes[crit.id] = str(getattr(crit, "scope", OVERALL))
            elif kind == "checklist":
                items.update(item.id for item in getattr(crit, "items", ()))
        return cls(rubric.id, where, scopes, frozenset(items))

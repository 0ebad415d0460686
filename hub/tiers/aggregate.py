"""How a town's command maps to the city command's stages (pure; docs/protocol.md "Tiers").

- receipt: when the town hub linked the city command (issued it to its own departments);
- on_scene: when the first town department is on scene (or completed);
- completed: when every town department is finished (completed, declined or cancelled) and at
  least one completed;
- declined: every town department finished and none completed (each declined or was cancelled
  here; their outcomes and reasons joined), unless the city's last required stage was reached.
Only the stages the city command requires are reported (declined always is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.commands import Command


@dataclass(frozen=True)
class TownStage:
    """One stage the town reached: the response to send up, when (town hub time), by whom."""

    response: str
    ts_us: int
    departments: list[str] = field(default_factory=list)
    reason: str | None = None


def reached(cmd: Command, requires: list[str]) -> list[TownStage]:
    """The stages the town's command `cmd` reached, in order, for a city command requiring
    `requires`."""
    out = [TownStage("receipt", cmd.issued_us)] if "receipt" in requires else []
    progs = cmd.progress
    there = {d: min(t for s, t in p.times_us.items() if s in ("on_scene", "completed"))
             for d, p in progs.items()
             if p.state in ("on_scene", "completed") or "on_scene" in p.times_us}
    if "on_scene" in requires and there:
        first = min(there.values())
        out.append(TownStage("on_scene", first, sorted(there)))
    if not progs or not all(cmd.done(p) for p in progs.values()) \
            or any(st.response == requires[-1] for st in out):
        return out
    done_at = max(max(p.times_us.values()) for p in progs.values())
    completed = sorted(d for d, p in progs.items() if p.state == "completed")
    if not completed:
        reasons = "; ".join(f"{d}: {p.state}" + (f" ({p.reason})" if p.reason else "")
                            for d, p in sorted(progs.items()))
        out.append(TownStage("declined", done_at, sorted(progs), reasons[:1000]))
    elif "completed" in requires:
        out.append(TownStage("completed", done_at, completed))
    return out

"""Pure routing table: who receives which department's video and audio, and in which slot."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

CENTER = "center"
PUBLISHING_ROLES = ("commander", "department")
VIEWING_ROLES = ("commander", "evaluator", "observer")


class RouteError(Exception):
    """A routing command names something that does not exist or makes no sense."""


@dataclass(frozen=True)
class Member:
    """A connected participant as the router sees it."""

    pid: str
    role: str  # commander, department, evaluator, observer
    dept: str | None


@dataclass
class RouteState:
    """What the commander has set; survives participants leaving and rejoining."""

    pushes: dict[str, tuple[str, ...] | Literal["all"]] = field(default_factory=dict)
    groups_on: set[str] = field(default_factory=set)
    links: set[frozenset[str]] = field(default_factory=set)
    muted: set[str] = field(default_factory=set)
    talk_to: str | None = None

    def snapshot(self) -> dict[str, object]:
        return {
            "pushes": {s: (t if t == "all" else list(t)) for s, t in sorted(self.pushes.items())},
            "groups_on": sorted(self.groups_on),
            "links": sorted(sorted(pair) for pair in self.links),
            "muted": sorted(self.muted),
            "talk_to": self.talk_to,
        }


def _dedupe(items: list[str], exclude: str | None) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item != exclude and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _peers(state: RouteState, groups: Mapping[str, Sequence[str]], dept: str) -> list[str]:
    """Departments `dept` talks with: direct links first, then open group channels."""
    peers = sorted(other for pair in state.links if dept in pair for other in pair - {dept})
    for group in sorted(state.groups_on):
        members = groups.get(group, ())
        if dept in members:
            peers.extend(m for m in members if m != dept)
    return peers


def pushed_to(state: RouteState, dept: str) -> list[str]:
    """Sources pushed to `dept`, in the order they were pushed."""
    return [
        source for source, targets in state.pushes.items()
        if source != dept and (targets == "all" or dept in targets)
    ]


def video_wants(
    state: RouteState, groups: Mapping[str, Sequence[str]], member: Member,
    published: Sequence[str],
) -> list[str]:
    """Video sources `member` should see, most important first (only published ones)."""
    available = set(published)
    if member.role == "commander":
        wanted = [d for d in published if d != CENTER]
    elif member.role in VIEWING_ROLES:
        wanted = [CENTER] + [d for d in published if d != CENTER]
    elif member.role == "department" and member.dept:
        wanted = [CENTER, *pushed_to(state, member.dept), *_peers(state, groups, member.dept)]
    else:
        wanted = []
    return [s for s in _dedupe(wanted, member.dept) if s in available]


def audio_wants(
    state: RouteState, groups: Mapping[str, Sequence[str]], member: Member,
    published: Sequence[str],
) -> list[str]:
    """Audio sources `member` should hear: commander to all (or to one), departments to the
    commander, linked and grouped departments to each other; muted departments to no one."""
    available = set(published) - state.muted
    if member.role == "commander":
        wanted = [d for d in published if d != CENTER]
    elif member.role in VIEWING_ROLES:
        wanted = [CENTER]
    elif member.role == "department" and member.dept:
        hears_center = state.talk_to is None or state.talk_to == member.dept
        wanted = ([CENTER] if hears_center else []) + _peers(state, groups, member.dept)
    else:
        wanted = []
    return [s for s in _dedupe(wanted, member.dept) if s in available]


def assign_slots(
    current: Sequence[str | None], wanted: Sequence[str],
    fits: Callable[[int, str], bool] = lambda slot, source: True,
) -> list[str | None]:
    """Place `wanted` sources (most important first) into slots, moving as little as possible.

    A source keeps its slot while still wanted; new sources take free slots that `fits`;
    when none is free, the least important placed source is evicted for a more important one.
    """
    priority = {source: rank for rank, source in enumerate(wanted)}
    result: list[str | None] = [
        source if source in priority and fits(i, source) else None
        for i, source in enumerate(current)
    ]
    for i, source in enumerate(result):  # a source placed twice keeps its first slot
        if source is not None and result.index(source) != i:
            result[i] = None
    for source in wanted:
        if source in result:
            continue
        free = [i for i, s in enumerate(result) if s is None and fits(i, source)]
        if free:
            result[free[0]] = source
            continue
        lower = [
            i for i, s in enumerate(result)
            if s is not None and fits(i, source) and priority[s] > priority[source]
        ]
        if lower:
            result[max(lower, key=lambda i: priority[result[i] or ""])] = source
    return result


def validate_targets(
    targets: Sequence[str] | Literal["all"], departments: Sequence[str],
    groups: Mapping[str, Sequence[str]],
) -> tuple[str, ...] | Literal["all"]:
    """Resolve push targets (department ids and group names, or "all") to department ids."""
    if targets == "all":
        return "all"
    resolved: list[str] = []
    for target in targets:
        if target in groups:
            resolved.extend(groups[target])
        elif target in departments:
            resolved.append(target)
        else:
            raise RouteError(f"unknown target {target!r}")
    return tuple(_dedupe(resolved, None))

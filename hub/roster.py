"""The roster: the command center and the departments (in wall order), their groups and tiers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hub.yamlsrc import Doc, YamlSourceError, load_file, load_text

ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
TIERS = ("city", "town")
RESERVED = {"all", "center", "wall", "system", "hub"}


class RosterError(Exception):
    """The roster file is invalid; the message names file:line:col and the key."""


class UnknownTargetError(KeyError):
    """A target names no department or group; `args[0]` is the name, `valid` lists the ids."""

    def __init__(self, name: str, valid: str) -> None:
        super().__init__(name)
        self.name, self.valid = name, valid

    def __str__(self) -> str:
        return f"no department or group {self.name!r} ({self.valid})"


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    name_zh: str
    name_en: str
    groups: tuple[str, ...] = ()
    tier: str = "city"
    source: str | None = None  # an existing camera's URL to ingest as this department's feed

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name_zh": self.name_zh, "name_en": self.name_en,
                "groups": list(self.groups), "tier": self.tier}


@dataclass(frozen=True, slots=True)
class GroupName:
    """A group's display names (the roster's `groups:` section); the id when not given."""

    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Roster:
    """`departments` in wall order (the order of the file): pages lay out tiles and cells so."""

    center: Department
    departments: tuple[Department, ...]
    sha256: str = ""
    group_names: Mapping[str, GroupName] = field(default_factory=dict)
    by_id: dict[str, Department] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id.update({d.id: d for d in self.departments})

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.departments]

    @property
    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for d in self.departments:
            for g in d.groups:
                out.setdefault(g, []).append(d.id)
        return out

    def group_info(self) -> list[dict[str, Any]]:
        """Every group with its display names and members (wall order), in order of first use."""
        out = []
        for gid, members in self.groups.items():
            name = self.group_names.get(gid) or GroupName(gid, gid)
            out.append({"id": gid, "name_zh": name.name_zh, "name_en": name.name_en,
                        "members": members})
        return out

    def valid_ids(self) -> str:
        """The valid targets, for error messages: department ids, group ids, `all`."""
        return (f"departments: {', '.join(self.ids)}; groups: {', '.join(self.groups)}; "
                "all, or TOWN:ID for a town hub's own department or group "
                "(`commandhub roster` lists them)")

    def resolve(self, targets: list[str]) -> list[str]:
        """Department ids, groups, `all` or `TOWN:ID` -> sorted unique department ids.

        `TOWN:ID` names a department or group of a town hub's own roster (hub/tiers/): it
        resolves to the town; the town hub resolves `ID` (see `within`). An unknown name
        raises UnknownTargetError (a KeyError) that lists the valid ids.
        """
        groups = self.groups
        out: set[str] = set()
        for t in targets:
            if t == "all":
                out.update(self.ids)
            elif t in self.by_id:
                out.add(t)
            elif t in groups:
                out.update(groups[t])
            elif self._town_part(t):
                out.add(t.partition(":")[0])
            else:
                raise UnknownTargetError(t, self.valid_ids())
        return sorted(out)

    def _town_part(self, target: str) -> bool:
        town, sep, part = target.partition(":")
        unit = self.by_id.get(town)
        return bool(sep) and unit is not None and unit.tier == "town" and bool(ID_RE.match(part))

    def within(self, targets: list[str]) -> dict[str, list[str]]:
        """Per town addressed only by `TOWN:ID` targets, those ids (sorted); a town that
        another target reaches whole is not listed (its hub issues to all of its own)."""
        parts: dict[str, set[str]] = {}
        for t in targets:
            if self._town_part(t):
                town, _, part = t.partition(":")
                parts.setdefault(town, set()).add(part)
        whole = set(self.resolve([t for t in targets if not self._town_part(t)])) \
            if any(not self._town_part(t) for t in targets) else set()
        return {town: sorted(ids) for town, ids in sorted(parts.items()) if town not in whole}

    def to_list(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.departments]


def _dept(doc: Doc, raw: Any, path: tuple[str | int, ...], seen: set[str]) -> Department:
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping with id, name_zh, name_en")
    for key in ("id", "name_zh", "name_en"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise doc.error((*path, key), "required, a non-empty string")
    unknown = set(raw) - {"id", "name_zh", "name_en", "groups", "tier", "source"}
    if unknown:
        raise doc.error((*path, sorted(unknown)[0]), "unknown key")
    did = raw["id"]
    if not ID_RE.match(did):
        raise doc.error((*path, "id"), f"{did!r} is not a valid id (a-z, 0-9, _ and -, max 32)")
    if did in seen:
        raise doc.error((*path, "id"), f"duplicate id {did!r}")
    seen.add(did)
    groups = raw.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and ID_RE.match(g) for g in groups):
        raise doc.error((*path, "groups"), "must be a list of group names (a-z, 0-9, _ and -)")
    tier = raw.get("tier", "city")
    if tier not in TIERS:
        raise doc.error((*path, "tier"), f"must be one of {', '.join(TIERS)}")
    source = raw.get("source")
    if source is not None and not isinstance(source, str):
        raise doc.error((*path, "source"), "must be a URL string")
    return Department(did, raw["name_zh"], raw["name_en"], tuple(groups), tier, source)


def _group_names(doc: Doc, raw: Any) -> dict[str, GroupName]:
    if not isinstance(raw, dict):
        raise doc.error(("groups",), "must be a mapping: group id -> {name_zh, name_en}")
    out: dict[str, GroupName] = {}
    for gid, names in raw.items():
        path: tuple[str | int, ...] = ("groups", gid)
        if not ID_RE.match(gid):
            raise doc.error(path, f"{gid!r} is not a valid group id (a-z, 0-9, _ and -, max 32)")
        if not isinstance(names, dict):
            raise doc.error(path, "must be a mapping with name_zh and name_en")
        for key in ("name_zh", "name_en"):
            if not isinstance(names.get(key), str) or not names[key].strip():
                raise doc.error((*path, key), "required, a non-empty string")
        extra = set(names) - {"name_zh", "name_en"}
        if extra:
            raise doc.error((*path, sorted(extra)[0]), "unknown key")
        out[gid] = GroupName(names["name_zh"], names["name_en"])
    return out


def parse_roster(doc: Doc, text: str) -> Roster:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "the roster must be a mapping with center and departments")
    unknown = set(data) - {"center", "departments", "groups"}
    if unknown:
        raise doc.error((sorted(unknown)[0],), "unknown key")
    seen: set[str] = set()
    center_raw = data.get("center", {"id": "center", "name_zh": "指挥中心", "name_en": "Command Center"})
    center = _dept(doc, center_raw, ("center",), seen)
    if center.id != "center":
        raise doc.error(("center", "id"), "the command center's id must be 'center'")
    depts_raw = data.get("departments")
    if not isinstance(depts_raw, list) or not depts_raw:
        raise doc.error(("departments",), "required, a non-empty list")
    depts = []
    for i, raw in enumerate(depts_raw):
        d = _dept(doc, raw, ("departments", i), seen)
        if d.id in RESERVED:
            raise doc.error(("departments", i, "id"), f"{d.id!r} is reserved")
        depts.append(d)
    ids = {d.id for d in depts}
    names = _group_names(doc, data["groups"]) if "groups" in data else None
    used: set[str] = set()
    for i, d in enumerate(depts):
        for j, g in enumerate(d.groups):
            if g in ids:
                raise doc.error(("departments", i, "groups"), f"group {g!r} clashes with a department id")
            if names is not None and g not in names:
                raise doc.error(("departments", i, "groups", j),
                                f"group {g!r} is not declared under groups: (give it name_zh, name_en)")
            used.add(g)
    for g in names or {}:
        if g not in used:
            raise doc.error(("groups", g), f"group {g!r} has no members (no department lists it)")
        if g in ids or g in RESERVED:
            raise doc.error(("groups", g), f"group {g!r} clashes with a department or reserved id")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Roster(center, tuple(depts), sha, names or {})


def load_roster(path: str | Path | None = None) -> Roster:
    """Load a roster file (the bundled default when `path` is None); raise RosterError."""
    try:
        if path is None:
            text = resources.files("hub").joinpath("roster.yaml").read_text(encoding="utf-8")
            doc = load_text(text, "roster.yaml (bundled)")
        else:
            doc = load_file(path)
            text = Path(path).read_text(encoding="utf-8")
        return parse_roster(doc, text)
    except YamlSourceError as exc:
        raise RosterError(str(exc)) from exc

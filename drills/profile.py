"""Behaviour profiles of simulated departments, and the seeded plans drawn from them (pure)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hub.yamlsrc import Checker, Doc, YamlSourceError, load_file, load_text

STAGES = ("receipt", "on_scene", "completed")
EPISODES = ("dropouts", "frozen", "black")
NORMAL = statistics.NormalDist()
Z90 = NORMAL.inv_cdf(0.9)
MAX_LATENCY_S = 86400.0


class ProfileError(YamlSourceError):
    """A profile file is invalid; the message reads `file:line:col: key: why`."""


@dataclass(frozen=True)
class Latency:
    """A drill-time latency distribution: fixed a; uniform [a, b]; lognormal median a, p90 b."""

    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """Always draws exactly one number from `rng`, whatever the kind (keeps streams aligned)."""
        u = rng.random()
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return self.a + (self.b - self.a) * u
        sigma = math.log(self.b / self.a) / Z90
        z = NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
        return min(self.a * math.exp(sigma * z), MAX_LATENCY_S)


@dataclass(frozen=True)
class EpisodeSpec:
    """Once per bot, with `probability`: start uniform in `window`, last uniform in `duration`."""

    probability: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)
    duration: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Behaviour:
    checkin: Latency = Latency("uniform", 20.0, 120.0)
    receipt: Latency = Latency("lognormal", 25.0, 50.0)
    on_scene: Latency = Latency("uniform", 240.0, 720.0)
    completed: Latency = Latency("uniform", 360.0, 1200.0)
    decline: float = 0.0
    miss: float = 0.0
    decline_reason: str = "力量不足，无法执行"
    dropouts: EpisodeSpec = EpisodeSpec()
    frozen: EpisodeSpec = EpisodeSpec()
    black: EpisodeSpec = EpisodeSpec()
    miss_commands: frozenset[str] = frozenset()
    decline_commands: frozenset[str] = frozenset()
    fps: float = 15.0
    audio: bool = True

    def latency(self, stage: str) -> Latency:
        return {"receipt": self.receipt, "on_scene": self.on_scene, "completed": self.completed}[stage]

    def episode(self, kind: str) -> EpisodeSpec:
        return {"dropouts": self.dropouts, "frozen": self.frozen, "black": self.black}[kind]


@dataclass(frozen=True)
class Profile:
    id: str
    base: Behaviour
    overrides: Mapping[str, Behaviour] = field(default_factory=dict)
    file: str = ""

    def for_dept(self, dept: str) -> Behaviour:
        return self.overrides.get(dept, self.base)


# --- plans (what a bot will do; pure functions of the seed) ------------------------------------

@dataclass(frozen=True)
class Plan:
    """One command's answers: `outcome` answer/decline/miss; `delays` drill seconds after the
    previous step (receipt after delivery, on_scene after receipt, completed after on_scene)."""

    outcome: str
    delays: Mapping[str, float]


@dataclass(frozen=True)
class Episode:
    kind: str  # dropouts, frozen, black
    start: float  # drill seconds from the operation start
    duration: float


def rng_for(seed: int, index: int, key: str) -> random.Random:
    """An independent stream per (seed, department index, key): arrival order never matters."""
    return random.Random(f"commandhub/{seed}/{index}/{key}")


def plan_command(b: Behaviour, seed: int, index: int, command_id: str) -> Plan:
    """The bot's answers to scenario command `command_id` (same draws for the same inputs)."""
    rng = rng_for(seed, index, "command/" + command_id)
    u_miss, u_decline = rng.random(), rng.random()
    delays = {s: b.latency(s).sample(rng) for s in STAGES}
    if command_id in b.miss_commands or (command_id not in b.decline_commands and u_miss < b.miss):
        return Plan("miss", delays)
    if command_id in b.decline_commands or u_decline < b.decline:
        return Plan("decline", delays)
    return Plan("answer", delays)


def checkin_delay(b: Behaviour, seed: int, index: int) -> float:
    return b.checkin.sample(rng_for(seed, index, "checkin"))


def plan_episodes(b: Behaviour, seed: int, index: int) -> list[Episode]:
    out = []
    for kind in EPISODES:
        spec = b.episode(kind)
        rng = rng_for(seed, index, "episode/" + kind)
        u, s, d = rng.random(), rng.random(), rng.random()
        if u < spec.probability:
            start = spec.window[0] + (spec.window[1] - spec.window[0]) * s
            dur = spec.duration[0] + (spec.duration[1] - spec.duration[0]) * d
            out.append(Episode(kind, start, dur))
    return sorted(out, key=lambda e: (e.start, e.kind))


# --- loading ----------------------------------------------------------------------------------

BEHAVIOUR_KEYS = {"checkin", *STAGES, "decline", "miss", "decline_reason", *EPISODES,
                  "miss_commands", "decline_commands", "fps", "audio"}
TOP_KEYS = {"id", "departments", *BEHAVIOUR_KEYS}


def bundled(name: str) -> Path:
    path = Path(str(resources.files("drills") / "profiles" / f"{name}.yaml"))
    if not path.is_file():
        raise FileNotFoundError(f"no bundled profile {name!r}")
    return path


def resolve_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return bundled(name_or_path)


def load_profile(path: str | Path, departments: set[str] | None = None) -> Profile:
    try:
        return _Reader(load_file(path), departments).profile()
    except YamlSourceError as exc:
        raise ProfileError.of(exc) from exc


def load_profile_text(text: str, file: str = "<profile>", departments: set[str] | None = None) -> Profile:
    try:
        return _Reader(load_text(text, file), departments).profile()
    except YamlSourceError as exc:
        raise ProfileError.of(exc) from exc


Path_ = tuple[str | int, ...]


class _Reader(Checker):
    def __init__(self, doc: Doc, departments: set[str] | None) -> None:
        super().__init__(doc)
        self.departments = departments

    def seconds(self, value: Any, path: Path_) -> float:
        return self.duration(value, path, MAX_LATENCY_S, "1 day")

    def pair(self, value: Any, path: Path_) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.err(path, "a list of two durations [low, high]")
        lo, hi = self.seconds(value[0], (*path, 0)), self.seconds(value[1], (*path, 1))
        if hi < lo:
            raise self.err((*path, 1), "must not be below the first")
        return lo, hi

    def probability(self, value: Any, path: Path_) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.err(path, "a probability between 0 and 1")
        return float(value)

    def latency(self, value: Any, path: Path_) -> Latency:
        m = self.mapping(value, path, {"fixed", "uniform", "lognormal"})
        if len(m) != 1:
            raise self.err(path, "exactly one of fixed, uniform, lognormal")
        kind, v = next(iter(m.items()))
        if kind == "fixed":
            return Latency("fixed", self.seconds(v, (*path, kind)))
        if kind == "uniform":
            lo, hi = self.pair(v, (*path, kind))
            return Latency("uniform", lo, hi)
        lm = self.mapping(v, (*path, kind), {"median", "p90"})
        for k in ("median", "p90"):
            if k not in lm:
                raise self.err((*path, kind, k), "required")
        med = self.seconds(lm["median"], (*path, kind, "median"))
        p90 = self.seconds(lm["p90"], (*path, kind, "p90"))
        if med <= 0 or p90 <= med:
            raise self.err((*path, kind, "p90"), "need 0 < median < p90")
        return Latency("lognormal", med, p90)

    def episode(self, value: Any, path: Path_) -> EpisodeSpec:
        m = self.mapping(value, path, {"probability", "window", "duration"})
        return EpisodeSpec(self.probability(m.get("probability", 0.0), (*path, "probability")),
                           self.pair(m.get("window", [0, 0]), (*path, "window")),
                           self.pair(m.get("duration", [0, 0]), (*path, "duration")))

    def ids(self, value: Any, path: Path_) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.err(path, "a list of scenario command ids")
        return frozenset(value)

    def behaviour(self, m: Mapping[str, Any], path: Path_, base: Behaviour) -> Behaviour:
        kw: dict[str, Any] = {}
        for key, value in m.items():
            p = (*path, key)
            if key in ("checkin", *STAGES):
                kw[key] = self.latency(value, p)
            elif key in ("decline", "miss"):
                kw[key] = self.probability(value, p)
            elif key == "decline_reason":
                if not isinstance(value, str) or not value.strip():
                    raise self.err(p, "a non-empty string")
                kw[key] = value
            elif key in EPISODES:
                kw[key] = self.episode(value, p)
            elif key in ("miss_commands", "decline_commands"):
                kw[key] = self.ids(value, p)
            elif key == "fps":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 30:
                    raise self.err(p, "frames per second, 1 to 30")
                kw[key] = float(value)
            elif key == "audio":
                if not isinstance(value, bool):
                    raise self.err(p, "true or false")
                kw[key] = value
        return replace(base, **kw)

    def profile(self) -> Profile:
        top = self.mapping(self.doc.data, (), TOP_KEYS)
        pid = top.get("id")
        if not isinstance(pid, str) or not pid:
            raise self.err(("id",), "required, a name")
        base = self.behaviour({k: v for k, v in top.items() if k in BEHAVIOUR_KEYS}, (), Behaviour())
        overrides: dict[str, Behaviour] = {}
        deps = top.get("departments") or {}
        if not isinstance(deps, Mapping):
            raise self.err(("departments",), "a mapping: department id -> overrides")
        for dept, m in deps.items():
            if self.departments is not None and dept not in self.departments:
                raise self.err(("departments", dept), f"no department {dept!r} in the roster")
            overrides[str(dept)] = self.behaviour(
                self.mapping(m, ("departments", dept), BEHAVIOUR_KEYS), ("departments", dept), base)
        return Profile(pid, base, overrides, self.doc.file)

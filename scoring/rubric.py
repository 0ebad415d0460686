"""The rubric: a YAML file loaded into typed objects, validated with file:line:col errors."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.yamlsrc import Doc, Path_, YamlSourceError, load_file, load_text, parse_duration
from scoring.catalog import METRICS, PAIR_FRACTION_AGGREGATES, STAGES, MetricSpec
from scoring.curves import Curve, Linear, PerUnit, Steps

RubricError = YamlSourceError
Deadline = float | Literal["from_command", "from_scenario"]
RATINGS = ("P", "S", "M", "U")
SEVERITIES = ("不足项", "整改项", "改进项")
EPS = 1e-9
VIDEO_METRICS = ("video_uptime", "frozen_black_s")


@dataclass(frozen=True)
class Text:
    """A label in Chinese and English."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Grade:
    id: str
    label: Text
    min: float


@dataclass(frozen=True)
class MetricParams:
    """Options of a metric: the deadline it is judged against and similar."""

    deadline: Deadline | None = None
    within: float | None = None
    tolerance: float = 60.0
    stage: str | None = None
    # video metrics, from the rubric's `video:` options
    no_video: Literal["zero", "not_applicable"] = "zero"
    presence_fallback: bool = True


@dataclass(frozen=True)
class MetricCriterion:
    id: str
    title: Text
    points: float
    metric: MetricSpec
    scope: str
    aggregate: str
    curve: Curve
    curve_name: str
    params: MetricParams
    action: Text | None
    type: Literal["metric"] = "metric"


@dataclass(frozen=True)
class CountCriterion:
    id: str
    title: Text
    points: float
    metric: MetricSpec
    scope: str
    deduct: float
    params: MetricParams
    action: Text | None
    type: Literal["count"] = "count"


@dataclass(frozen=True)
class ObservationCriterion:
    id: str
    title: Text
    points: float
    scope: str
    capability: Text
    critical_tasks: tuple[Text, ...]
    action: Text | None
    type: Literal["observation"] = "observation"


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: Text
    points: float


@dataclass(frozen=True)
class ChecklistCriterion:
    id: str
    title: Text
    points: float
    items: tuple[ChecklistItem, ...]
    action: Text | None
    scope: str = "overall"
    type: Literal["checklist"] = "checklist"


Criterion = MetricCriterion | CountCriterion | ObservationCriterion | ChecklistCriterion


@dataclass(frozen=True)
class Section:
    id: str
    title: Text
    points: float
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class Deduction:
    """Points taken off the total per occurrence (or per department with any), up to `max`."""

    id: str
    title: Text
    metric: MetricSpec
    params: MetricParams
    per: Literal["occurrence", "department"]
    points: float
    max: float | None
    action: Text | None


@dataclass(frozen=True)
class Veto:
    """一票否决: when the condition holds, the grade is capped at `cap`."""

    id: str
    title: Text
    when: Literal["critical_incomplete", "critical_missed", "metric"]
    metric: MetricSpec | None
    params: MetricParams
    aggregate: str
    below: float | None
    above: float | None
    cap: str


@dataclass(frozen=True)
class VideoOptions:
    """The rubric's `video:` key: what a department with no feed scores, and what older logs
    without media events (uptime only from connection presence) do."""

    no_video: Literal["zero", "not_applicable"] = "zero"
    without_media_events: Literal["presence", "not_measured"] = "presence"


@dataclass(frozen=True)
class Rubric:
    id: str
    title: Text
    version: str
    total: float
    grades: tuple[Grade, ...]
    ratings: Mapping[str, float]
    curves: Mapping[str, Curve]
    sections: tuple[Section, ...]
    deductions: tuple[Deduction, ...]
    vetoes: tuple[Veto, ...]
    department_sections: tuple[str, ...]
    sha256: str
    file: str
    uses_scenario: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    video: VideoOptions = field(default_factory=lambda: VideoOptions())

    def grade_for(self, percent: float) -> Grade:
        for g in self.grades:
            if percent >= g.min - EPS:
                return g
        return self.grades[-1]

    def grade_by_id(self, gid: str) -> Grade:
        return next(g for g in self.grades if g.id == gid)

    def criteria(self) -> list[tuple[Section, Criterion]]:
        return [(s, c) for s in self.sections for c in s.criteria]


class _Reader:
    """Walks the document, turning values into typed fields or positioned errors."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def err(self, path: Path_, why: str) -> YamlSourceError:
        return self.doc.error(path, why)

    def get(self, path: Path_) -> Any:
        node: Any = self.doc.data
        for part in path:
            node = node[part]
        return node

    def mapping(
        self, path: Path_, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        value = self.get(path)
        if not isinstance(value, dict):
            raise self.err(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.err((*path, key), f"unknown key (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                raise self.err(path, f"missing required key {key!r}")
        return value

    def seq(self, path: Path_, nonempty: bool = True) -> list[Any]:
        value = self.get(path)
        if not isinstance(value, list):
            raise self.err(path, f"must be a list, got {type(value).__name__}")
        if nonempty and not value:
            raise self.err(path, "must not be empty")
        return value

    def text(self, path: Path_) -> Text:
        value = self.get(path)
        if isinstance(value, str) and value.strip():
            return Text(value, value)
        if isinstance(value, dict):
            m = self.mapping(path, ("zh", "en"), ("zh", "en"))
            zh, en = m["zh"], m["en"]
            if not isinstance(zh, str) or not isinstance(en, str):
                raise self.err(path, "zh and en must be text")
            return Text(zh, en)
        raise self.err(path, "must be text or a mapping {zh, en}")

    def ident(self, path: Path_) -> str:
        value = self.get(path)
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise self.err(path, "must be a non-empty id")
        return str(value)

    def number(self, path: Path_, lo: float | None = None, hi: float | None = None) -> float:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.err(path, f"must be a number, got {value!r}")
        if lo is not None and value < lo:
            raise self.err(path, f"must be >= {lo:g}, got {value!r}")
        if hi is not None and value > hi:
            raise self.err(path, f"must be <= {hi:g}, got {value!r}")
        return float(value)

    def duration(self, path: Path_) -> float:
        try:
            return parse_duration(self.get(path))
        except ValueError as exc:
            raise self.err(path, str(exc)) from None

    def choice(self, path: Path_, options: tuple[str, ...]) -> str:
        value = self.get(path)
        if value not in options:
            raise self.err(path, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)


CRITERION_KEYS = {
    "metric": (
        "id",
        "type",
        "title",
        "points",
        "metric",
        "scope",
        "aggregate",
        "curve",
        "deadline",
        "within",
        "tolerance",
        "stage",
        "action",
    ),
    "count": (
        "id",
        "type",
        "title",
        "points",
        "metric",
        "scope",
        "deduct",
        "deadline",
        "within",
        "tolerance",
        "stage",
        "action",
    ),
    "observation": ("id", "type", "title", "points", "scope", "capability", "critical_tasks", "action"),
    "checklist": ("id", "type", "title", "points", "items", "action"),
}


class _Builder:
    def __init__(self, doc: Doc) -> None:
        self.r = _Reader(doc)
        self.curves: dict[str, Curve] = {}
        self.ids: set[str] = set()
        self.uses_scenario = False
        self.video = VideoOptions()

    # curves -----------------------------------------------------------------------------
    def curve(self, path: Path_) -> Curve:
        r = self.r
        m = r.mapping(path, ("type", "full_at", "zero_at", "steps", "otherwise", "unit", "minus"), ("type",))
        kind = r.choice((*path, "type"), ("linear", "steps", "per_unit"))
        if kind == "linear":
            for k in ("full_at", "zero_at"):
                if k not in m:
                    raise r.err(path, f"linear curve needs {k!r}")
            full, zero = r.duration((*path, "full_at")), r.duration((*path, "zero_at"))
            if abs(full - zero) < EPS:
                raise r.err((*path, "zero_at"), "must differ from full_at")
            return Linear(full, zero)
        if kind == "per_unit":
            for k in ("full_at", "unit", "minus"):
                if k not in m:
                    raise r.err(path, f"per_unit curve needs {k!r}")
            unit = r.duration((*path, "unit"))
            if unit <= 0:
                raise r.err((*path, "unit"), "must be greater than zero")
            minus = r.number((*path, "minus"), 0, 1)
            if minus <= 0:
                raise r.err((*path, "minus"), "must be greater than zero")
            return PerUnit(r.duration((*path, "full_at")), unit, minus)
        steps = r.seq((*path, "steps"))
        pairs: list[tuple[float, float]] = []
        better: str | None = None
        for i, _ in enumerate(steps):
            sp = (*path, "steps", i)
            sm = r.mapping(sp, ("upto", "atleast", "fraction"), ("fraction",))
            keys = [k for k in ("upto", "atleast") if k in sm]
            if len(keys) != 1:
                raise r.err(sp, "each step needs exactly one of 'upto' (lower is better) or 'atleast'")
            direction = "lower" if keys[0] == "upto" else "higher"
            if better is not None and direction != better:
                raise r.err((*sp, keys[0]), "do not mix 'upto' and 'atleast' in one curve")
            better = direction
            t = r.duration((*sp, keys[0]))
            f = r.number((*sp, "fraction"), 0, 1)
            if pairs:
                pt, pf = pairs[-1]
                if (direction == "lower" and t <= pt) or (direction == "higher" and t >= pt):
                    raise r.err((*sp, keys[0]), "thresholds must run from best to worst")
                if f > pf + EPS:
                    raise r.err((*sp, "fraction"), "fractions must not rise as the value gets worse")
            pairs.append((t, f))
        otherwise = r.number((*path, "otherwise"), 0, 1) if "otherwise" in m else 0.0
        if pairs and otherwise > pairs[-1][1] + EPS:
            raise r.err((*path, "otherwise"), "must not exceed the last step's fraction")
        return Steps(tuple(pairs), otherwise, "lower" if better == "lower" else "higher")

    # criteria ---------------------------------------------------------------------------
    def params(self, path: Path_, m: dict[str, Any], spec: MetricSpec) -> MetricParams:
        r = self.r
        for key in ("deadline", "within", "tolerance", "stage"):
            if key in m and key not in spec.params:
                allowed = ", ".join(spec.params) or "none"
                raise r.err((*path, key), f"metric {spec.name} takes no {key!r} (takes: {allowed})")
        deadline: Deadline | None = None
        if "deadline" in m:
            value = m["deadline"]
            if value in ("from_command", "from_scenario"):
                deadline = value
                self.uses_scenario |= value == "from_scenario"
            else:
                deadline = r.duration((*path, "deadline"))
        elif spec.name == "missed":
            deadline = "from_command"
        within = r.duration((*path, "within")) if "within" in m else None
        tolerance = r.duration((*path, "tolerance")) if "tolerance" in m else 60.0
        stage = r.choice((*path, "stage"), STAGES) if "stage" in m else None
        if spec.name in VIDEO_METRICS:
            return MetricParams(
                deadline,
                within,
                tolerance,
                stage,
                self.video.no_video,
                self.video.without_media_events == "presence",
            )
        return MetricParams(deadline, within, tolerance, stage)

    def metric_spec(self, path: Path_) -> MetricSpec:
        name = self.r.get(path)
        if name not in METRICS:
            raise self.r.err(path, f"unknown metric {name!r} (known: {', '.join(sorted(METRICS))})")
        return METRICS[name]

    def criterion(self, path: Path_) -> Criterion:
        r = self.r
        raw = r.get(path)
        if not isinstance(raw, dict):
            raise r.err(path, "a criterion must be a mapping")
        if "type" not in raw:
            raise r.err(path, "missing required key 'type'")
        kind = r.choice((*path, "type"), tuple(CRITERION_KEYS))
        m = r.mapping(path, CRITERION_KEYS[kind], ("id", "title", "points"))
        cid = r.ident((*path, "id"))
        if cid in self.ids:
            raise r.err((*path, "id"), f"duplicate id {cid!r}")
        self.ids.add(cid)
        title = r.text((*path, "title"))
        points = r.number((*path, "points"), 0)
        action = r.text((*path, "action")) if "action" in m else None
        if kind in ("metric", "count"):
            if "metric" not in m:
                raise r.err(path, "missing required key 'metric'")
            spec = self.metric_spec((*path, "metric"))
            scope = r.choice((*path, "scope"), spec.scopes) if "scope" in m else "overall"
            params = self.params(path, m, spec)
            if kind == "count":
                if not spec.countable:
                    raise r.err(
                        (*path, "metric"),
                        f"a count criterion needs an occurrence metric; {spec.name} is not one",
                    )
                if scope == "per_command_department":
                    raise r.err((*path, "scope"), "count criteria use overall or per_department")
                if "deduct" not in m:
                    raise r.err(path, "missing required key 'deduct'")
                deduct = r.number((*path, "deduct"), 0)
                return CountCriterion(cid, title, points, spec, scope, deduct, params, action)
            if "curve" not in m:
                raise r.err(path, "missing required key 'curve'")
            options: tuple[str, ...] = (
                PAIR_FRACTION_AGGREGATES if scope == "per_command_department" else spec.aggregates
            )
            agg = (
                r.choice((*path, "aggregate"), options)
                if "aggregate" in m
                else (spec.default_aggregate if spec.default_aggregate in options else options[0])
            )
            curve_value = m["curve"]
            if isinstance(curve_value, str):
                if curve_value not in self.curves:
                    known = ", ".join(sorted(self.curves)) or "none defined"
                    raise r.err((*path, "curve"), f"unknown curve {curve_value!r} (curves: {known})")
                curve, curve_name = self.curves[curve_value], curve_value
            else:
                curve, curve_name = self.curve((*path, "curve")), ""
            better = spec.better
            if agg in ("ratio", "sum") and spec.unit == "bool":
                better = spec.better
            if curve.better != better:
                raise r.err(
                    (*path, "curve"),
                    f"curve rewards {'higher' if curve.better == 'higher' else 'lower'} values "
                    f"but for {spec.name} {better} is better",
                )
            return MetricCriterion(cid, title, points, spec, scope, agg, curve, curve_name, params, action)
        if kind == "observation":
            scope = r.choice((*path, "scope"), ("overall", "per_department")) if "scope" in m else "overall"
            if "capability" not in m:
                raise r.err(path, "missing required key 'capability' (the capability target judged)")
            capability = r.text((*path, "capability"))
            tasks: tuple[Text, ...] = ()
            if "critical_tasks" in m:
                tasks = tuple(
                    r.text((*path, "critical_tasks", i))
                    for i, _ in enumerate(r.seq((*path, "critical_tasks")))
                )
            return ObservationCriterion(cid, title, points, scope, capability, tasks, action)
        if "items" not in m:
            raise r.err(path, "missing required key 'items'")
        items: list[ChecklistItem] = []
        item_ids: set[str] = set()
        raw_items = r.seq((*path, "items"))
        weighted = 0
        for i, _ in enumerate(raw_items):
            ip = (*path, "items", i)
            im = r.mapping(ip, ("id", "text", "points"), ("id", "text"))
            iid = r.ident((*ip, "id"))
            if iid in item_ids or iid in self.ids:
                raise r.err((*ip, "id"), f"duplicate id {iid!r}")
            item_ids.add(iid)
            ipoints = r.number((*ip, "points"), 0) if "points" in im else math.nan
            weighted += "points" in im
            items.append(ChecklistItem(iid, r.text((*ip, "text")), ipoints))
        if weighted and weighted != len(items):
            raise r.err((*path, "items"), "give points to every item or to none")
        if weighted:
            total = math.fsum(it.points for it in items)
            if abs(total - points) > EPS:
                raise r.err(
                    (*path, "points"),
                    f"points do not add up: items sum to {total:g}, criterion has {points:g}",
                )
        else:
            share = points / len(items)
            items = [ChecklistItem(it.id, it.text, share) for it in items]
        return ChecklistCriterion(cid, title, points, tuple(items), action)

    # whole document ---------------------------------------------------------------------
    def build(self, sha: str) -> Rubric:
        r = self.r
        top = (
            "id",
            "title",
            "version",
            "total",
            "grades",
            "ratings",
            "curves",
            "sections",
            "deductions",
            "vetoes",
            "department_score",
            "video",
        )
        m = r.mapping((), top, ("id", "title", "version", "total", "grades", "sections"))
        if "video" in m:
            r.mapping(("video",), ("no_video", "without_media_events"))
            self.video = VideoOptions(
                "not_applicable"
                if "no_video" in m["video"]
                and r.choice(("video", "no_video"), ("zero", "not_applicable")) == "not_applicable"
                else "zero",
                "not_measured"
                if "without_media_events" in m["video"]
                and r.choice(("video", "without_media_events"), ("presence", "not_measured"))
                == "not_measured"
                else "presence",
            )
        rid = r.ident(("id",))
        title = r.text(("title",))
        version = str(m["version"])
        total = r.number(("total",), EPS)

        grades: list[Grade] = []
        gids: set[str] = set()
        for i, _ in enumerate(r.seq(("grades",))):
            gp = ("grades", i)
            gm = r.mapping(gp, ("id", "zh", "en", "min"), ("id", "zh", "en", "min"))
            gid = r.ident((*gp, "id"))
            if gid in gids:
                raise r.err((*gp, "id"), f"duplicate grade {gid!r}")
            gids.add(gid)
            low = r.number((*gp, "min"), 0, 100)
            if grades and low >= grades[-1].min:
                raise r.err((*gp, "min"), "grades must be listed from the highest band down")
            if not isinstance(gm["zh"], str) or not isinstance(gm["en"], str):
                raise r.err(gp, "zh and en must be text")
            grades.append(Grade(gid, Text(gm["zh"], gm["en"]), low))
        if grades[-1].min != 0:
            raise r.err(("grades", len(grades) - 1, "min"), "the lowest band must start at 0")

        ratings = {"P": 1.0, "S": 0.75, "M": 0.4, "U": 0.0}
        if "ratings" in m:
            r.mapping(("ratings",), RATINGS, RATINGS)
            ratings = {k: r.number(("ratings", k), 0, 1) for k in RATINGS}
            for a, b in itertools.pairwise(RATINGS):
                if ratings[b] > ratings[a]:
                    raise r.err(("ratings", b), f"{b} must not be worth more than {a}")

        if "curves" in m:
            cm = r.mapping(("curves",), tuple(r.get(("curves",)) or ()))
            for name in cm:
                self.curves[str(name)] = self.curve(("curves", name))

        sections: list[Section] = []
        sids: set[str] = set()
        for i, _ in enumerate(r.seq(("sections",))):
            sp = ("sections", i)
            r.mapping(sp, ("id", "title", "points", "criteria"), ("id", "title", "points", "criteria"))
            sid = r.ident((*sp, "id"))
            if sid in sids:
                raise r.err((*sp, "id"), f"duplicate section {sid!r}")
            sids.add(sid)
            spoints = r.number((*sp, "points"), 0)
            crits = tuple(
                self.criterion((*sp, "criteria", j)) for j, _ in enumerate(r.seq((*sp, "criteria")))
            )
            csum = math.fsum(c.points for c in crits)
            if abs(csum - spoints) > EPS:
                raise r.err(
                    (*sp, "points"),
                    f"points do not add up: criteria sum to {csum:g}, section has {spoints:g}",
                )
            sections.append(Section(sid, r.text((*sp, "title")), spoints, crits))
        ssum = math.fsum(s.points for s in sections)
        if abs(ssum - total) > EPS:
            raise r.err(("total",), f"points do not add up: sections sum to {ssum:g}, total is {total:g}")

        deductions: list[Deduction] = []
        if "deductions" in m:
            for i, _ in enumerate(r.seq(("deductions",), nonempty=False)):
                dp = ("deductions", i)
                dm = r.mapping(
                    dp,
                    (
                        "id",
                        "title",
                        "metric",
                        "per",
                        "points",
                        "max",
                        "deadline",
                        "within",
                        "tolerance",
                        "stage",
                        "action",
                    ),
                    ("id", "title", "metric", "points"),
                )
                did = r.ident((*dp, "id"))
                if did in self.ids:
                    raise r.err((*dp, "id"), f"duplicate id {did!r}")
                self.ids.add(did)
                spec = self.metric_spec((*dp, "metric"))
                if not spec.countable:
                    raise r.err(
                        (*dp, "metric"), f"a deduction needs an occurrence metric; {spec.name} is not one"
                    )
                per = r.choice((*dp, "per"), ("occurrence", "department")) if "per" in dm else "occurrence"
                if per == "department" and spec.basis == "inject":
                    raise r.err((*dp, "per"), f"{spec.name} has no departments")
                deductions.append(
                    Deduction(
                        did,
                        r.text((*dp, "title")),
                        spec,
                        self.params(dp, dm, spec),
                        "department" if per == "department" else "occurrence",
                        r.number((*dp, "points"), 0),
                        r.number((*dp, "max"), 0) if "max" in dm else None,
                        r.text((*dp, "action")) if "action" in dm else None,
                    )
                )

        vetoes: list[Veto] = []
        if "vetoes" in m:
            for i, _ in enumerate(r.seq(("vetoes",), nonempty=False)):
                vp = ("vetoes", i)
                r.mapping(vp, ("id", "title", "when", "cap"), ("id", "title", "when", "cap"))
                vid = r.ident((*vp, "id"))
                if vid in self.ids:
                    raise r.err((*vp, "id"), f"duplicate id {vid!r}")
                self.ids.add(vid)
                cap = r.ident((*vp, "cap"))
                if cap not in gids:
                    raise r.err((*vp, "cap"), f"unknown grade {cap!r} (grades: {', '.join(gids)})")
                when_raw = r.get((*vp, "when"))
                if isinstance(when_raw, str):
                    when = r.choice((*vp, "when"), ("critical_incomplete", "critical_missed"))
                    vetoes.append(
                        Veto(
                            vid,
                            r.text((*vp, "title")),
                            "critical_incomplete" if when == "critical_incomplete" else "critical_missed",
                            None,
                            MetricParams(),
                            "",
                            None,
                            None,
                            cap,
                        )
                    )
                    continue
                wp = (*vp, "when")
                wm = r.mapping(
                    wp,
                    ("metric", "aggregate", "below", "above", "deadline", "within", "tolerance", "stage"),
                    ("metric",),
                )
                spec = self.metric_spec((*wp, "metric"))
                agg = (
                    r.choice((*wp, "aggregate"), spec.aggregates)
                    if "aggregate" in wm
                    else spec.default_aggregate
                )
                if ("below" in wm) == ("above" in wm):
                    raise r.err(wp, "give exactly one of 'below' or 'above'")
                below = r.duration((*wp, "below")) if "below" in wm else None
                above = r.duration((*wp, "above")) if "above" in wm else None
                vetoes.append(
                    Veto(
                        vid,
                        r.text((*vp, "title")),
                        "metric",
                        spec,
                        self.params(wp, wm, spec),
                        agg,
                        below,
                        above,
                        cap,
                    )
                )

        dept_sections: tuple[str, ...] = ()
        if "department_score" in m:
            r.mapping(("department_score",), ("sections",), ("sections",))
            names = r.seq(("department_score", "sections"))
            for j, name in enumerate(names):
                if name not in sids:
                    raise r.err(
                        ("department_score", "sections", j),
                        f"unknown section {name!r} (sections: {', '.join(sorted(sids))})",
                    )
            dept_sections = tuple(str(n) for n in names)
            if not any(
                getattr(c, "scope", "overall") != "overall"
                for s in sections
                if s.id in dept_sections
                for c in s.criteria
            ):
                raise r.err(
                    ("department_score", "sections"), "none of these sections has a per-department criterion"
                )

        return Rubric(
            rid,
            title,
            version,
            total,
            tuple(grades),
            ratings,
            dict(self.curves),
            tuple(sections),
            tuple(deductions),
            tuple(vetoes),
            dept_sections,
            sha,
            self.r.doc.file,
            self.uses_scenario,
            video=self.video,
        )


def load_rubric_text(text: str, file: str = "<rubric>") -> Rubric:
    """Parse and validate a rubric; raise RubricError (file:line:col: key: why)."""
    doc = load_text(text, file)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _Builder(doc).build(sha)


def load_rubric(path: str | Path) -> Rubric:
    """Load a rubric file; its SHA-256 is of the file's bytes."""
    p = Path(path)
    doc = load_file(p)
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    return _Builder(doc).build(sha)


BUNDLED = Path(__file__).resolve().parent / "rubrics"


def bundled(name: str = "joint-live-drill") -> Path:
    """Path of a rubric shipped with CommandHub."""
    return BUNDLED / f"{name}.yaml"

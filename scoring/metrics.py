"""Facts measured from a DrillLog (numpy over the response columns) and the per-unit metric values."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.catalog import STAGES, MetricSpec
from scoring.drilllog import (
    ACKNOWLEDGED,
    COMPLETED,
    DECLINED,
    DELIVERED,
    ON_SCENE,
    Department,
    DrillLog,
    Operation,
    Parsed,
)
from scoring.notes import Note, note
from scoring.rubric import MetricParams
from scoring.scenario import ScenarioView
from scoring.videotime import KINDS as VIDEO_KINDS
from scoring.videotime import DeptVideo, Source, dept_video, event_dept

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]
NONE = np.iinfo(np.int64).max  # "never happened" for a timestamp column
US = 1_000_000.0
# `presence.offline` reasons that are a lost link, not a close or the hub's decision
# (`link_lost`: the client's pings went unanswered, docs/protocol.md)
UNPLANNED_OFFLINE = ("heartbeat", "error", "link_lost")


class ScoringError(Exception):
    """The log cannot be scored with this rubric (for example a needed scenario is missing)."""


@dataclass
class Units:
    """One metric's values, one per unit, with the departments and the events they came from."""

    value: F64
    dept: I64  # index into Facts.depts, -1 for none
    ev_seq: I64  # (n, k); 0 = no event
    ev_ts: I64  # (n, k)
    censored: BOOL
    label: list[str] = field(default_factory=list)
    pair: I64 | None = None  # index into the facts' pairs, for pair units

    def __len__(self) -> int:
        return len(self.value)

    def select(self, mask: BOOL) -> Units:
        idx = np.flatnonzero(mask)
        return Units(
            self.value[idx],
            self.dept[idx],
            self.ev_seq[idx],
            self.ev_ts[idx],
            self.censored[idx],
            [self.label[i] for i in idx] if self.label else [],
            None if self.pair is None else self.pair[idx],
        )

    def with_value(self, value: F64) -> Units:
        return Units(value, self.dept, self.ev_seq, self.ev_ts, self.censored, self.label, self.pair)


@dataclass(frozen=True)
class Inject:
    """A scripted inject: planned and actual release (seconds from operation start)."""

    id: str
    title: str
    type: str
    planned_s: float | None
    actual_s: float | None
    seq: int
    ts_us: int


@dataclass(frozen=True)
class Evaluator:
    """Who recorded a rating: the name from their token and the token id prefix (either may be
    unknown: older logs carry only an 8-hex id in `evaluator`, older ticks nothing)."""

    id: str | None
    name: str | None

    @property
    def key(self) -> str:
        return self.id or (f"name:{self.name}" if self.name else "unknown")

    def label(self, lang: str) -> str:
        if self.name and self.id:
            return f"{self.name} ({self.id})"
        if self.name:
            return self.name
        if self.id:
            return f"评估员 {self.id}" if lang == "zh" else f"evaluator {self.id}"
        return "未记录" if lang == "zh" else "not recorded"


HEX8 = re.compile(r"[0-9a-f]{8}")


def author_of(payload: Mapping[str, Any]) -> Evaluator:
    """The evaluator of an observation.recorded / checklist.ticked payload."""
    name, eid = payload.get("evaluator"), payload.get("evaluator_id")
    name = name if isinstance(name, str) and name.strip() else None
    if isinstance(eid, str) and eid:
        return Evaluator(eid, name)
    if name is not None and HEX8.fullmatch(name):  # older logs: the token id prefix
        return Evaluator(name, None)
    return Evaluator(None, name)


@dataclass(frozen=True)
class Observation:
    """An evaluator's P/S/M/U rating event, as logged (which one counts is the engine's call)."""

    criterion: str
    dept: str | None
    rating: str
    note: str
    seq: int
    ts_us: int
    author: Evaluator


@dataclass(frozen=True)
class Tick:
    """A checklist tick event, as logged."""

    item: str
    checked: bool
    note: str
    seq: int
    ts_us: int
    author: Evaluator


@dataclass(frozen=True)
class Excusal:
    """A department excused during the operation (dept.excused)."""

    dept: str
    reason: str
    seq: int
    ts_us: int


TAKING_PART, EXCUSED, NOT_TAKING_PART = "taking_part", "excused", "not_taking_part"


@dataclass
class Facts:
    """What happened in the operation, as arrays indexed by department, command and pair."""

    op: Operation
    depts: list[str]
    names: dict[str, Department]
    dept_status: list[str]  # TAKING_PART, EXCUSED or NOT_TAKING_PART, per department
    dept_ok: BOOL  # taking part and not excused: scored
    excused: dict[str, Excusal]
    # commands
    cmd_ids: list[str]
    cmd_text: list[str]
    cmd_seq: I64
    cmd_ts: I64
    cmd_critical: BOOL
    cmd_level: list[str]
    cmd_requires: BOOL  # (n, 3) receipt, on_scene, completed
    cmd_deadline: F64  # (n, 3) seconds, NaN when not given
    # (command, department) pairs, sorted by command then department
    p_cmd: I64
    p_dept: I64
    p_stage_ts: I64  # (n, 3) first time each stage was reached (a later stage implies earlier ones)
    p_stage_seq: I64
    p_receipt_kind: I64  # the response code that was the receipt (-1: none)
    p_declined_ts: I64
    p_declined_seq: I64
    p_delivered_ts: I64
    p_delivered_seq: I64
    p_cancel_ts: I64
    p_cancel_seq: I64
    # per department
    checkin_ts: I64
    checkin_seq: I64
    video: dict[str, DeptVideo]
    video_source: Source  # media: from the feeds; presence: older logs, from connections
    video_measured: bool
    uptime: F64
    frozen_black_s: F64
    no_feed: BOOL  # no live video at all during the drill
    # occurrence events: (dept index, seq, ts, stage index or -1, pair index or -1)
    overdue: list[tuple[int, int, int, int, int]]
    escalations: list[tuple[int, int, int, int]]  # (dept, seq, ts, pair or -1)
    disconnects: list[tuple[int, int, int]]
    injects: list[Inject]
    observations: list[Observation]  # valid ratings in log order
    ticks: list[Tick]
    level_changes: list[tuple[int, str, str]]
    notes: list[Note]

    @property
    def n_depts(self) -> int:
        return len(self.depts)

    @property
    def window_s(self) -> float:
        return (self.op.end_us - self.op.start_us) * self.scale

    @property
    def scale(self) -> float:
        """Drill seconds per logged microsecond (a compressed drill runs `speed` times faster)."""
        return self.op.speed / US

    def dept_index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.depts)}

    # --- per-unit metric values -----------------------------------------------------------
    def units(self, spec: MetricSpec, params: MetricParams, scenario: ScenarioView | None) -> Units:
        """The metric's value for each unit (department, pair, event or inject); units of
        departments not taking part or excused are left out (not applicable)."""
        u = self._units(spec, params, scenario)
        if len(u) and not self.dept_ok.all():
            u = u.select((u.dept < 0) | self.dept_ok[np.maximum(u.dept, 0)])
        return u

    def _units(self, spec: MetricSpec, params: MetricParams, scenario: ScenarioView | None) -> Units:
        name = spec.name
        if name in ("checkin_latency", "checked_in"):
            return self._checkin(name, params)
        if name in ("receipt_latency", "on_scene_latency", "completion_latency"):
            stage = {"receipt_latency": 0, "on_scene_latency": 1, "completion_latency": 2}[name]
            return self._latency(stage, params, scenario)
        if name == "missed":
            return self._missed(params, scenario)
        if name == "declined":
            return self._declined()
        if name in ("overdue", "escalated", "disconnects"):
            return self._occurrences(name, params)
        if name in ("video_uptime", "frozen_black_s"):
            return self._video(name, params)
        if name in ("injects_on_time", "inject_delay"):
            return self._injects(name, params)
        raise ScoringError(f"metric {name} is not implemented")

    def _dept_units(self, value: F64, censored: BOOL, seq: I64, ts: I64) -> Units:
        n = self.n_depts
        return Units(value, np.arange(n, dtype=np.int64), seq.reshape(n, -1), ts.reshape(n, -1), censored)

    def _checkin(self, name: str, params: MetricParams) -> Units:
        have = self.checkin_ts != NONE
        lat = np.where(have, (self.checkin_ts - self.op.start_us) * self.scale, self.window_s)
        if name == "checkin_latency":
            return self._dept_units(lat.astype(np.float64), ~have, self.checkin_seq, self.checkin_ts_ev())
        ok = have.copy()
        if params.within is not None:
            ok &= lat <= params.within + 1e-9
        return self._dept_units(ok.astype(np.float64), ~have, self.checkin_seq, self.checkin_ts_ev())

    def checkin_ts_ev(self) -> I64:
        return np.where(self.checkin_ts == NONE, 0, self.checkin_ts).astype(np.int64)

    def stage_applicable(self, stage: int) -> BOOL:
        """Pairs that owe this stage: the command requires it and it was not cancelled first."""
        req = self.cmd_requires[self.p_cmd, stage]
        reached = self.p_stage_ts[:, stage]
        cancelled_first = (self.p_cancel_ts != NONE) & (self.p_cancel_ts < reached)
        return np.asarray(req & ~cancelled_first, np.bool_)

    def latency(self, stage: int) -> tuple[F64, BOOL]:
        """Seconds from issue to the stage per pair; never reached -> censored at the window end."""
        issued = self.cmd_ts[self.p_cmd]
        reached = self.p_stage_ts[:, stage]
        missing = reached == NONE
        end = np.maximum(self.op.end_us, issued)
        t = np.where(missing, end, reached)
        return ((t - issued) * self.scale).astype(np.float64), missing

    def deadlines(self, stage: int, deadline: Any, scenario: ScenarioView | None) -> F64:
        """Per pair deadline (seconds) for a stage; +inf where none applies."""
        n = len(self.p_cmd)
        if isinstance(deadline, int | float):
            return np.full(n, float(deadline))
        if deadline == "from_scenario" and scenario is not None:
            stage_name = STAGES[stage]
            per_cmd = np.array(
                [scenario.deadline(lvl or self.op.level, stage_name) for lvl in self.cmd_level],
                dtype=np.float64,
            ).reshape(-1)
            from_cmd = self.cmd_deadline[:, stage]
            per_cmd = np.where(np.isnan(per_cmd), from_cmd, per_cmd)
            out = per_cmd[self.p_cmd] if len(per_cmd) else np.zeros(0)
        else:
            out = self.cmd_deadline[self.p_cmd, stage] if len(self.cmd_ids) else np.zeros(0)
        return np.where(np.isnan(out), np.inf, out).astype(np.float64)

    def _pair_units(self, value: F64, mask: BOOL, censored: BOOL, stage: int | None) -> Units:
        idx = np.flatnonzero(mask)
        cmd = self.p_cmd[idx]
        seq = np.zeros((len(idx), 2), np.int64)
        ts = np.zeros((len(idx), 2), np.int64)
        seq[:, 0] = self.cmd_seq[cmd]
        ts[:, 0] = self.cmd_ts[cmd]
        if stage is not None:
            s = self.p_stage_seq[idx, stage]
            t = self.p_stage_ts[idx, stage]
        else:
            s = self.p_declined_seq[idx]
            t = self.p_declined_ts[idx]
        seq[:, 1] = np.where(t == NONE, 0, s)
        ts[:, 1] = np.where(t == NONE, 0, t)
        # pair units are labelled by their pair (the command is facts.cmd_ids[p_cmd[pair]])
        return Units(value[idx], self.p_dept[idx], seq, ts, censored[idx], [], idx.astype(np.int64))

    def _latency(self, stage: int, params: MetricParams, scenario: ScenarioView | None) -> Units:
        lat, missing = self.latency(stage)
        if params.deadline is not None:
            dl = self.deadlines(stage, params.deadline, scenario)
            lat = np.where(np.isinf(dl), 0.0, np.maximum(lat - np.where(np.isinf(dl), 0.0, dl), 0.0))
        return self._pair_units(lat, self.stage_applicable(stage), missing, stage)

    def _missed(self, params: MetricParams, scenario: ScenarioView | None) -> Units:
        lat, missing = self.latency(0)
        dl = self.deadlines(0, params.deadline or "from_command", scenario)
        missed = missing | (lat > dl + 1e-9)
        return self._pair_units(missed.astype(np.float64), self.stage_applicable(0), missing, 0)

    def _declined(self) -> Units:
        declined = self.p_declined_ts != NONE
        applicable = (self.p_cancel_ts == NONE) | (self.p_cancel_ts > self.p_declined_ts)
        return self._pair_units(declined.astype(np.float64), applicable, ~declined, None)

    def _occurrences(self, name: str, params: MetricParams) -> Units:
        if name == "overdue":
            stage = STAGES.index(params.stage) if params.stage else -1
            rows = [(d, s, t) for d, s, t, st, _ in self.overdue if stage < 0 or st == stage]
        elif name == "escalated":
            rows = [(d, s, t) for d, s, t, _ in self.escalations]
        else:
            rows = self.disconnects
        n = len(rows)
        dept = np.array([r[0] for r in rows], np.int64).reshape(n)
        seq = np.array([r[1] for r in rows], np.int64).reshape(n, 1)
        ts = np.array([r[2] for r in rows], np.int64).reshape(n, 1)
        return Units(np.ones(n), dept, seq, ts, np.zeros(n, np.bool_))

    def _video(self, name: str, params: MetricParams) -> Units:
        n = self.n_depts
        k = max([len(v.evidence) for v in self.video.values()] + [1])
        seq = np.zeros((n, k), np.int64)
        ts = np.zeros((n, k), np.int64)
        for i, d in enumerate(self.depts):
            for j, (s, t) in enumerate(self.video[d].evidence):
                seq[i, j], ts[i, j] = s, t
        value = (self.uptime if name == "video_uptime" else self.frozen_black_s).astype(np.float64)
        censored = np.zeros(n, np.bool_)
        if name == "frozen_black_s":  # no feed at all: no picture, as bad as frozen throughout
            value = np.where(self.no_feed, self.window_s, value)
            censored = self.no_feed.copy()
        usable = self.video_measured and (self.video_source == "media" or params.presence_fallback)
        if not usable:
            value = np.full(n, np.nan)
        u = Units(value, np.arange(n, dtype=np.int64), seq, ts, censored)
        return u.select(~self.no_feed) if params.no_video == "not_applicable" else u

    def _injects(self, name: str, params: MetricParams) -> Units:
        n = len(self.injects)
        planned = np.array(
            [np.nan if i.planned_s is None else i.planned_s for i in self.injects], np.float64
        ).reshape(n)
        actual = np.array(
            [np.nan if i.actual_s is None else i.actual_s for i in self.injects], np.float64
        ).reshape(n)
        off = np.abs(actual - planned)
        never = np.isnan(actual)
        if name == "injects_on_time":
            value = np.where(np.isnan(off), 0.0, (off <= params.tolerance + 1e-9).astype(np.float64))
        else:
            value = np.where(never, np.inf, off)  # never released: the worst possible offset
        seq = np.array([i.seq for i in self.injects], np.int64).reshape(n, 1)
        ts = np.array([i.ts_us for i in self.injects], np.int64).reshape(n, 1)
        units = Units(value, np.full(n, -1, np.int64), seq, ts, never, [i.id for i in self.injects])
        # an offset needs a planned time: injects without one are left out of inject_delay
        return units if name == "injects_on_time" else units.select(~np.isnan(planned))

    # --- vetoes ---------------------------------------------------------------------------
    def critical_pairs(self) -> BOOL:
        ok = self.dept_ok[self.p_dept] if len(self.p_dept) else np.zeros(0, np.bool_)
        return np.asarray(self.cmd_critical[self.p_cmd] & (self.p_cancel_ts == NONE) & ok, np.bool_)

    def final_stage(self) -> I64:
        """Per pair, the last stage its command requires (0 receipt, 1 on scene, 2 completed)."""
        req = self.cmd_requires[self.p_cmd]
        return np.where(req[:, 2], 2, np.where(req[:, 1], 1, 0)).astype(np.int64)


# --- building the facts ----------------------------------------------------------------------


def _first_per_pair(
    pos: I64, ok: BOOL, kind: npt.NDArray[np.int8], code: int, ts: I64, seq: I64, n_pairs: int
) -> tuple[I64, I64]:
    """Earliest-logged event of `code` per pair: (ts, seq), NONE/0 where none."""
    out_ts = np.full(n_pairs, NONE, np.int64)
    out_seq = np.zeros(n_pairs, np.int64)
    sel = np.flatnonzero(ok & (kind == code))
    if len(sel):
        uniq, first = np.unique(pos[sel], return_index=True)
        out_ts[uniq] = ts[sel[first]]
        out_seq[uniq] = seq[sel[first]]
    return out_ts, out_seq


def _payload_dept(p: Parsed) -> str | None:
    d = p.payload.get("dept")
    return str(d) if isinstance(d, str) else p.dept


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return math.nan
    return float(value)


def _departments(log: DrillLog, notes: list[Note]) -> tuple[dict[str, Department], list[str], set[str]]:
    """Every department the operation names (roster, plus any that received commands) and
    those taking part (listed, or all of the roster in older logs; commanded ones count)."""
    op = log.operation
    names = {d.id: d for d in op.roster}
    taking = set(op.participants)
    for d in sorted(taking - set(names)):
        notes.append(note("unknown_participant", dept=d))
    taking &= set(names)
    commanded: set[str] = set()
    for p in log.of_kind("command.issued"):
        for d in p.payload.get("departments") or []:
            if isinstance(d, str) and d != "center":
                commanded.add(d)
    for d in sorted(commanded - set(names)):
        names[d] = Department(d, d, d)
        notes.append(note("not_in_roster", dept=d))
    if op.participants_listed:
        for d in sorted(commanded - taking):
            notes.append(note("commanded_not_listed", name_zh=names[d].name_zh, name_en=names[d].name_en))
    return names, sorted(names), taking | commanded


def _excusals(log: DrillLog, known: set[str]) -> dict[str, Excusal]:
    out: dict[str, Excusal] = {}
    for p in log.of_kind("dept.excused"):
        d = p.payload.get("dept")
        if isinstance(d, str) and d in known and d not in out:
            out[d] = Excusal(d, str(p.payload.get("reason") or ""), p.seq, p.ts_us)
    return out


def build_facts(log: DrillLog, scenario: ScenarioView | None = None) -> Facts:
    """Measure everything the metrics need from one operation's events."""
    op = log.operation
    notes: list[Note] = list(log.notes)
    if not op.ended:
        last = max([p.seq for p in log.parsed] + [int(log.responses.seq.max()) if len(log.responses) else 0])
        notes.append(note("not_ended", seq=last))
    names, depts, taking = _departments(log, notes)
    excused = _excusals(log, set(depts))
    status = [EXCUSED if d in excused else TAKING_PART if d in taking else NOT_TAKING_PART for d in depts]
    di = {d: i for i, d in enumerate(depts)}
    nd = len(depts)

    # commands ---------------------------------------------------------------------------
    cmd_index: dict[str, int] = {}
    cmd_rows: list[Parsed] = []
    for p in log.of_kind("command.issued"):
        cid = str(p.payload.get("command_id"))
        if cid in cmd_index:
            notes.append(note("issued_twice", cid=cid, seq=cmd_rows[cmd_index[cid]].seq))
            continue
        cmd_index[cid] = len(cmd_rows)
        cmd_rows.append(p)
    nc = len(cmd_rows)
    cmd_requires = np.zeros((nc, 3), np.bool_)
    cmd_deadline = np.full((nc, 3), np.nan)
    pc: list[int] = []
    pd: list[int] = []
    for i, p in enumerate(cmd_rows):
        req = p.payload.get("requires") or ["receipt"]
        dls = p.payload.get("deadlines") or {}
        for s, stage in enumerate(STAGES):
            cmd_requires[i, s] = stage in req or s == 0
            if isinstance(dls, Mapping):  # logged in real seconds: drill time = real * speed
                cmd_deadline[i, s] = _seconds(dls.get(stage)) * op.speed
        targets = sorted({d for d in p.payload.get("departments") or [] if isinstance(d, str) and d in di})
        for d in targets:
            pc.append(i)
            pd.append(di[d])
    p_cmd = np.asarray(pc, np.int64)
    p_dept = np.asarray(pd, np.int64)
    npairs = len(p_cmd)
    width = max(nd, 1)
    pair_key = p_cmd * width + p_dept  # sorted: commands in order, departments sorted

    def pairs_of(keys: list[tuple[object, object]]) -> list[int]:
        """The pair index of each (command id, department), -1 where there is none."""
        k = np.array(
            [
                cmd_index.get(str(c), -1) * width + di[d] if isinstance(d, str) and d in di else -1
                for c, d in keys
            ],
            np.int64,
        ).reshape(len(keys))
        valid = k >= 0
        j = (
            np.minimum(np.searchsorted(pair_key, k), max(npairs - 1, 0))
            if npairs
            else np.zeros(len(k), np.int64)
        )
        found = valid & (pair_key[j] == k) if npairs else np.zeros(len(k), np.bool_)
        return [int(x) for x in np.where(found, j, -1).tolist()]

    # responses -> pairs --------------------------------------------------------------------
    r = log.responses
    r_cmd = np.fromiter(map(cmd_index.get, r.command_id, repeat(-1)), np.int64, len(r))  # dict.get(c, -1)
    r_dept = np.fromiter(map(di.get, r.dept, repeat(-1)), np.int64, len(r))
    key = r_cmd * width + r_dept
    pos = np.searchsorted(pair_key, key) if npairs else np.zeros(len(r), np.int64)
    pos = np.minimum(pos, max(npairs - 1, 0))
    ok = (r_cmd >= 0) & (r_dept >= 0) & (npairs > 0)
    if npairs:
        ok &= pair_key[pos] == key
    firsts = {
        code: _first_per_pair(pos, ok, r.kind, code, r.ts_us, r.seq, npairs)
        for code in (DELIVERED, ACKNOWLEDGED, ON_SCENE, COMPLETED, DECLINED)
    }
    ack_t, ack_s = firsts[ACKNOWLEDGED]
    on_t, on_s = firsts[ON_SCENE]
    co_t, co_s = firsts[COMPLETED]
    de_t, de_s = firsts[DECLINED]
    stage_ts = np.full((npairs, 3), NONE, np.int64)
    stage_seq = np.zeros((npairs, 3), np.int64)
    rows_ = np.arange(npairs)
    stage_ts[:, 2], stage_seq[:, 2] = co_t, co_s  # completed
    cand_t = np.stack([on_t, co_t], axis=1)  # on scene: first of on_scene or completed
    cand_s = np.stack([on_s, co_s], axis=1)
    pick = np.argmin(cand_t, axis=1)
    stage_ts[:, 1] = cand_t[rows_, pick]
    stage_seq[:, 1] = cand_s[rows_, pick]
    # receipt: first of acknowledged, on_scene, completed or declined (any answer is a receipt)
    cand_t = np.stack([ack_t, on_t, co_t, de_t], axis=1)
    cand_s = np.stack([ack_s, on_s, co_s, de_s], axis=1)
    pick = np.argmin(cand_t, axis=1)
    stage_ts[:, 0] = cand_t[rows_, pick]
    stage_seq[:, 0] = cand_s[rows_, pick]
    codes = np.array([ACKNOWLEDGED, ON_SCENE, COMPLETED, DECLINED], np.int64)
    receipt_kind = np.where(stage_ts[:, 0] == NONE, -1, codes[pick] if npairs else 0).astype(np.int64)

    cancel_ts = np.full(npairs, NONE, np.int64)
    cancel_seq = np.zeros(npairs, np.int64)
    cancels = [(p, d) for p in log.of_kind("command.cancelled") for d in p.payload.get("departments") or []]
    for (p, _), j in zip(
        cancels, pairs_of([(p.payload.get("command_id"), d) for p, d in cancels]), strict=True
    ):
        if j >= 0 and p.ts_us < cancel_ts[j]:
            cancel_ts[j], cancel_seq[j] = p.ts_us, p.seq

    # check-in ---------------------------------------------------------------------------
    checkin_ts = np.full(nd, NONE, np.int64)
    checkin_seq = np.zeros(nd, np.int64)
    for p in log.of_kind("dept.checked_in"):
        if p.dept in di and checkin_ts[di[p.dept]] == NONE:
            checkin_ts[di[p.dept]] = p.ts_us
            checkin_seq[di[p.dept]] = p.seq

    # occurrences ------------------------------------------------------------------------
    marks = [(p, _payload_dept(p)) for p in log.of_kind("command.overdue")]
    marks = [(p, d) for p, d in marks if d in di]
    overdue: list[tuple[int, int, int, int, int]] = []
    for (p, od), j in zip(marks, pairs_of([(p.payload.get("command_id"), d) for p, d in marks]), strict=True):
        named = p.payload.get("stage")
        stage_i = STAGES.index(named) if named in STAGES else -1
        overdue.append((di[str(od)], p.seq, p.ts_us, stage_i, j))
    chased = [
        (p, d)
        for p in log.of_kind("command.escalated")
        for d in p.payload.get("departments") or []
        if isinstance(d, str) and d in di
    ]
    escalations = [
        (di[d], p.seq, p.ts_us, j)
        for (p, d), j in zip(
            chased, pairs_of([(p.payload.get("command_id"), d) for p, d in chased]), strict=True
        )
    ]
    disconnects = [
        (di[p.dept], p.seq, p.ts_us)
        for p in log.of_kind("presence.offline")
        if p.dept in di and p.payload.get("reason") in UNPLANNED_OFFLINE
    ]

    video = _video_facts(log, depts)

    # injects ----------------------------------------------------------------------------
    injects: list[Inject] = []
    seen: set[str] = set()
    planned_by_id = scenario.planned_injects() if scenario is not None else {}
    conditional = scenario.conditional if scenario is not None else frozenset()
    for p in log.of_kind("inject.released"):
        iid = str(p.payload.get("inject_id"))
        if iid in seen:
            continue
        seen.add(iid)
        planned = _seconds(p.payload.get("planned_offset_s"))
        if math.isnan(planned) and iid in planned_by_id:
            planned = planned_by_id[iid][1]
        actual = _seconds(p.payload.get("actual_offset_s"))
        if math.isnan(actual):
            actual = (p.ts_us - op.start_us) / US * op.speed
        injects.append(
            Inject(
                iid,
                str(p.payload.get("title") or ""),
                str(p.payload.get("type") or ""),
                None if math.isnan(planned) else planned,
                actual,
                p.seq,
                p.ts_us,
            )
        )
    for iid, (title, at) in planned_by_id.items():
        if iid not in seen and iid not in conditional:
            injects.append(Inject(iid, title, "", at, None, 0, 0))
            notes.append(note("inject_never_released", iid=iid))

    # evaluators -------------------------------------------------------------------------
    observations: list[Observation] = []
    for p in log.of_kind("observation.recorded"):
        rating = p.payload.get("rating")
        if rating not in ("P", "S", "M", "U"):
            notes.append(note("bad_rating", seq=p.seq, rating=repr(rating)))
            continue
        rated = p.payload.get("dept")
        observations.append(
            Observation(
                str(p.payload.get("criterion")),
                rated if isinstance(rated, str) else None,
                str(rating),
                str(p.payload.get("note") or ""),
                p.seq,
                p.ts_us,
                author_of(p.payload),
            )
        )
    ticks = [
        Tick(
            str(p.payload.get("item")),
            p.payload.get("checked") is True,
            str(p.payload.get("note") or ""),
            p.seq,
            p.ts_us,
            author_of(p.payload),
        )
        for p in log.of_kind("checklist.ticked")
    ]
    level_changes = [
        (p.ts_us, str(p.payload.get("from")), str(p.payload.get("to")))
        for p in log.of_kind("operation.level_changed")
    ]
    window = max(op.end_us - op.start_us, 1)
    return Facts(
        op=op,
        depts=depts,
        names=names,
        dept_status=status,
        dept_ok=np.array([s == TAKING_PART for s in status], np.bool_).reshape(nd),
        excused=excused,
        cmd_ids=[str(p.payload.get("command_id")) for p in cmd_rows],
        cmd_text=[str(p.payload.get("text") or "") for p in cmd_rows],
        cmd_seq=np.asarray([p.seq for p in cmd_rows], np.int64).reshape(nc),
        cmd_ts=np.asarray([p.ts_us for p in cmd_rows], np.int64).reshape(nc),
        cmd_critical=np.asarray([p.payload.get("critical") is True for p in cmd_rows], np.bool_).reshape(nc),
        cmd_level=[str(p.payload.get("level") or "") for p in cmd_rows],
        cmd_requires=cmd_requires,
        cmd_deadline=cmd_deadline,
        p_cmd=p_cmd,
        p_dept=p_dept,
        p_stage_ts=stage_ts,
        p_stage_seq=stage_seq,
        p_receipt_kind=receipt_kind,
        p_declined_ts=de_t,
        p_declined_seq=de_s,
        p_delivered_ts=firsts[DELIVERED][0],
        p_delivered_seq=firsts[DELIVERED][1],
        p_cancel_ts=cancel_ts,
        p_cancel_seq=cancel_seq,
        checkin_ts=checkin_ts,
        checkin_seq=checkin_seq,
        video=video.depts,
        video_source=video.source,
        video_measured=video.measured,
        uptime=np.array([video.depts[d].up_us / window for d in depts], np.float64).reshape(nd),
        frozen_black_s=np.array(
            [video.depts[d].frozen_black_us / US * op.speed for d in depts], np.float64
        ).reshape(nd),
        no_feed=np.array([video.depts[d].live_us == 0 for d in depts], np.bool_).reshape(nd),
        overdue=overdue,
        escalations=escalations,
        disconnects=disconnects,
        injects=injects,
        observations=observations,
        ticks=ticks,
        level_changes=level_changes,
        notes=notes,
    )


@dataclass
class _Video:
    depts: dict[str, DeptVideo]
    source: Source
    measured: bool


def _video_facts(log: DrillLog, depts: list[str]) -> _Video:
    """Which source tells when video was live (media events, else presence), and each
    department's segments. A hub that announces media events in hub.started
    (`media_events`) is taken at its word even when nobody published."""
    events = [*log.carry_in, *(p for p in log.parsed if p.kind in VIDEO_KINDS)]
    announced = any(p.kind == "hub.started" and p.payload.get("media_events") for p in log.carry_in)
    source: Source = "media" if announced or any(p.kind == "media.published" for p in events) else "presence"
    known = set(depts)
    measured = source == "media" or any(
        p.kind in VIDEO_KINDS and event_dept(p, source) in known for p in events
    )
    op = log.operation
    return _Video(dept_video(events, depts, op.start_us, op.end_us, source), source, measured)

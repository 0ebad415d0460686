"""The evidence appendix: one row per command x department with every stage's event, hub time,
latency, deadline, lateness and overdue marks (columns built with numpy, JSON rows on demand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.catalog import STAGES
from scoring.drilllog import RESPONSE_KINDS
from scoring.metrics import NONE, Facts
from scoring.scorecard import round_array

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

COLUMNS = (
    "command",
    "dept",
    "level",
    "critical",
    "issued_seq",
    "issued_us",
    "delivered_seq",
    "delivered_us",
    *(
        f"{stage}_{col}"
        for stage in STAGES
        for col in ("required", "seq", "us", "s", "deadline_s", "late_s", "missing")
    ),
    "receipt_by",
    "declined_seq",
    "cancelled_seq",
    "cancelled_us",
    "overdue_seqs",
    "escalated_seqs",
    "lost_points",
)


@dataclass
class PairTable:
    """Columns per (command, department) pair, in the facts' pair order."""

    facts: Facts
    latency: F64  # (n, 3) drill seconds, NaN when not reached
    deadline: F64  # (n, 3) the command's own deadline, NaN when none
    late: F64  # (n, 3) max(0, latency - deadline), NaN when not reached or no deadline
    required: BOOL  # (n, 3) owed: required and not cancelled before it was reached
    missing: BOOL  # (n, 3) owed and never reached
    overdue: dict[int, list[int]]  # pair -> seqs of its command.overdue marks
    escalated: dict[int, list[int]]
    lost: BOOL  # the pair lost points somewhere: late, missing, declined or overdue

    def __len__(self) -> int:
        return len(self.facts.p_cmd)

    def order_for_paper(self, cap: int) -> tuple[I64, int]:
        """Rows to print (at most `cap`): every row that lost points first, then the rest, in
        command order; and how many rows are left for the JSON only."""
        n = len(self)
        if n <= cap:
            return np.arange(n, dtype=np.int64), 0
        bad = np.flatnonzero(self.lost)
        good = np.flatnonzero(~self.lost)
        pick = np.concatenate([bad[:cap], good[: max(0, cap - len(bad))]])
        return np.sort(pick).astype(np.int64), n - len(pick)

    def to_json(self) -> dict[str, Any]:
        f = self.facts
        n = len(self)
        cols: dict[str, list[Any]] = {}
        cols["command"] = [f.cmd_ids[c] for c in f.p_cmd.tolist()]
        cols["dept"] = [f.depts[d] for d in f.p_dept.tolist()]
        cols["level"] = [f.cmd_level[c] or f.op.level for c in f.p_cmd.tolist()]
        cols["critical"] = f.cmd_critical[f.p_cmd].tolist()
        cols["issued_seq"] = f.cmd_seq[f.p_cmd].tolist()
        cols["issued_us"] = f.cmd_ts[f.p_cmd].tolist()
        cols["delivered_seq"] = _seq(f.p_delivered_seq, f.p_delivered_ts)
        cols["delivered_us"] = _ts(f.p_delivered_ts)
        for s, stage in enumerate(STAGES):
            cols[f"{stage}_required"] = self.required[:, s].tolist()
            cols[f"{stage}_seq"] = _seq(f.p_stage_seq[:, s], f.p_stage_ts[:, s])
            cols[f"{stage}_us"] = _ts(f.p_stage_ts[:, s])
            cols[f"{stage}_s"] = _nums(self.latency[:, s])
            cols[f"{stage}_deadline_s"] = _nums(self.deadline[:, s])
            cols[f"{stage}_late_s"] = _nums(self.late[:, s])
            cols[f"{stage}_missing"] = self.missing[:, s].tolist()
        by = [
            RESPONSE_KINDS[k].removeprefix("command.") if k >= 0 else None for k in f.p_receipt_kind.tolist()
        ]
        cols["receipt_by"] = by
        cols["declined_seq"] = _seq(f.p_declined_seq, f.p_declined_ts)
        cols["cancelled_seq"] = _seq(f.p_cancel_seq, f.p_cancel_ts)
        cols["cancelled_us"] = _ts(f.p_cancel_ts)
        cols["overdue_seqs"] = [self.overdue.get(i, []) for i in range(n)]
        cols["escalated_seqs"] = [self.escalated.get(i, []) for i in range(n)]
        cols["lost_points"] = self.lost.tolist()
        rows = [list(r) for r in zip(*(cols[c] for c in COLUMNS), strict=True)] if n else []
        return {"columns": list(COLUMNS), "rows": rows}


def _seq(seq: I64, ts: I64) -> list[int | None]:
    out = seq.astype(object)
    out[ts == NONE] = None
    return list(out.tolist())


def _ts(ts: I64) -> list[int | None]:
    return _seq(ts, ts)


def _nums(x: F64) -> list[float | None]:
    out = round_array(x, 3).astype(object)
    out[np.isnan(x)] = None
    return list(out.tolist())


def _marks_by_pair(marks: list[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for pair, seq in marks:
        out.setdefault(pair, []).append(seq)
    return out


def pair_table(f: Facts) -> PairTable:
    """The appendix table of every command x department pair of the operation."""
    n = len(f.p_cmd)
    latency = np.full((n, 3), np.nan)
    required = np.zeros((n, 3), np.bool_)
    missing = np.zeros((n, 3), np.bool_)
    for s in range(3):
        lat, miss = f.latency(s)
        latency[:, s] = np.where(miss, np.nan, lat)
        required[:, s] = f.stage_applicable(s)
        missing[:, s] = required[:, s] & miss
    deadline = f.cmd_deadline[f.p_cmd] if n else np.zeros((0, 3))
    deadline = np.where(required, deadline, np.nan)
    late = np.where(np.isnan(deadline) | np.isnan(latency), np.nan, np.maximum(latency - deadline, 0.0))
    overdue = _marks_by_pair([(pair, seq) for _, seq, _, _, pair in f.overdue if pair >= 0])
    escalated = _marks_by_pair([(pair, seq) for _, seq, _, pair in f.escalations if pair >= 0])
    has_mark = np.zeros(n, np.bool_)
    has_mark[list(overdue) + list(escalated)] = True
    lost = (
        (np.nan_to_num(late, nan=0.0) > 1e-9).any(axis=1)
        | missing.any(axis=1)
        | (f.p_declined_ts != NONE)
        | has_mark
    )
    return PairTable(
        f, latency, deadline, late, required, missing, overdue, escalated, np.asarray(lost, np.bool_)
    )

"""Writing a scored drill: the JSON scorecard and the PDF report, each atomically (one path for
the CLI, the demo and the evaluator's console)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.metrics import Facts
    from scoring.rubric import Rubric
    from scoring.scorecard import Scorecard


def write_outputs(
    card: Scorecard,
    facts: Facts,
    rubric: Rubric,
    *,
    pdf_out: str | Path | None,
    json_out: str | Path | None,
    lang: str = "zh",
    evaluators: Sequence[str] = (),
    utc_offset: str = "+08:00",
    seq_link: Callable[[int], str] | None = None,
    tiers: dict[str, Any] | None = None,
) -> None:
    """Write the scorecard JSON and/or the PDF report (imports reportlab only for the PDF);
    `tiers` (scoring.tiers, from `score --linked`) goes into both."""
    if pdf_out is not None:
        from scoring.pdf import render
        from scoring.report_model import build_report

        render(build_report(card, facts, rubric, lang, list(evaluators), utc_offset, seq_link,
                            tiers), pdf_out)
    if json_out is not None:
        from scoring.pdf import write_atomic

        text = card.to_json()
        if tiers is not None:  # canonical as the rest (sorted keys, compact)
            text = json.dumps({**json.loads(text), "tiers": tiers}, sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"

        def write(tmp: str) -> None:
            Path(tmp).write_text(text, encoding="utf-8")

        write_atomic(json_out, write)

"""Writing a scored drill: the JSON scorecard and the PDF report, each atomically (one path for
the CLI, the demo and the evaluator's console)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
) -> None:
    """Write the scorecard JSON and/or the PDF report (imports reportlab only for the PDF)."""
    if pdf_out is not None:
        from scoring.pdf import render
        from scoring.report_model import build_report

        render(build_report(card, facts, rubric, lang, list(evaluators), utc_offset, seq_link),
               pdf_out)
    if json_out is not None:
        from scoring.pdf import write_atomic

        text = card.to_json()

        def write(tmp: str) -> None:
            Path(tmp).write_text(text, encoding="utf-8")

        write_atomic(json_out, write)

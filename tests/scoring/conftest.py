"""Shared by the scoring tests: run `commandhub score` as the CLI does and read what it wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.cli import main
from scoring.rubric import bundled

ScoreCli = Callable[..., tuple[dict[str, Any], Path]]


def _score(db: Path, out_dir: Path, lang: str = "zh", *extra: str) -> tuple[dict[str, Any], Path]:
    """`commandhub score` with JSON and PDF in `out_dir` (exit 0 asserted); the card and the PDF."""
    js, pdf = out_dir / f"score-{lang}.json", out_dir / f"report-{lang}.pdf"
    argv = ["score", "--log", str(db), "--rubric", str(bundled()), "--json", str(js), "--out", str(pdf)]
    assert main([*argv, "--lang", lang, "--quiet", *extra]) == 0
    return json.loads(js.read_text(encoding="utf-8")), pdf


@pytest.fixture(scope="session")
def score_cli() -> ScoreCli:
    return _score

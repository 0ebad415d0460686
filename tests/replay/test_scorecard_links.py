"""The scorecard PDF's evidence appendices print the replay deep link of every `#seq` they cite
as text (for paper), besides the seqs' link annotations; read back with poppler's pdftotext and
with pypdf."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from scoring.rubric import bundled
from tests.replay.conftest import OP, ROOT, Drill

pytestmark = pytest.mark.asyncio(loop_scope="package")
BASE = "http://127.0.0.1:8765"


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
async def test_the_appendix_prints_each_seqs_replay_link(drill: Drill, tmp_path: Path) -> None:
    pdf = tmp_path / "scorecard.pdf"
    run = subprocess.run([sys.executable, "-m", "hub.cli", "score", "--log",
                          str(drill.data / "events.db"), "--rubric", str(bundled()), "--out",
                          str(pdf), "--replay-url", BASE, "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 1: a failing grade is fine
    reader = PdfReader(pdf)
    appendix = next(i for i, p in enumerate(reader.pages)
                    if "Appendix A" in (p.extract_text() or "") or "附录A" in
                    _squeezed(p.extract_text() or ""))
    ack = drill.seq_of("command.acknowledged", "water")
    url = f"{BASE}/replay?op={OP}&seq={ack.seq}"
    poppler = subprocess.run(["pdftotext", "-f", str(appendix + 1), str(pdf), "-"],
                             capture_output=True, text=True, check=True).stdout
    pypdf_text = "".join(p.extract_text() or "" for p in reader.pages[appendix:])
    cited = {int(n) for n in re.findall(r"#(\d+)", poppler.split("复盘链接")[0])}
    assert ack.seq in cited
    for text in (poppler, pypdf_text):
        lines = [ln.strip() for ln in text.splitlines()]
        listed = lines[next(i for i, ln in enumerate(lines) if ln.startswith("复盘链接")):]
        flat = _squeezed(" ".join(listed))
        assert f"#{ack.seq}{url}" in flat, flat[:2000]
        # every seq the appendices cite is listed with its link, printed in full
        for n in cited:
            assert f"#{n}{BASE}/replay?op={OP}&seq={n}" in flat, n
    # the printed links are the annotations' targets
    annots = {str(a.get_object()["/A"]["/URI"]) for p in reader.pages[appendix:]
              for a in p.get("/Annots") or [] if "/A" in a.get_object()}
    assert url in annots
    # the pages before the appendices keep links only, no printed URLs
    before = subprocess.run(["pdftotext", "-l", str(appendix), str(pdf), "-"],
                            capture_output=True, text=True, check=True).stdout
    assert "/replay?op=" not in _squeezed(before)

"""Roster loading: the bundled 16 departments, and bad files named by file:line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.roster import RosterError, load_roster


def test_default_roster_has_center_and_16_departments() -> None:
    r = load_roster()
    assert r.center.id == "center" and len(r.departments) == 16
    names = {d.name_zh for d in r.departments}
    assert {"公安110", "消防救援大队", "长江镇", "气象局"} <= names
    assert r.resolve(["all"]) == sorted(r.ids)
    assert set(r.resolve(["flood"])) >= {"floodctrl", "water", "weather"}
    assert r.by_id["changjiang"].tier == "town"


@pytest.mark.parametrize(("text", "where"), [
    ("departments:\n  - {id: fire, name_zh: 消防}\n", ":2:5: departments[0].name_en"),
    ("departments:\n  - {id: Fire!, name_zh: a, name_en: b}\n", ":2:6: departments[0].id"),
    ("departments:\n  - {id: a, name_zh: a, name_en: b}\n  - {id: a, name_zh: c, name_en: d}\n",
     ":3:6: departments[1].id: duplicate id"),
    ("departments:\n  - {id: a, name_zh: a, name_en: b, tier: village}\n",
     ":2:37: departments[0].tier"),
    ("departments:\n  - {id: a, name_zh: a, name_en: b, colour: red}\n",
     ":2:37: departments[0].colour: unknown key"),
    ("departments: [\n", ":2:1: YAML syntax"),
    ("departmants: []\n", ":1:1: departmants: unknown key"),
])
def test_bad_roster_names_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "roster.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(RosterError) as exc:
        load_roster(f)
    assert f"{f}{where}" in str(exc.value)


def test_bad_roster_exits_2_from_the_cli(tmp_path: Path) -> None:
    f = tmp_path / "roster.yaml"
    f.write_text("departments:\n  - {id: a, name_zh: a}\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "hub", "serve", "--data", str(tmp_path / "d"),
                        "--port", "0", "--roster", str(f)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert f"{f}:2:5: departments[0].name_en: required" in r.stderr

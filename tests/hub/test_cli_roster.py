"""`commandhub roster`: every department and group id, in wall order, as text and as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hub.cli_roster import width
from hub.roster import load_roster


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                          timeout=60)


def test_roster_prints_every_id_in_wall_order() -> None:
    r = run("roster")
    assert r.returncode == 0, r.stderr
    roster = load_roster()
    lines = r.stdout.splitlines()
    dept_lines = [line for line in lines if line[:4].strip().isdigit()]
    assert [line.split()[1] for line in dept_lines] == roster.ids
    assert "公共安全 / Public Safety" in r.stdout
    for g in roster.groups:
        assert any(line.split()[:1] == [g] for line in lines), g
    # names line up although Chinese characters are two columns wide
    starts = {width(line[:line.index(d.name_en)]) for line, d in zip(dept_lines, roster.departments,
                                                                       strict=True)}
    assert len(starts) == 1, starts


def test_roster_json_and_a_bad_file(tmp_path: Path) -> None:
    r = run("roster", "--json")
    body = json.loads(r.stdout)
    assert [d["id"] for d in body["departments"]] == load_roster().ids
    assert {g["id"]: g["name_en"] for g in body["groups"]}["flood"] == "Flood Response"
    bad = tmp_path / "r.yaml"
    bad.write_text("departments:\n  - {id: a}\n", encoding="utf-8")
    r = run("roster", "--roster", str(bad))
    assert r.returncode == 2 and f"{bad}:2:5: departments[0].name_zh" in r.stderr


def test_token_issue_for_an_unknown_department_lists_the_valid_ids(tmp_path: Path) -> None:
    r = run("token", "issue", "--data", str(tmp_path), "--role", "department", "--dept", "nope")
    assert r.returncode == 2
    assert "unknown department 'nope'" in r.stderr
    assert all(d in r.stderr for d in load_roster().ids), r.stderr

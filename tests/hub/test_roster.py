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


def test_groups_have_display_names_in_both_languages() -> None:
    r = load_roster()
    info = {g["id"]: g for g in r.group_info()}
    assert set(info) == set(r.groups)
    assert info["public-safety"]["name_zh"] == "公共安全"
    assert info["hazmat"]["name_en"] == "Hazardous Materials"
    for g in info.values():  # every bundled group is named, in both languages
        assert g["name_zh"] != g["id"] and g["name_en"] != g["id"], g
        assert g["members"] == r.groups[g["id"]]
    # wall order is the file's order, members keep it too
    assert r.ids[0] == "emergency" and r.ids[-1] == "changjiang"
    assert info["public-safety"]["members"] == ["emergency", "police", "fire", "health120"]


def test_a_roster_without_group_names_falls_back_to_the_ids(tmp_path: Path) -> None:
    f = tmp_path / "roster.yaml"
    f.write_text("departments:\n  - {id: a, name_zh: 甲, name_en: A, groups: [g1]}\n", encoding="utf-8")
    assert load_roster(f).group_info() == [{"id": "g1", "name_zh": "g1", "name_en": "g1", "members": ["a"]}]


@pytest.mark.parametrize(("text", "where"), [
    ("departments:\n  - {id: a, name_zh: a, name_en: b, groups: [g1]}\ngroups:\n  g1: {name_zh: x}\n",
     ":4:3: groups.g1.name_en: required"),
    ("departments:\n  - {id: a, name_zh: a, name_en: b, groups: [g1]}\ngroups:\n"
     "  g1: {name_zh: x, name_en: y}\n  g2: {name_zh: x, name_en: y}\n",
     ":5:3: groups.g2: group 'g2' has no members"),
    ("departments:\n  - {id: a, name_zh: a, name_en: b, groups: [g1, g3]}\ngroups:\n"
     "  g1: {name_zh: x, name_en: y}\n", ":2:50: departments[0].groups[1]: group 'g3' is not declared"),
    ("departments:\n  - {id: a, name_zh: a, name_en: b, groups: [g1]}\ngroups: [g1]\n",
     ":3:1: groups: must be a mapping"),
])
def test_bad_group_names_name_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "roster.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(RosterError) as exc:
        load_roster(f)
    assert f"{f}{where}" in str(exc.value)


def test_an_unknown_target_lists_the_valid_ids() -> None:
    r = load_roster()
    with pytest.raises(KeyError) as exc:
        r.resolve(["fire", "nope"])
    msg = str(exc.value)
    assert exc.value.args[0] == "nope"
    assert "'nope'" in msg and all(d in msg for d in r.ids) and all(g in msg for g in r.groups)


def test_a_town_hubs_own_department_resolves_to_the_town() -> None:
    r = load_roster()  # changjiang is the bundled town (groups flood and town)
    assert r.resolve(["changjiang:police", "fire"]) == ["changjiang", "fire"]
    assert r.within(["changjiang:police", "changjiang:fire-brigade", "fire"]) == {
        "changjiang": ["fire-brigade", "police"]}
    assert r.within(["changjiang:police", "flood"]) == {}  # the group reaches it whole
    assert r.within(["fire", "all"]) == {}
    for bad in ("fire:x", "changjiang:", "changjiang:Bad Id", "atlantis:x", ":x"):
        with pytest.raises(KeyError):
            r.resolve([bad])

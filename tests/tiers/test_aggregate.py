"""How a town's command maps to the city command's stages (hub/tiers/aggregate.py)."""

from __future__ import annotations

from hub.commands import Command, DeptProgress
from hub.tiers.aggregate import reached

ALL3 = ["receipt", "on_scene", "completed"]


def cmd(requires: list[str], **progress: tuple[str, dict[str, int], str | None]) -> Command:
    return Command("C1", "x", ["all"], sorted(progress), "routine", "III", requires, {}, False,
                   100, 5, progress={d: DeptProgress(state=s, times_us={"issued": 100, **t},
                                                     reason=r)
                                     for d, (s, t, r) in progress.items()})


def test_receipt_when_linked_on_scene_first_completed_when_all_finished() -> None:
    c = cmd(ALL3, a=("issued", {}, None), b=("acknowledged", {"acknowledged": 150}, None))
    assert [(s.response, s.ts_us) for s in reached(c, ALL3)] == [("receipt", 100)]
    c = cmd(ALL3, a=("on_scene", {"on_scene": 300}, None), b=("on_scene", {"on_scene": 200}, None))
    assert [(s.response, s.ts_us, s.departments) for s in reached(c, ALL3)] == [
        ("receipt", 100, []), ("on_scene", 200, ["a", "b"])]
    c = cmd(ALL3, a=("completed", {"on_scene": 300, "completed": 900}, None),
            b=("declined", {"declined": 400}, "no boat"))
    assert [(s.response, s.ts_us, s.departments) for s in reached(c, ALL3)] == [
        ("receipt", 100, []), ("on_scene", 300, ["a"]), ("completed", 900, ["a"])]


def test_declined_only_when_every_department_declined() -> None:
    c = cmd(ALL3, a=("declined", {"declined": 400}, "no boat"),
            b=("declined", {"declined": 500}, "flooded"))
    last = reached(c, ALL3)[-1]
    assert (last.response, last.ts_us, last.reason) == (
        "declined", 500, "a: declined (no boat); b: declined (flooded)")


def test_declined_when_none_completed_whatever_ended_them() -> None:
    c = cmd(ALL3, a=("declined", {"declined": 400}, "no boat"),
            b=("cancelled", {"on_scene": 300, "cancelled": 600}, "called off"))
    assert [(s.response, s.ts_us) for s in reached(c, ALL3)] == [
        ("receipt", 100), ("on_scene", 300), ("declined", 600)]
    assert reached(c, ALL3)[-1].reason == "a: declined (no boat); b: cancelled (called off)"
    c = cmd(ALL3, a=("cancelled", {"cancelled": 600}, None))
    assert [s.response for s in reached(c, ALL3)] == ["receipt", "declined"]


def test_no_decline_after_the_last_required_stage() -> None:
    c = cmd(["receipt", "on_scene"], a=("on_scene", {"on_scene": 300}, None),
            b=("declined", {"declined": 400}, "no boat"))
    assert [s.response for s in reached(c, ["receipt", "on_scene"])] == ["receipt", "on_scene"]
    c = cmd(["receipt"], a=("declined", {"declined": 400}, "no boat"))
    assert [s.response for s in reached(c, ["receipt"])] == ["receipt"]


def test_only_the_stages_the_city_requires() -> None:
    c = cmd(["receipt"], a=("acknowledged", {"acknowledged": 120}, None))
    assert [s.response for s in reached(c, ["receipt"])] == ["receipt"]
    c = cmd(["receipt", "completed"], a=("completed", {"completed": 700}, None))
    assert [s.response for s in reached(c, ["receipt", "completed"])] == ["receipt", "completed"]

"""The command state machine: properties over random response sequences (hypothesis)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.commands import (
    DEFAULT_DEADLINES,
    ORDER,
    RESPONSES,
    CommandBook,
    CommandError,
    normalise_issue,
)

DEPTS = ["fire", "police", "water"]


def issued_book(requires: list[str]) -> CommandBook:
    book = CommandBook()
    payload = normalise_issue({"targets": DEPTS, "text": "t", "requires": requires}, level="II",
                              resolve=lambda t: sorted(t))
    book.apply("command.issued", {"command_id": "C1", **payload}, 1_000_000, 1, "drill-x")
    return book


requires_st = st.sets(st.sampled_from(["on_scene", "completed"])).map(
    lambda s: ["receipt", *sorted(s, key=["on_scene", "completed"].index)])
steps_st = st.lists(st.tuples(st.sampled_from(DEPTS), st.sampled_from(sorted(RESPONSES))),
                    max_size=30)

KIND = {"delivered": "command.delivered", "acknowledged": "command.acknowledged",
        "on_scene": "command.on_scene", "completed": "command.completed",
        "declined": "command.declined"}


@settings(deadline=None)  # timing is for benchmarks; a loaded machine must not fail this
@given(requires_st, steps_st)
def test_state_machine_properties(requires: list[str], steps: list[tuple[str, str]]) -> None:
    book = issued_book(requires)
    cmd = book.commands["C1"]
    t = 1_000_000
    for i, (dept, response) in enumerate(steps):
        before = copy.deepcopy(cmd.progress)
        was_done = cmd.done(cmd.progress[dept])
        try:
            new = book.check_response("C1", dept, response)
        except CommandError as exc:
            assert exc.code in {"invalid_transition", "not_required"}
            assert cmd.progress == before  # a refused request changes nothing
            continue
        assert not was_done  # nothing is accepted once a department is done
        old = cmd.progress[dept].state
        if new not in ("declined",):
            assert ORDER[new] > ORDER[old]  # progress only moves forward
        stage_of = {"acknowledged": "receipt", "on_scene": "on_scene", "completed": "completed"}
        state_of = {v: k for k, v in stage_of.items()}
        if new in stage_of:
            assert stage_of[new] in requires  # never a stage the command did not ask for
            for earlier in requires[: requires.index(stage_of[new])]:
                assert state_of[earlier] in cmd.progress[dept].times_us  # reached in order
        t += 1000
        book.apply(KIND[new], {"command_id": "C1", "dept": dept, "client_msg_id": f"m{i}",
                               "reason": "r"}, t, i + 2, "drill-x")
        assert cmd.progress[dept].state == new


def test_invalid_transitions_name_what_is_expected() -> None:
    book = issued_book(["receipt", "completed"])
    with pytest.raises(CommandError, match="next expected is acknowledged"):
        book.check_response("C1", "fire", "completed")
    with pytest.raises(CommandError) as exc:
        book.check_response("C1", "fire", "on_scene")
    assert exc.value.code == "not_required"
    with pytest.raises(CommandError) as exc:
        book.check_response("C9", "fire", "receipt")
    assert exc.value.code == "unknown_command"
    with pytest.raises(CommandError) as exc:
        book.check_response("C1", "power", "receipt")
    assert exc.value.code == "not_targeted"


def test_overdue_per_stage_and_not_after_done() -> None:
    book = issued_book(["receipt", "on_scene"])
    cmd = book.commands["C1"]
    receipt_us = 1_000_000 + int(DEFAULT_DEADLINES["II"]["receipt"] * 1e6)
    assert book.overdue_due(receipt_us - 1) == []
    due = book.overdue_due(receipt_us)
    assert {(d, s) for _, d, s, _ in due} == {(d, "receipt") for d in DEPTS}
    book.apply("command.overdue", {"command_id": "C1", "dept": "fire", "stage": "receipt"},
               receipt_us, 5, "drill-x")
    book.apply("command.acknowledged", {"command_id": "C1", "dept": "police"}, receipt_us, 6,
               "drill-x")
    assert {(d, s) for _, d, s, _ in book.overdue_due(receipt_us)} == {("water", "receipt")}
    book.apply("command.declined", {"command_id": "C1", "dept": "water", "reason": "x"},
               receipt_us, 7, "drill-x")
    assert cmd.done(cmd.progress["water"])
    late = 1_000_000 + int(DEFAULT_DEADLINES["II"]["on_scene"] * 1e6)
    assert {(d, s) for _, d, s, _ in book.overdue_due(late)} == {("fire", "on_scene"),
                                                                 ("police", "on_scene")}


@pytest.mark.parametrize(("request_", "code"), [
    ({"targets": ["fire"], "text": ""}, "bad_request"),
    ({"targets": [], "text": "x"}, "bad_request"),
    ({"targets": ["nowhere"], "text": "x"}, "unknown_target"),
    ({"targets": ["fire"], "text": "x", "priority": "whenever"}, "bad_request"),
    ({"targets": ["fire"], "text": "x", "requires": ["dance"]}, "bad_request"),
    ({"targets": ["fire"], "text": "x", "deadlines": {"receipt": -1}}, "bad_request"),
    ({"targets": ["fire"], "text": "x", "deadlines": {"completed": 60}}, "bad_request"),
    ({"targets": ["fire"], "text": "x" * 5000}, "bad_request"),
])
def test_bad_issue_requests(request_: dict[str, object], code: str) -> None:
    def resolve(t: list[str]) -> list[str]:
        if "nowhere" in t:
            raise KeyError("nowhere")
        return sorted(t)

    with pytest.raises(CommandError) as exc:
        normalise_issue(request_, level="III", resolve=resolve)
    assert exc.value.code == code

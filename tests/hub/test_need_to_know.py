"""Need to know: one rule decides which events each role sees, on every stream (live fan-out,
subscribe replay, GET /api/events); departments and observers get no evaluator notes and no
scenario injects."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from hub.api.audience import visible
from hub.logformat import Event
from hub.runtime import RunningHub
from tests.hub.raw import RawSocket, outcome

NOTE = "消防队长指挥混乱"  # an evaluator's note about fire: fire must never see it


def ev(kind: str, role: str = "hub", actor_dept: str | None = None, **payload: object) -> Event:
    return Event(1, 0, 0, "drill-x", "drill", role, actor_dept, kind, payload)


# (event, who sees it): commander, evaluator, observer, fire, police
CASES: list[tuple[Event, set[str]]] = [
    (ev("observation.recorded", "evaluator", None, dept="fire", note=NOTE), {"commander", "evaluator"}),
    (ev("checklist.ticked", "evaluator", None, item="x", note="n"), {"commander", "evaluator"}),
    (ev("operation.started", "commander", "center"), {"commander", "evaluator", "observer", "fire",
                                                      "police"}),
    (ev("command.issued", "commander", "center", targets=["all"], departments=["fire"]),
     {"commander", "evaluator", "observer", "fire"}),
    (ev("command.acknowledged", "department", "fire", dept="fire"),
     {"commander", "evaluator", "observer", "fire"}),
    (ev("route.changed", "commander", "center", targets=["police"], source="fire"),
     {"commander", "evaluator", "observer", "police"}),
    (ev("presence.online", "department", "police"), {"commander", "evaluator", "observer", "police"}),
    (ev("inject.released", "commander", "center", inject_id="I1"), {"commander", "evaluator",
                                                                   "observer"}),
    (ev("auth.rejected", reason="bad_token"), {"commander", "evaluator", "observer"}),
    (ev("dept.excused", "commander", "center", dept="police", reason="r"),
     {"commander", "evaluator", "observer", "police"}),
    (ev("media.snapshot", dept="fire"), {"commander", "evaluator", "observer", "fire"}),
]
WHO = {"commander": ("commander", "center"), "evaluator": ("evaluator", None),
       "observer": ("observer", None), "fire": ("department", "fire"),
       "police": ("department", "police")}


@pytest.mark.parametrize(("event", "seen_by"), CASES, ids=[c[0].kind for c in CASES])
def test_the_one_rule(event: Event, seen_by: set[str]) -> None:
    got = {name for name, (role, dept) in WHO.items() if visible(role, dept, event)}
    assert got == seen_by


async def test_every_stream_follows_the_rule(running_hub: RunningHub,
                                             token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        socks = {name: await RawSocket.open(http, running_hub.url, token(role, dept))
                 for name, (role, dept) in WHO.items()}
        for name in ("commander", "evaluator", "observer"):
            assert outcome(await socks[name].request("subscribe")) == "ok"
        cmdr, evaluator = socks["commander"], socks["evaluator"]
        assert outcome(await cmdr.request("operation.start", title="t")) == "ok"
        await cmdr.request("command.issue", targets=["police"], text="x")
        assert outcome(await evaluator.request("observation.record", criterion="field_operations",
                                               rating="U", dept="fire", note=NOTE)) == "ok"
        assert outcome(await evaluator.request("checklist.tick", item="debrief",
                                               note=NOTE)) == "ok"
        await cmdr.request("dept.excuse", dept="fire", reason="marker")  # everyone's last event
        live = {name: await s.events_until("dept.excused") if name != "police" else None
                for name, s in socks.items()}
        police_live = await socks["police"].drain()
        # replay from the start of the log for the subscribers
        replay = {}
        for name in ("commander", "evaluator", "observer"):
            fresh = await RawSocket.open(http, running_hub.url, token(*WHO[name]))
            assert outcome(await fresh.request("subscribe", after=0)) == "ok"
            replay[name] = [f["event"] for f in fresh.seen if f.get("type") == "event"]
            await fresh.close()
        rest = {}
        for name in WHO:
            async with http.get(running_hub.url + "/api/events?after=0",
                                headers={"Authorization": f"Bearer {token(*WHO[name])}"}) as r:
                rest[name] = (r.status, await r.json())
        for s in socks.values():
            await s.close()

    def kinds(events: list[dict[str, object]] | None) -> set[object]:
        return {e["kind"] for e in events or []}

    evaluation = {"observation.recorded", "checklist.ticked"}
    for name in ("commander", "evaluator"):
        assert evaluation <= kinds(live[name]) and evaluation <= kinds(replay[name])
        assert evaluation <= {e["kind"] for e in rest[name][1]["events"]}
    assert not evaluation & kinds(live["observer"])
    assert not evaluation & kinds(replay["observer"])
    assert rest["observer"][0] == 200
    assert not evaluation & {e["kind"] for e in rest["observer"][1]["events"]}
    assert kinds(replay["observer"]) >= {"command.issued", "dept.excused"}
    for dept_events in (live["fire"], police_live):
        assert not evaluation & kinds(dept_events)
        assert all(NOTE not in str(e["payload"]) for e in dept_events or [])
    # a department sees what concerns it: fire is not sent police's command
    assert "command.issued" not in kinds(live["fire"]) and "command.issued" in kinds(police_live)
    assert "dept.excused" in kinds(live["fire"])  # it names fire
    for name in ("fire", "police"):
        assert rest[name][0] == 403  # a department does not read the log


async def test_scenario_injects_are_for_commanders_and_evaluators(
        running_hub: RunningHub, token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await RawSocket.open(http, running_hub.url, token("commander"))
        assert outcome(await cmdr.request("operation.start", title="flood",
                                          scenario="extreme-weather")) == "ok"
        await cmdr.close()
        for role, dept, status in (("commander", None, 200), ("evaluator", None, 200),
                                   ("department", "fire", 403), ("observer", None, 403)):
            for query in ("", "?list=1", "?id=extreme-weather"):
                async with http.get(running_hub.url + "/api/scenario" + query,
                                    headers={"Authorization": f"Bearer {token(role, dept)}"}) as r:
                    body = await r.json()
                    assert r.status == status, (role, query, body)
                    if status == 200 and not query.startswith("?list"):
                        assert body["injects"], role  # the injects are really there
                    if status == 403:
                        assert "injects" not in body and body["error"]["code"] == "forbidden"


async def test_state_gives_a_department_only_its_own(running_hub: RunningHub,
                                                    token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await RawSocket.open(http, running_hub.url, token("commander"))
        await cmdr.request("command.issue", targets=["police"], text="police only")
        await cmdr.request("command.issue", targets=["fire", "police"], text="both")
        await cmdr.close()
        states = {}
        for name, (role, dept) in WHO.items():
            async with http.get(running_hub.url + "/api/state",
                                headers={"Authorization": f"Bearer {token(role, dept)}"}) as r:
                states[name] = await r.json()
    for name in ("commander", "evaluator", "observer"):
        assert {"video", "media"} <= set(states[name]), name
        assert len(states[name]["commands"]) == 2
    fire = states["fire"]
    assert not {"video", "media"} & set(fire)
    assert [c["text"] for c in fire["commands"]] == ["both"]
    assert set(fire["commands"][0]["progress"]) == {"fire"}  # not police's progress

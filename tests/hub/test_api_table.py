"""The message table walked as a hostile client would: every type x every role, over raw
WebSocket frames and raw POST /api/rpc, gets exactly the documented answer; anything not in
the table is `unknown_type`; a department cannot act for another."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.api.messages import MESSAGES
from hub.auth import PERMISSIONS
from hub.checkpoint import HeadSigner
from hub.logformat import Head, read_events
from hub.runtime import RunningHub
from tests.hub.raw import RawSocket, outcome, rpc

ALL = frozenset({"commander", "department", "evaluator", "observer", "hub"})
VIEWERS = ALL - {"hub"}  # a town hub's uplink carries commands, not video
C = frozenset({"commander"})
READ_ALL = frozenset({"commander", "evaluator", "observer"})
# The documented answer (docs/protocol.md), written down independently of the code's table:
# which roles may send each type. Any other role gets `forbidden`.
DOCUMENTED: dict[str, frozenset[str]] = {
    "ping": ALL, "clock": ALL, "subscribe": READ_ALL,
    "command.issue": C, "command.respond": frozenset({"department"}), "command.cancel": C,
    "command.escalate": C, "report.field": frozenset({"department"}),
    "dept.checkin": frozenset({"department"}),
    "operation.start": C, "operation.end": C, "operation.level": C, "operation.pause": C,
    "operation.resume": C, "inject.release": C, "dept.excuse": C,
    "observation.record": frozenset({"evaluator"}), "checklist.tick": frozenset({"evaluator"}),
    "token.revoke": C, "rtc.offer": VIEWERS, "rtc.leave": VIEWERS,
    "link.respond": frozenset({"hub"}), "link.report": frozenset({"hub"}),
    "link.status": READ_ALL, "tier.callup": C, "link.callup_ack": frozenset({"hub"}),
    **{f"route.{a}": C for a in ("push", "unpush", "group", "link", "unlink", "mute", "talk")},
}
# Valid fields for each type (the walk must not fail on the schema).
FIELDS: dict[str, dict[str, Any]] = {
    "ping": {}, "clock": {"offset_ms": 1.5, "rtt_ms": 2}, "subscribe": {"after": 0},
    "command.issue": {"targets": ["fire"], "text": "集结"},
    "command.respond": {"command_id": "C1", "response": "delivered"},
    "link.respond": {"command_id": "C1", "response": "receipt", "town_command_id": "C7",
                     "town_seq": 9, "town_ts_us": 1, "offset_us": -3, "rtt_us": 400,
                     "head": json.dumps(HeadSigner(Ed25519PrivateKey.generate()).sign(
                         Head(9, "ab" * 32), 1, "link").to_dict())},
    "link.status": {"command_id": "C1", "town": "changjiang"},
    "link.report": {"query": "0" * 32, "town_time_us": 1, "states": {"changjiang-u1": "issued"}},
    "tier.callup": {"town": "fire", "dept": "fire-cam1"},
    "link.callup_ack": {"query": "0" * 32, "code": "unknown_target", "message": "m"},
    "command.cancel": {"command_id": "C1", "reason": "r"},
    "command.escalate": {"command_id": "C1"},
    "report.field": {"text": "现场情况"}, "dept.checkin": {"client_ts_us": 1},
    "operation.start": {"title": "t"}, "operation.level": {"level": "II"},
    "operation.pause": {}, "operation.resume": {},
    "inject.release": {"inject_id": "I1", "title": "t", "inject_type": "event"},
    "dept.excuse": {"dept": "police", "reason": "车辆故障"},
    "observation.record": {"criterion": "command_coordination", "rating": "S"},
    "checklist.tick": {"item": "comms_check"},
    "token.revoke": {"jti": "0" * 32},
    "rtc.offer": {"sdp": "v=0\r\n"}, "rtc.leave": {},
    "route.push": {"source": "fire", "targets": ["police"]}, "route.unpush": {"source": "fire"},
    "route.group": {"group": "flood"}, "route.link": {"a": "fire", "b": "police"},
    "route.unlink": {"a": "fire", "b": "police"}, "route.mute": {"dept": "fire"},
    "route.talk": {},
    "operation.end": {"reason": "done"},
}
SCHEMA_CODES = {"forbidden", "unknown_type", "bad_request", "bad_json"}
ROLES = [("commander", None), ("department", "fire"), ("evaluator", None), ("observer", None),
         ("hub", "changjiang")]
NOT_CANONICAL = ["command_issue", "Command.Issue", "command.issue ", " command.issue",
                 "command.issue\u0000", "command..issue", "command-issue", "commandissue",
                 "_h_command_issue", "h_command_issue", "command.issue.x", "handle", "__init__",
                 "emit", "enforce_tokens", "_h_token_revoke", "token_revoke", "rtc_offer",
                 "route_push", "route.", "", "ping\n", "PING", "subscribe()"]


def test_the_documented_answers_cover_the_table() -> None:
    assert set(DOCUMENTED) == set(MESSAGES) == set(FIELDS)
    for mtype, spec in MESSAGES.items():
        held_by = {str(r) for r in PERMISSIONS[spec.permission]}
        assert held_by == DOCUMENTED[mtype], mtype
        if spec.writes:
            assert spec.ack is not None and spec.logs, mtype
        if spec.per_command:
            assert spec.schema.params["command_id"].required, mtype


async def _prepared(running_hub: RunningHub, http: aiohttp.ClientSession,
                    token: Callable[..., str]) -> RawSocket:
    cmdr = await RawSocket.open(http, running_hub.url, token("commander"))
    assert outcome(await cmdr.request("operation.start", title="walk",
                                      participants=["fire", "police"])) == "ok"
    ack = await cmdr.request("command.issue", targets=["fire", "police"], text="x")
    assert ack["command_id"] == "C1"
    return cmdr


@pytest.mark.parametrize(("role", "dept"), ROLES)
async def test_every_type_for_every_role_over_raw_websocket(
        running_hub: RunningHub, token: Callable[..., str], role: str, dept: str | None) -> None:
    outcomes: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        cmdr = await _prepared(running_hub, http, token)
        sock = await RawSocket.open(http, running_hub.url, token(role, dept))
        for mtype, fields in FIELDS.items():
            outcomes[mtype] = outcome(await sock.request(mtype, msg_id=f"walk-{mtype}",
                                                         **fields))
        await sock.close()
        await cmdr.close()
    for mtype, got in outcomes.items():
        if role in DOCUMENTED[mtype]:
            assert got not in SCHEMA_CODES, (role, mtype, got)
        else:
            assert got == "forbidden", (role, mtype, got)
    # the commander's and the department's requests of their own kinds went through
    if role == "commander":
        assert outcomes["command.issue"] == outcomes["dept.excuse"] == "ok"
        assert outcomes["operation.pause"] == "ok" and outcomes["token.revoke"] == "ok"
        assert outcomes["tier.callup"] == "unknown_target"  # reached it: fire is no town
    if role == "department":
        assert outcomes["command.respond"] == outcomes["report.field"] == "ok"
        assert outcomes["dept.checkin"] == "ok"
    if role == "evaluator":
        assert outcomes["observation.record"] == outcomes["checklist.tick"] == "ok"
    if role == "hub":  # reached its handler: C1 is for fire and police, not this town
        assert outcomes["link.respond"] == "not_targeted"
        assert outcomes["link.report"] == "not_found"  # no question is waiting for it
        assert outcomes["link.callup_ack"] == "not_found"
    if role in READ_ALL:  # reached its handler: C1 is not for changjiang
        assert outcomes["link.status"] == "not_targeted", (role, outcomes["link.status"])
    # nothing a role was refused left a trace in the log (by kind, and by the request's id:
    # a department's command.respond and a hub's link.respond log the same kinds)
    kinds_of = {m.type: set(m.logs) for m in MESSAGES.values()}
    mine = [e for e in read_events(running_hub.hub.log.path) if e.role == role]
    for mtype, got in outcomes.items():
        if got == "forbidden":
            assert not [e for e in mine if e.kind in kinds_of[mtype]
                        and e.payload.get("client_msg_id") == f"walk-{mtype}"], mtype


@pytest.mark.parametrize(("role", "dept"), ROLES)
async def test_every_type_for_every_role_over_raw_rpc(
        running_hub: RunningHub, token: Callable[..., str], role: str, dept: str | None) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await _prepared(running_hub, http, token)
        tok = token(role, dept)
        for i, (mtype, fields) in enumerate(FIELDS.items()):
            status, body = await rpc(http, running_hub.url, tok,
                                     {"id": f"rpc-{i}", "type": mtype, **fields})
            spec = MESSAGES[mtype]
            if role not in DOCUMENTED[mtype]:
                assert (status, body["error"]["code"]) == (403, "forbidden"), (role, mtype)
            elif spec.socket_only:
                assert status == 400 and "WebSocket" in body["error"]["message"], (role, mtype)
            else:
                assert status < 500, (role, mtype, status, body)
                if status >= 400:
                    assert body["error"]["code"] not in SCHEMA_CODES, (role, mtype, body)
        await cmdr.close()


async def test_types_not_in_the_table_are_unknown_for_everyone(
        running_hub: RunningHub, token: Callable[..., str]) -> None:
    fields = {"targets": ["fire"], "text": "x", "command_id": "C1", "response": "receipt",
              "jti": "0" * 32, "title": "t"}
    head = running_hub.hub.log.head.seq
    async with aiohttp.ClientSession() as http:
        for role, dept in ROLES:
            sock = await RawSocket.open(http, running_hub.url, token(role, dept))
            for mtype in NOT_CANONICAL:
                reply = await sock.request(mtype, **fields)
                assert outcome(reply) == "unknown_type", (role, mtype, reply)
                status, body = await rpc(http, running_hub.url, token(role, dept),
                                         {"id": "x", "type": mtype, **fields})
                assert (status, body["error"]["code"]) == (400, "unknown_type"), (role, mtype)
            for bad in (None, 42, ["command.issue"], {"t": 1}):
                assert outcome(await sock.request("ping", type=bad)) == "bad_request"
            await sock.close()
    # nothing was logged but the sockets coming and going
    assert {e.kind for e in running_hub.hub.log.after(head, 1000)} <= {"presence.online",
                                                                       "presence.offline"}


async def test_a_department_cannot_act_for_another(running_hub: RunningHub,
                                                   token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await _prepared(running_hub, http, token)
        fire = await RawSocket.open(http, running_hub.url, token("department", "fire"))
        for mtype, fields in (("command.respond", {"command_id": "C1", "response": "receipt"}),
                              ("report.field", {"text": "x", "command_id": "C1"}),
                              ("dept.checkin", {})):
            reply = await fire.request(mtype, dept="police", **fields)
            assert outcome(reply) == "forbidden", (mtype, reply)
            status, body = await rpc(http, running_hub.url, token("department", "fire"),
                                     {"id": f"as-police-{mtype}", "type": mtype,
                                      "dept": "police", **fields})
            assert (status, body["error"]["code"]) == (403, "forbidden")
            assert outcome(await fire.request(mtype, dept="fire", **fields)) == "ok"  # itself: fine
        await fire.close()
        await cmdr.close()
    police = [e for e in read_events(running_hub.hub.log.path)
              if e.dept == "police" or e.payload.get("dept") == "police"]
    assert not [e for e in police if e.kind in ("command.acknowledged", "report.field",
                                                "dept.checked_in")]


async def test_unknown_fields_and_wrong_types_name_the_field(
        running_hub: RunningHub, token: Callable[..., str]) -> None:
    async with aiohttp.ClientSession() as http:
        cmdr = await RawSocket.open(http, running_hub.url, token("commander"))
        cases = [
            ({"targets": ["fire"], "text": "x", "comand_id": "C1"}, "comand_id"),
            ({"targets": ["fire"], "text": 5}, "text"),
            ({"targets": ["fire"], "text": "x" * 4001}, "text"),
            ({"targets": [], "text": "x"}, "targets"),
            ({"targets": ["fire"], "text": "x", "critical": "yes"}, "critical"),
            ({"targets": ["fire"], "text": "x", "deadlines": {"receipt": -1}}, "deadlines"),
            ({"targets": ["fire"] * 65, "text": "x"}, "targets"),
            ({"text": "x"}, "targets"),
        ]
        for fields, name in cases:
            reply = await cmdr.request("command.issue", **fields)
            assert reply["code"] == "bad_request" and name in reply["message"], (fields, reply)
        await cmdr.close()

"""THE message table: every canonical request type (WebSocket and POST /api/rpc alike), its
permission (a name in hub.auth.PERMISSIONS), its schema and its handler. A type not listed
here is `unknown_type`; nothing else is ever looked up. docs/protocol.md's table is made from
this one (hub/api/doc.py) and a test keeps them equal.

Rows with `logs` change state: they need a client `id`, carry it into the logged event as
`client_msg_id`, and are answered exactly once per (actor, id) — per (actor, command, id)
for a department's responses — across reconnects and hub restarts.
"""

from __future__ import annotations

from hub.api.handlers import (
    commands,
    department,
    evaluation,
    link,
    operations,
    session,
    tokens,
    video,
)
from hub.api.schema import (
    NO_FIELDS,
    Choice,
    Flag,
    Int,
    Items,
    MapOf,
    Number,
    OneOrMany,
    Param,
    Schema,
    Text,
)
from hub.api.spec import Message, seq_ack
from hub.commands import LEVELS, PRIORITIES, RESPONSES, STAGES

DEPT_STATES = ("issued", "delivered", "acknowledged", "on_scene", "completed", "declined",
               "cancelled")

# field types used more than once
ID = Text(64, nonblank=True)  # a department, group, command or criterion id
DEPTS = Items(ID, 64)
NOTE = Text(4000)
REASON = Text(1000)
CLIENT_TS = Param(Int(min=0))
JTI = Text(32, pattern=r"[0-9a-f]{32}")
OPERATION_KINDS = ("drill", "incident")

_ROWS = (
    # -- connection ----------------------------------------------------------------------------
    Message("ping", "read.own", NO_FIELDS, session.ping, answers="`hub_time_us`"),
    Message("clock", "read.own", Schema(offset_ms=Param(Number(), required=True),
                                        rtt_ms=Param(Number(min=0), required=True)),
            session.clock, socket_only=True),
    Message("subscribe", "read.all", Schema(after=Param(Int(min=0))), session.subscribe,
            socket_only=True, answers="`after`, `head`; then `event` frames"),
    # -- commands ------------------------------------------------------------------------------
    Message("command.issue", "command.issue", Schema(
        targets=Param(OneOrMany(ID, 64), required=True), text=Param(Text(4000, True), True),
        priority=Param(Choice(PRIORITIES)), level=Param(Choice(LEVELS)),
        requires=Param(Items(Choice(STAGES), 3)),
        deadlines=Param(MapOf(Choice(STAGES), Number(above=0, max=7 * 86400))),
        critical=Param(Flag()), inject_id=Param(Text(128))),
        commands.issue, logs=("command.issued",), ack=commands.issue_ack,
        answers="`command_id`, `seq`, `departments`"),
    Message("command.respond", "command.respond", Schema(
        command_id=Param(ID, True), response=Param(Choice(tuple(RESPONSES)), True),
        reason=Param(REASON), client_ts_us=CLIENT_TS, dept=Param(ID)),
        commands.respond, per_command=True,
        logs=("command.delivered", "command.acknowledged", "command.on_scene",
              "command.completed", "command.declined"),
        ack=commands.respond_ack, answers="`command_id`, `state`, `seq`, `latency_s`"),
    Message("command.cancel", "command.cancel", Schema(command_id=Param(ID, True),
                                                       reason=Param(REASON)),
            commands.cancel, logs=("command.cancelled",), ack=commands.departments_ack,
            answers="`seq`, `departments`"),
    Message("command.escalate", "command.escalate", Schema(
        command_id=Param(ID, True), departments=Param(DEPTS), note=Param(REASON)),
        commands.escalate, logs=("command.escalated",), ack=commands.departments_ack,
        answers="`seq`, `departments`"),
    # -- a town hub's answers (hub/tiers/: the town's aggregate, with its own command's id) ----
    Message("link.respond", "link.respond", Schema(
        command_id=Param(ID, True), response=Param(Choice(tuple(RESPONSES)), True),
        reason=Param(REASON), town_command_id=Param(ID),
        town_seq=Param(Int(min=1), True), town_ts_us=Param(Int(min=0), True),
        offset_us=Param(Int(), True), rtt_us=Param(Int(min=0), True),
        departments=Param(DEPTS), head=Param(Text(2000, True), True)),
        link.respond, per_command=True,
        logs=("command.delivered", "command.acknowledged", "command.on_scene",
              "command.completed", "command.declined"),
        ack=link.respond_link_ack,
        answers="`command_id`, `state`, `seq`, `latency_s`, `head` (this hub's signed head)"),
    Message("link.status", "read.all", Schema(command_id=Param(ID, True), town=Param(ID, True)),
            link.status, answers="`town`, `command_id`, `city_state`, `town_command_id`, "
            "`town_time_us`, `departments` (each: `state`, `times_us`, `reason`), asked of the "
            "town hub"),
    Message("link.report", "link.respond", Schema(
        query=Param(Text(32, True, pattern=r"[0-9a-f]{32}"), True), town_command_id=Param(ID),
        town_time_us=Param(Int(min=0), True), states=Param(MapOf(ID, Choice(DEPT_STATES)), True),
        times_us=Param(MapOf(ID, MapOf(Choice(DEPT_STATES), Int(min=0)))),
        reasons=Param(MapOf(ID, REASON))),
        link.report, socket_only=True, answers="(nothing: the answer to a `link.query` frame)"),
    Message("tier.callup", "route.change", Schema(town=Param(ID, True), dept=Param(ID)),
            link.callup, answers="`town`, `dept`, `whep` (the path to watch it; `dept` "
            "absent: the feed is released)"),
    Message("link.callup_ack", "link.respond", Schema(
        query=Param(Text(32, True, pattern=r"[0-9a-f]{32}"), True), code=Param(ID),
        message=Param(REASON)),
        link.callup_ack, socket_only=True,
        answers="(nothing: the answer to a `link.callup` frame)"),
    # -- a department's own reports ----------------------------------------------------------------
    Message("report.field", "report.field", Schema(
        text=Param(Text(4000, True), True), command_id=Param(ID), dept=Param(ID)),
        department.report_field, logs=("report.field",), ack=department.report_ack,
        answers="`report_id`, `seq`"),
    Message("dept.checkin", "dept.checkin", Schema(client_ts_us=CLIENT_TS, dept=Param(ID)),
            department.checkin, logs=("dept.checked_in",), ack=department.checkin_ack,
            answers="`seq`, `checked_in_us`"),
    # -- operations --------------------------------------------------------------------------------
    Message("operation.start", "operation.start", Schema(
        title=Param(Text(200, True), True), kind=Param(Choice(OPERATION_KINDS), default="drill"),
        level=Param(Choice(LEVELS), default="IV"), operation_id=Param(Text(64, True)),
        scenario=Param(Text(64)), speed=Param(Number(above=0, max=1000), default=1.0),
        participants=Param(OneOrMany(ID, 64))),
        operations.start, logs=("operation.started",), ack=operations.operation_ack,
        answers="`operation`, `seq`"),
    Message("operation.end", "operation.end", Schema(reason=Param(REASON)), operations.end,
            logs=("operation.ended",), ack=operations.operation_ack,
            answers="`operation`, `seq`"),
    Message("operation.level", "operation.level", Schema(level=Param(Choice(LEVELS), True),
                                                         reason=Param(REASON)),
            operations.level, logs=("operation.level_changed",), ack=operations.level_ack,
            answers="`level`, `seq` (or `unchanged`)"),
    Message("operation.pause", "operation.pause", NO_FIELDS, operations.pause,
            logs=("operation.paused",), ack=seq_ack, answers="`seq`"),
    Message("operation.resume", "operation.resume", NO_FIELDS, operations.resume,
            logs=("operation.resumed",), ack=seq_ack, answers="`seq`"),
    Message("inject.release", "inject.release", Schema(
        inject_id=Param(Text(128, True), True), title=Param(REASON),
        inject_type=Param(Text(64)), planned_offset_s=Param(Number(min=0)),
        actual_offset_s=Param(Number(min=0))),
        operations.release_inject, logs=("inject.released",), ack=seq_ack, answers="`seq`"),
    Message("dept.excuse", "dept.excuse", Schema(dept=Param(ID, True),
                                                 reason=Param(Text(1000, True), True)),
            operations.excuse, logs=("dept.excused",), ack=seq_ack, answers="`seq`"),
    # -- evaluation ----------------------------------------------------------------------------
    Message("observation.record", "observation.record", Schema(
        criterion=Param(ID, True), rating=Param(Choice(("P", "S", "M", "U")), True),
        note=Param(NOTE), dept=Param(ID)),
        evaluation.record_observation, logs=("observation.recorded",), ack=seq_ack,
        answers="`seq`"),
    Message("checklist.tick", "checklist.tick", Schema(
        item=Param(ID, True), checked=Param(Flag(), default=True), note=Param(NOTE)),
        evaluation.tick_checklist, logs=("checklist.ticked",), ack=seq_ack, answers="`seq`"),
    # -- tokens --------------------------------------------------------------------------------
    Message("token.revoke", "token.revoke", Schema(jti=Param(JTI, True)), tokens.revoke,
            logs=("token.revoked",), ack=seq_ack, answers="`seq`"),
    # -- video (docs/video.md) -----------------------------------------------------------------
    Message("rtc.offer", "video.view", Schema(sdp=Param(Text(256 * 1024, True), True)),
            video.offer, socket_only=True, answers="`sdp`, `slots`"),
    Message("rtc.leave", "video.view", NO_FIELDS, video.leave, socket_only=True),
    Message("route.push", "route.change", Schema(source=Param(ID, True),
                                                 targets=Param(OneOrMany(ID, 64))),
            video.push),
    Message("route.unpush", "route.change", Schema(source=Param(ID, True)), video.unpush),
    Message("route.group", "route.change", Schema(group=Param(ID, True),
                                                  on=Param(Flag(), default=True)),
            video.group),
    Message("route.link", "route.change", Schema(a=Param(ID, True), b=Param(ID, True)),
            video.link),
    Message("route.unlink", "route.change", Schema(a=Param(ID, True), b=Param(ID, True)),
            video.unlink),
    Message("route.mute", "route.change", Schema(dept=Param(ID, True),
                                                 muted=Param(Flag(), default=True)),
            video.mute),
    Message("route.talk", "route.change", Schema(dept=Param(ID)), video.talk),
)

MESSAGES: dict[str, Message] = {m.type: m for m in _ROWS}
assert len(MESSAGES) == len(_ROWS), "a message type is listed twice"

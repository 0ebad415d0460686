"""The hub's commands: serve, token, send, watch, log, tls, and the log/command benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import signal
import sys
from pathlib import Path
from typing import Any

from hub.cli import CliError

DEFAULT_DATA = "commandhub-data"


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=DEFAULT_DATA, help="data folder (events.db, secret.key)")


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the hub")
    _add_data(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--roster", help="roster YAML (default: the bundled 16 departments)")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain HTTP on a non-loopback address (not recommended)")
    p.add_argument("--allow-origin", action="append", default=[],
                   help="extra allowed browser Origin for /ws (repeatable)")
    p.add_argument("--ice-host", action="append", default=[],
                   help="address(es) offered as WebRTC host candidates (default: all interfaces)")
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    p.add_argument("--record", action=argparse.BooleanOptionalAction, default=True,
                   help="record every department feed and the wall to DATA/recordings")
    p.add_argument("--media-config", help="YAML with health, wall, record, snapshots and "
                   "ingest settings (default DATA/media.yaml if present)")
    p.add_argument("--rubric", help="rubric YAML the evaluators rate against and the scorecard "
                   "uses (default: the bundled joint-live-drill)")
    p.add_argument("--snapshot-quota", type=int, metavar="N",
                   help="browser snapshots per operation (default 2000)")
    p.add_argument("--snapshot-quota-mb", type=float, metavar="MB",
                   help="megabytes of browser snapshots per operation (default 1024)")
    p.add_argument("--print-tokens", action="store_true",
                   help="print console URLs with fresh tokens for every role")
    p.set_defaults(handler=cmd_serve)

    tok = sub.add_parser("token", help="issue or revoke access tokens")
    tsub = tok.add_subparsers(dest="token_cmd", required=True)
    ti = tsub.add_parser("issue", help="print a signed token on stdout")
    _add_data(ti)
    ti.add_argument("--role", required=True,
                    choices=["commander", "department", "evaluator", "observer"])
    ti.add_argument("--dept")
    ti.add_argument("--operation", default="*")
    ti.add_argument("--ttl", default="8h")
    ti.add_argument("--name", help="who holds it (any role; an evaluator's name goes on every "
                    "rating and the scorecard); at most 64 characters")
    ti.add_argument("--roster")
    ti.set_defaults(handler=cmd_token_issue)
    tr = tsub.add_parser("revoke", help="revoke a token (by token or jti); live sessions close")
    _add_data(tr)
    tr.add_argument("token_or_jti")
    tr.set_defaults(handler=cmd_token_revoke)

    s = sub.add_parser("send", help="issue a command; prints its id")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--to", required=True, help="department ids, groups or all, comma-separated")
    s.add_argument("--priority", default="routine", choices=["routine", "urgent", "flash"])
    s.add_argument("--requires", default="receipt",
                   help="comma-separated stages: receipt,on_scene,completed")
    s.add_argument("--critical", action="store_true")
    s.add_argument("text")
    s.set_defaults(handler=cmd_send)

    w = sub.add_parser("watch", help="live tail of the event log")
    w.add_argument("--url", required=True)
    w.add_argument("--token", required=True)
    w.add_argument("--after", type=int, default=None, help="replay from this seq first")
    w.add_argument("--count", type=int, default=0, help="stop after N events (0: run until ^C)")
    w.set_defaults(handler=cmd_watch)

    lg = sub.add_parser("log", help="verify, checkpoint and export an event log")
    lsub = lg.add_subparsers(dest="log_cmd", required=True)
    lv = lsub.add_parser("verify", help="check the hash chain; exit 1 at the first bad seq")
    lv.add_argument("db")
    lv.add_argument("--head", help="SEQ:HASH checkpoint the log must still extend")
    lv.set_defaults(handler=cmd_log_verify)
    lh = lsub.add_parser("head", help="print the checkpoint SEQ:HASH")
    lh.add_argument("db")
    lh.set_defaults(handler=cmd_log_head)
    le = lsub.add_parser("export", help="write every event as JSON lines or CSV")
    le.add_argument("db")
    le.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    le.add_argument("--operation")
    le.add_argument("--out", help="file (default stdout)")
    le.set_defaults(handler=cmd_log_export)

    tls = sub.add_parser("tls", help="TLS helpers")
    tlsub = tls.add_subparsers(dest="tls_cmd", required=True)
    ss = tlsub.add_parser("self-signed", help="make a certificate for a LAN without a CA")
    ss.add_argument("--host", nargs="+", required=True, help="host names or IP addresses")
    ss.add_argument("--out", default=".", help="folder for hub-cert.pem and hub-key.pem")
    ss.add_argument("--days", type=int, default=825)
    ss.set_defaults(handler=cmd_tls_self_signed)


def register_bench(bench_sub: Any) -> None:
    b = bench_sub.add_parser("log", help="durable appends per second and commit latency")
    b.add_argument("--events", type=int, default=200_000)
    b.add_argument("--writers", type=int, default=256)
    b.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=lambda a: _bench("bench_log", a))
    c = bench_sub.add_parser("commands", help="command -> receipt round trip over WebSocket")
    c.add_argument("--departments", type=int, default=16)
    c.add_argument("--rate", type=float, default=100.0, help="commands per second")
    c.add_argument("--seconds", type=float, default=10.0)
    c.add_argument("--flood", action="store_true",
                   help="then one department floods the hub while the others answer")
    c.add_argument("--flood-rate", type=float, default=10_000.0, help="its messages per second")
    c.add_argument("--flood-seconds", type=float, default=5.0)
    c.add_argument("--flood-type", choices=["report.field", "ping", "cpu"],
                   default="report.field",
                   help="what it sends (report.field: each accepted one is logged; cpu: the "
                   "control, a process as busy that sends nothing)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=lambda a: _bench("bench_commands", a))


def _bench(name: str, args: argparse.Namespace) -> int:
    from hub import bench

    result: dict[str, Any] = asyncio.run(getattr(bench, name)(args))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


# -- serve --------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from hub.runtime import ServeOptions, serve

    opts = ServeOptions(
        data=Path(args.data), host=args.host, port=args.port,
        roster=args.roster, tls_cert=args.tls_cert, tls_key=args.tls_key,
        insecure=args.insecure, allow_origins=set(args.allow_origin),
        ice_hosts=list(args.ice_host), synchronous=args.synchronous,
        print_tokens=args.print_tokens, record=args.record, media_config=args.media_config,
        rubric=args.rubric, snapshot_quota=args.snapshot_quota,
        snapshot_quota_mb=args.snapshot_quota_mb,
    )
    return _run_until_signal(serve(opts))


def _run_until_signal(coro: Any) -> int:
    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return int(loop.run_until_complete(task) or 0)
    except asyncio.CancelledError:
        return 0
    finally:
        loop.close()


# -- tokens -------------------------------------------------------------------------------------

def _authority(data: Path, roster_path: str | None = None) -> Any:
    from hub.auth import AuthError, TokenAuthority, load_secret
    from hub.roster import RosterError, load_roster

    try:
        roster = load_roster(roster_path)
        return TokenAuthority(load_secret(data), set(roster.ids))
    except (RosterError, AuthError) as exc:
        raise CliError(str(exc)) from exc


def cmd_token_issue(args: argparse.Namespace) -> int:
    import time

    from hub.auth import AuthError, parse_ttl

    try:
        ttl = parse_ttl(args.ttl)
        token = _authority(Path(args.data), args.roster).issue(
            args.role, now=int(time.time()), ttl_s=ttl, dept=args.dept, operation=args.operation,
            name=args.name)
    except (ValueError, AuthError) as exc:
        raise CliError(str(exc)) from exc
    print(token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    import jwt

    from hub.auth import Revocations

    value = args.token_or_jti
    if "." in value:
        try:
            value = jwt.decode(value, options={"verify_signature": False})["jti"]
        except (jwt.PyJWTError, KeyError) as exc:
            raise CliError(f"not a token: {exc}") from exc
    Revocations(Path(args.data)).add(value)
    print(f"revoked {value}; live sessions using it close within a second or two")
    return 0


# -- send / watch -------------------------------------------------------------------------------

def cmd_send(args: argparse.Namespace) -> int:
    import uuid

    from hub.client import HubClient, HubClientError

    async def go() -> str:
        client = HubClient(args.url, args.token)
        try:
            body = {"id": f"send-{uuid.uuid4().hex}",  # state-changing requests carry an id
                    "targets": args.to.split(","), "text": args.text, "priority": args.priority,
                    "requires": [r for r in args.requires.split(",") if r],
                    "critical": args.critical}
            result = await client.rest("POST", "/api/commands", body)
            return str(result["command_id"])
        finally:
            await client.close()

    try:
        print(asyncio.run(go()))
    except HubClientError as exc:
        raise CliError(str(exc), 1) from exc
    return 0


def format_event(ev: dict[str, Any]) -> str:
    import datetime as dt

    ts = dt.datetime.fromtimestamp(ev["ts_us"] / 1e6, tz=dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    who = ev["role"] + (f":{ev['dept']}" if ev.get("dept") else "")
    payload = json.dumps(ev["payload"], ensure_ascii=False, sort_keys=True)
    return f"{ev['seq']:>7} {ts} {ev['op']:<24} {who:<22} {ev['kind']:<24} {payload}"


def cmd_watch(args: argparse.Namespace) -> int:
    from hub.client import HubClient, HubClientError

    async def go() -> None:
        async with HubClient(args.url, args.token) as client:
            await client.subscribe(args.after)
            n = 0
            while args.count == 0 or n < args.count:
                ev = await client.events.get()
                print(format_event(ev), flush=True)
                n += 1

    try:
        asyncio.run(go())
    except HubClientError as exc:
        raise CliError(str(exc), 1) from exc
    return 0


# -- log ----------------------------------------------------------------------------------------

def cmd_log_verify(args: argparse.Namespace) -> int:
    from hub.logformat import ChainError, Head, LogFormatError, verify_file

    try:
        head = Head.parse(args.head) if args.head else None
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        got = verify_file(args.db, head)
    except LogFormatError as exc:
        raise CliError(str(exc)) from exc
    except ChainError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        print(f"first bad seq: {exc.seq}")
        return 1
    print(f"OK: {got.seq} events, head {got}")
    return 0


def _open_log(path: str) -> Any:
    """A read-only connection to a log file; CliError (exit 2) if it is not one."""
    from hub.logformat import LogFormatError, open_readonly

    try:
        return open_readonly(path)
    except LogFormatError as exc:
        raise CliError(str(exc)) from exc


def cmd_log_head(args: argparse.Namespace) -> int:
    from hub.logformat import stored_head

    conn = _open_log(args.db)
    try:
        print(stored_head(conn))
    finally:
        conn.close()
    return 0


def cmd_log_export(args: argparse.Namespace) -> int:
    from hub.logformat import Event, iter_rows

    conn = _open_log(args.db)
    with contextlib.ExitStack() as stack:
        stack.callback(conn.close)
        out = (stack.enter_context(open(args.out, "w", encoding="utf-8", newline=""))
               if args.out else sys.stdout)
        writer = None
        if args.format == "csv":
            writer = csv.writer(out)
            writer.writerow(["seq", "ts_us", "mono_ns", "op", "op_kind", "role", "dept", "kind",
                             "payload", "prev_hash", "hash"])
        for row in iter_rows(conn):
            if args.operation and row[3] != args.operation:
                continue
            if writer is not None:
                writer.writerow(row)
            else:
                out.write(json.dumps(Event.from_row(row).to_dict(), ensure_ascii=False,
                                     sort_keys=True) + "\n")
    return 0


# -- tls ----------------------------------------------------------------------------------------

def cmd_tls_self_signed(args: argparse.Namespace) -> int:
    from hub.tls import make_self_signed

    cert, key = make_self_signed(args.host, Path(args.out), days=args.days)
    print(f"certificate: {cert}\nprivate key: {key} (mode 0600)")
    print("Serve with: commandhub serve --host 0.0.0.0 "
          f"--tls-cert {cert} --tls-key {key}")
    print("Trust it on each department's machine: import the certificate into the browser's "
          "or system's trusted roots (Debian: copy to /usr/local/share/ca-certificates/"
          "commandhub.crt and run update-ca-certificates; Chrome/Edge: Settings > Privacy > "
          "Manage certificates > Authorities > Import). Check the SHA-256 fingerprint below "
          "matches on both ends:")
    from hub.tls import fingerprint

    print(fingerprint(cert))
    return 0

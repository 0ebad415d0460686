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
                   help="address(es) offered as WebRTC host candidates (repeatable; default: "
                        "every interface address and 127.0.0.1, printed at start)")
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
    p.add_argument("--skip-verify", action="store_true",
                   help="start even if the log does not verify from its latest signed head "
                   "(logged as log.verify_skipped, with the user and --skip-verify-reason)")
    p.add_argument("--skip-verify-reason", default="", metavar="TEXT",
                   help="why verification is skipped (goes into the log)")
    p.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="uvloop (default; asyncio's own loop if uvloop is not installed) or "
                   "asyncio's: the media path's per-packet cost is largely the loop's")
    p.add_argument("--uplink", metavar="URL", help="the city hub this (town) hub is a unit "
                   "of: city commands for the town are issued here, its answers go up")
    p.add_argument("--uplink-token", metavar="TOKEN", help="the city's `hub` token for this "
                   "town (`commandhub token issue --role hub --dept TOWN` on the city)")
    p.add_argument("--uplink-ca", metavar="FILE", help="trust only this CA certificate (PEM) "
                   "for an https --uplink whose city uses a private CA (e.g. the city's "
                   "hub-ca.pem from `commandhub tls self-signed`)")
    p.set_defaults(handler=cmd_serve)

    tok = sub.add_parser("token", help="issue or revoke access tokens")
    tsub = tok.add_subparsers(dest="token_cmd", required=True)
    ti = tsub.add_parser("issue", help="print a signed token on stdout")
    _add_data(ti)
    ti.add_argument("--role", required=True,
                    choices=["commander", "department", "evaluator", "observer", "hub"],
                    help="`hub`: a town hub's uplink (--dept: the town's id in this roster)")
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
    lv = lsub.add_parser(
        "verify", help="check the hash chain and the signed heads (exit 1: chain broken at "
        "seq N; 3: the log does not extend a signed head or --head; 2: not a log / bad usage)")
    lv.add_argument("db")
    lv.add_argument("--linked", nargs="+", metavar="TOWN_DB", help="town hubs' logs linked to "
                    "this (city) log: verify them too and every cross-reference (hub/tiers/)")
    lv.add_argument("--head", help="SEQ:HASH checkpoint the log must still extend")
    lv.add_argument("--key", metavar="PUBKEY_FILE_OR_FINGERPRINT",
                    help="the signing key handed over out of band (PEM file from `log key`, or "
                    "its SHA-256 fingerprint): every signed head must be signed by it")
    lv.set_defaults(handler=cmd_log_verify)
    lk = lsub.add_parser("key", help="print the log signing key's public key (PEM) and "
                         "fingerprint; creates the key (0600) on first use")
    _add_data(lk)
    lk.add_argument("--out", help="also write the PEM public key to this file")
    lk.set_defaults(handler=cmd_log_key)
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
    c.add_argument("--video-feeds", type=int, default=0, metavar="N",
                   help="then N video feeds flow into the hub while the departments answer again")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=lambda a: _bench("bench_commands", a))
    t = bench_sub.add_parser("tiers", help="city -> town hub -> department -> city round trip "
                             "(a city and N town hub processes on loopback)")
    t.add_argument("--towns", type=int, default=14)
    t.add_argument("--departments", type=int, default=8, help="per town")
    t.add_argument("--rate", type=float, default=20.0, help="city commands per second")
    t.add_argument("--seconds", type=float, default=10.0, help="issuing time (at most 120)")
    t.add_argument("--outage", type=float, default=0.0, metavar="S",
                   help="kill the city half way and restart it S seconds later")
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=_bench_tiers)


def _bench(name: str, args: argparse.Namespace) -> int:
    from hub import bench

    result: dict[str, Any] = asyncio.run(getattr(bench, name)(args))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _bench_tiers(args: argparse.Namespace) -> int:
    from hub.tiers.bench import bench_tiers

    result = asyncio.run(bench_tiers(args))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


# -- serve --------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from hub.eventlog import VerifySkip
    from hub.runtime import ServeOptions, new_event_loop, serve

    if args.skip_verify_reason and not args.skip_verify:
        raise CliError("--skip-verify-reason goes with --skip-verify")
    opts = ServeOptions(
        data=Path(args.data), host=args.host, port=args.port,
        roster=args.roster, tls_cert=args.tls_cert, tls_key=args.tls_key,
        insecure=args.insecure, allow_origins=set(args.allow_origin),
        ice_hosts=list(args.ice_host), synchronous=args.synchronous,
        print_tokens=args.print_tokens, record=args.record, media_config=args.media_config,
        skip_verify=VerifySkip(args.skip_verify_reason) if args.skip_verify else None,
        rubric=args.rubric, snapshot_quota=args.snapshot_quota,
        snapshot_quota_mb=args.snapshot_quota_mb, uplink=args.uplink,
        uplink_token=args.uplink_token, uplink_ca=args.uplink_ca,
    )
    return _run_until_signal(serve(opts), new_event_loop(args.event_loop))


def _run_until_signal(coro: Any, loop: asyncio.AbstractEventLoop) -> int:
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
    print(f"revoked {value}; the running hub ends its WebSocket, WHIP and WHEP sessions within "
          "2 s and logs token.revoked (by: cli); a stopped hub does so when it starts")
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
    import datetime as dt

    from hub.checkpoint import CheckpointError, KeyFileError, KeyPin, heads_path, verify_log
    from hub.logformat import ChainError, Head, HeadMismatchError, LogFormatError

    try:
        head = Head.parse(args.head) if args.head else None
        pin = KeyPin.parse(args.key) if args.key else None
    except (ValueError, KeyFileError) as exc:
        raise CliError(str(exc)) from exc
    try:
        verdict = verify_log(args.db, key=pin, head=head)
    except LogFormatError as exc:
        raise CliError(str(exc)) from exc
    except HeadMismatchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        print(f"first bad seq: {exc.seq}")
        return 3
    except ChainError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        print(f"first bad seq: {exc.seq}")
        return 1
    except CheckpointError as exc:
        print(f"FAILED: signed heads cannot be trusted: {exc}", file=sys.stderr)
        return 3
    print(f"OK: {verdict.head.seq} events, head {verdict.head}")
    latest = verdict.latest
    if latest is None:
        print(f"no signed heads ({heads_path(args.db)} is missing or empty): only the chain "
              "was checked")
    else:
        when = dt.datetime.fromtimestamp(latest.ts_us / 1e6, tz=dt.UTC).isoformat(
            timespec="seconds")
        print(f"signed head {latest.head} ({latest.reason}, {when}) is extended; "
              f"{verdict.heads_checked} signed head(s) checked")
        print(f"key fingerprint {latest.key_fingerprint} "
              + ("(pinned with --key)" if verdict.key_pinned else
                 "(not pinned: compare it with the one handed over, or pass --key)"))
    if verdict.torn_tail:
        print("note: the heads file ends in a partial line (a crash while signing); ignored")
    if head is not None:
        print(f"extends --head {head}")
    if args.linked:
        return _verify_linked(args.db, args.linked)
    return 0


def _verify_linked(city_db: str, town_dbs: list[str]) -> int:
    """Each town log's own chain (as above), then the cross-references (exit 1 if any fails)."""
    from hub.checkpoint import CheckpointError, verify_log
    from hub.logformat import ChainError, LogFormatError
    from hub.tiers.linkcheck import check_linked

    for db in town_dbs:
        try:
            verdict = verify_log(db)
        except (LogFormatError, ChainError, CheckpointError) as exc:
            print(f"FAILED: {db}: {exc}", file=sys.stderr)
            return 1
        print(f"OK: {db}: {verdict.head.seq} events, {verdict.heads_checked} signed head(s)")
    report = check_linked(city_db, list(town_dbs))
    for problem in report.problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    towns = ", ".join(f"{t}={p}" for t, p in sorted(report.towns.items())) or "none"
    print(f"linked towns: {towns}; checked {report.checked['commands']} linked command(s), "
          f"{report.checked['answers']} answer(s), {report.checked['acks']} ack(s)")
    return 0 if report.ok else 1


def cmd_log_key(args: argparse.Namespace) -> int:
    from hub.checkpoint import HeadSigner, KeyFileError

    try:
        signer = HeadSigner.load_or_create(Path(args.data))
    except (KeyFileError, OSError) as exc:
        raise CliError(f"{args.data}: {exc}") from exc
    pem = signer.public_key_pem()
    if args.out:
        Path(args.out).write_text(pem, encoding="ascii")
    print(pem, end="")
    print(f"# fingerprint: sha256:{signer.fingerprint()}")
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
    from hub.tls import TlsError, constraints_text, fingerprint, make_self_signed

    try:
        files = make_self_signed(args.host, Path(args.out), days=args.days)
    except (TlsError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f"CA certificate:  {files.ca}   <- the ONLY file clients trust")
    print(f"hub certificate: {files.cert} (the hub's own, with the CA appended)")
    print(f"hub private key: {files.key} (mode 0600; keep it on the hub)")
    print(f"\nServe with: commandhub serve --host 0.0.0.0 --tls-cert {files.cert} "
          f"--tls-key {files.key}")
    print(f"\nTrust exactly {files.ca.name} on each department's machine, as a certificate "
          "authority:\n  Debian/Ubuntu: cp " f"{files.ca} /usr/local/share/ca-certificates/"
          "commandhub-ca.crt && update-ca-certificates\n  Chrome/Edge: Settings > Privacy > "
          f"Manage certificates > Authorities > Import {files.ca.name}\n  Firefox: Settings > "
          f"Certificates > View Certificates > Authorities > Import {files.ca.name}")
    print(f"It can vouch only for: {constraints_text(files.ca)} (X.509 name constraints), and "
          "its private key was never written to disk, so no other certificate can be issued "
          "under it. Do not trust hub-cert.pem or hub-key.pem. Running this again makes a new "
          "CA (trust the new one, remove the old one).")
    print(f"\nCheck on both ends that the CA's SHA-256 fingerprint is:\n{fingerprint(files.ca)}")
    return 0

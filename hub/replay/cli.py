"""`commandhub replay DIR`: serve an archived data folder's replay (no hub, read-only, offline)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import secrets
import sys
from pathlib import Path
from typing import Any

from hub.cli import CliError

DEFAULT_PORT = 8765


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="after-action replay of an archived data folder "
                       "(`replay DIR`), or `replay export` a clip")
    p.add_argument("target", help="the data folder (with events.db and recordings/), or `export`")
    p.add_argument("--op", help="the operation (default: the last one in the log)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--token", help="the access token the server asks for (default: a random one, "
                   "printed in the URL)")
    p.add_argument("--data", help="export: the data folder (default ./data)")
    p.add_argument("--from", dest="from_", metavar="T", help="export: start (hub µs, +SECONDS "
                   "from the operation start, or #SEQ)")
    p.add_argument("--to", metavar="T", help="export: end (as --from)")
    p.add_argument("--out", help="export: the clip to write (.mp4)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.target == "export":
        from hub.replay.export import export_cli

        return export_cli(args)
    return serve(Path(args.target), args.op, args.host, args.port, args.token)


def serve(data_dir: Path, op: str | None, host: str, port: int, token: str | None) -> int:
    from hub.replay.model import ReplayError, load_replay

    if not (data_dir / "events.db").is_file():
        raise CliError(f"{data_dir}: not a data folder (no events.db)")
    try:
        replay = load_replay(data_dir, op)
    except ReplayError as exc:
        raise CliError(f"{data_dir}: {exc}") from exc
    if not _loopback(host):
        print(f"replay: warning: listening on {host}, not loopback: anyone who can reach it "
              "and has the token sees every recording", file=sys.stderr)
    bad = [r for r in replay.recordings if not r.trusted]
    if not replay.log["verified"]:
        print(f"replay: warning: {replay.log['error']}", file=sys.stderr)
    for r in bad:
        print(f"replay: untrusted (not served): {r.path}: {r.problem}", file=sys.stderr)
    from hub.replay.web import ServeError, serve_folder

    try:
        return asyncio.run(serve_folder(data_dir, replay.op, host, port,
                                        token or secrets.token_urlsafe(24)))
    except ServeError as exc:
        raise CliError(str(exc)) from exc


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

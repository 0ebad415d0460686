"""`commandhub ingest --dept ID URL`: have a running hub ingest a camera/file URL as a department's feed."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="ingest a camera (RTSP/HTTP/file URL) as a department's feed")
    p.add_argument("url", nargs="?", help="rtsp://, http(s)://, file:// URL or a file path")
    p.add_argument("--dept", required=True, help="department id (roster)")
    p.add_argument("--hub", default=os.environ.get("COMMANDHUB_URL", "http://127.0.0.1:8080"),
                   help="the running hub (default $COMMANDHUB_URL or http://127.0.0.1:8080)")
    p.add_argument("--token", default=os.environ.get("COMMANDHUB_TOKEN"),
                   help="a commander token (default $COMMANDHUB_TOKEN)")
    p.add_argument("--stop", action="store_true", help="stop the department's ingest instead")
    p.set_defaults(handler=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    from hub.cli import CliError

    if not args.token:
        raise CliError("a commander token is needed: --token or $COMMANDHUB_TOKEN")
    if not args.stop and not args.url:
        raise CliError("give the URL to ingest (or --stop)")
    url = args.url
    if url and "://" not in url:
        url = "file://" + os.path.abspath(url)
    base = args.hub.rstrip("/")
    if args.stop:
        request = urllib.request.Request(f"{base}/api/ingest/{args.dept}", method="DELETE")
    else:
        body = json.dumps({"dept": args.dept, "url": url}).encode()
        request = urllib.request.Request(f"{base}/api/ingest", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
    request.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            result = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise CliError(f"hub answered {exc.code}: {detail}", 1) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach the hub at {base}: {exc}", 1) from None
    print(json.dumps(result, ensure_ascii=False))
    return 0

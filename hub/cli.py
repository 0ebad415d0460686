"""The `commandhub` command line: one argparse tree, each package registering its own commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Modules that contribute commands: `register(sub)` adds commands to the top-level subparsers,
# `register_bench(bench_sub)` adds `commandhub bench X`; a module may have either or both.
# Imports happen here, but each module keeps its heavy imports inside the command functions.
COMMAND_MODULES = [
    "hub.cli_hub",
    "hub.cli_roster",
    "hub.bench_media",
    "hub.bench_ui",
    "scoring.cli",
    "drills.cli",
    "media.cli",
    "hub.replay.cli",
    "hub.replay.bench",
]


class CliError(Exception):
    """A user-facing error: printed as `commandhub: message` with an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commandhub", description="Video command hub and drill scorer."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = sub.add_parser("bench", help="benchmarks that print figures (--json: last line JSON)")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that package has no commands yet
                continue
            raise
        if hasattr(mod, "register"):
            mod.register(sub)
        if hasattr(mod, "register_bench"):
            mod.register_bench(bench_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CliError as exc:
        print(f"commandhub: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run through the imported module so exception classes are the ones the commands raise.
    from hub.cli import main as _main

    sys.exit(_main())

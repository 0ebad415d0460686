"""The layering rules: heavy libraries only where they belong; ruff and mypy clean."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hub", "drills", "scoring", "media")

# library -> the modules allowed to import it
ALLOWED = {
    # the hub's web layer (server, client, extensions, benches that drive it)
    "aiohttp": {"hub/server.py", "hub/client.py", "hub/runtime.py", "hub/wiring.py", "hub/body.py",
                "hub/media_wiring.py", "hub/whip.py", "hub/consoles.py", "hub/bench.py",
                "hub/bench_ui.py", "hub/bench_flood.py", "hub/bench_feeds.py", "hub/replay/web.py",
                "hub/replay/bench.py",
                "hub/sfu/tiervideo.py"},  # a town hub's WHIP/WHEP client of its city
    # media code, and the hub's peer code
    "aiortc": {"media/*", "hub/sfu/*", "hub/media_client.py", "hub/whip.py", "hub/bench_media.py",
               "hub/bench_feeds.py"},
    "av": {"media/*", "hub/sfu/*", "hub/media_client.py", "hub/whip.py", "hub/bench_media.py",
           "hub/bench_feeds.py"},
    "cv2": {"media/*"},
    # the served hub's event loop
    "uvloop": {"hub/runtime.py"},
    # scoring's PDF modules only
    "reportlab": {"scoring/pdf.py", "scoring/charts.py", "scoring/trend.py"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def allowed(rel: str, lib: str) -> bool:
    return any(rel == pat or (pat.endswith("/*") and rel.startswith(pat[:-1]))
               for pat in ALLOWED[lib])


def test_heavy_libraries_stay_in_their_layer() -> None:
    wrong = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for lib in imported_roots(path) & ALLOWED.keys():
                if not allowed(rel, lib):
                    wrong.append(f"{rel} imports {lib}")
    assert wrong == []


def test_scoring_engine_does_not_load_the_hub_or_media() -> None:
    code = ("import sys, scoring.engine, scoring.cli; "
            "import json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('aiortc','aiohttp','av','cv2','reportlab','hub','media','drills'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    loaded = set(json.loads(out))
    assert loaded <= {"hub", "hub.logformat", "hub.checkpoint", "hub.yamlsrc", "media", "media.fonts"}, loaded


def test_checkpoint_module_stays_light() -> None:
    """hub/checkpoint.py is for scoring and audit tools too: stdlib, cryptography, logformat."""
    code = ("import sys, hub.checkpoint; import json; print(json.dumps(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('aiortc','aiohttp','av','cv2','reportlab','hub',"
            "'media','drills','scoring','numpy','yaml'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert set(json.loads(out)) == {"hub", "hub.checkpoint", "hub.logformat"}


def test_ruff_is_clean(static_check: Callable[[], tuple[int, str]]) -> None:
    code, out = static_check()  # `ruff check .`, started with the suite (tests/conftest.py)
    assert code == 0, out


def test_mypy_is_clean(static_check: Callable[[], tuple[int, str]]) -> None:
    code, out = static_check()  # `mypy` (pyproject's files, strict where it says)
    assert code == 0, out


def test_media_uses_only_the_logs_contract_from_the_hub() -> None:
    """media/ is below the hub: of hub/ it may use the event log's format (the contract), the
    command line its commands plug into, and the default roster (benchmark sources), nothing of
    the media plane or the server."""
    public = {"hub.logformat", "hub.cli", "hub.roster"}
    wrong = []
    for path in sorted((ROOT / "media").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] == "hub" and name not in public:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []

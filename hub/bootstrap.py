"""Fresh-machine set-up and entry point: `python3 -m hub.bootstrap demo|test|-- ARGS`.

Standard library only, so it runs with nothing but python3. It creates `.venv` beside the
checkout, installs the project with its test extras, installs the Debian packages the
project needs (CJK fonts, poppler-utils, chromium, GStreamer with webrtcbin for the interop
tests, ffmpeg) when they are missing and we are root, then runs the demo, the test suite, or
any `commandhub` command inside the venv.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".commandhub-installed"

# Debian packages and a file each one provides (a glob; checked before installing).
_GST = "/usr/lib/*/gstreamer-1.0/"
_GIR = "/usr/lib/*/girepository-1.0/"
APT_PACKAGES = {
    "fonts-wqy-microhei": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "fonts-droid-fallback": "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "poppler-utils": "/usr/bin/pdftoppm",
    "chromium": "/usr/bin/chromium",
    "iproute2": "/usr/sbin/ip",
    # independent WebRTC/RTSP clients for the tests (GStreamer webrtcbin under /usr/bin/python3),
    # ffprobe to read recordings back, gcc to build the tests' getifaddrs shim, openssl for
    # their DTLS certificates
    "gstreamer1.0-tools": "/usr/bin/gst-launch-1.0",
    "gstreamer1.0-plugins-base": _GST + "libgstvideotestsrc.so",
    "gstreamer1.0-plugins-good": _GST + "libgstvpx.so",
    "gstreamer1.0-plugins-bad": _GST + "libgstwebrtc.so",
    "gstreamer1.0-plugins-ugly": _GST + "libgstx264.so",
    "gstreamer1.0-nice": _GST + "libgstnice.so",
    "gstreamer1.0-libav": _GST + "libgstlibav.so",
    "gir1.2-gstreamer-1.0": _GIR + "Gst-1.0.typelib",
    "gir1.2-gst-plugins-base-1.0": _GIR + "GstSdp-1.0.typelib",
    "gir1.2-gst-plugins-bad-1.0": _GIR + "GstWebRTC-1.0.typelib",
    "gir1.2-gst-rtsp-server-1.0": _GIR + "GstRtspServer-1.0.typelib",
    "python3-gi": "/usr/lib/python3/dist-packages/gi/__init__.py",
    "python3-gst-1.0": "/usr/lib/python3/dist-packages/gi/overrides/Gst.py",
    "ffmpeg": "/usr/bin/ffprobe",
    "gcc": "/usr/bin/gcc",
    "openssl": "/usr/bin/openssl",
    "sqlite3": "/usr/bin/sqlite3",  # the tests read the log back with the sqlite3 CLI
    # headers for scoring's C chain checker (scoring/chaincheck.c, built with gcc)
    "libsqlite3-dev": "/usr/include/sqlite3.h",
    "libssl-dev": "/usr/include/openssl/sha.h",
}


def log(msg: str) -> None:
    print(f"[commandhub setup] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: object) -> None:
    log(" ".join(cmd))
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def ensure_apt() -> None:
    missing = [pkg for pkg, path in APT_PACKAGES.items() if not glob.glob(path)]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        log(f"missing Debian packages {missing}; install them as root (apt-get install)")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    pyproject = ROOT / "pyproject.toml"
    if not py.exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    if not STAMP.exists() or STAMP.stat().st_mtime < pyproject.stat().st_mtime:
        run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([str(py), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"])
        STAMP.touch()
    return py


def ensure_native(py: Path) -> None:
    """Build scoring's C chain checker now rather than on the first score; without it scoring
    checks the chain in Python (the same verdicts, slower), so a failure is only reported."""
    probe = subprocess.run(
        [str(py), "-c", "from scoring.chaincheck import build; build()"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if probe.returncode != 0:
        why = probe.stderr.strip()[-300:]
        log(f"the C chain checker was not built; scoring checks the chain in Python: {why}")


def loopback_prefix() -> list[str]:
    """A command prefix that runs in a fresh network namespace with only `lo` up, if possible."""
    if os.environ.get("COMMANDHUB_NO_NETNS") or shutil.which("unshare") is None:
        return []
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        log("no network namespace available; tests use 127.0.0.1 in the host namespace")
        return []
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "netns"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    ensure_apt()
    py = ensure_venv()
    ensure_native(py)
    bindir = py.parent
    env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(VENV))
    what, rest = argv[0], argv[1:]
    if what == "test":
        cmd = [*loopback_prefix(), str(py), "-m", "pytest", *rest]
    elif what == "demo":
        cmd = [str(bindir / "commandhub"), "demo", *rest]
    elif what == "--":
        cmd = [str(bindir / "commandhub"), *rest]
    else:
        print(f"unknown action {what!r}: use demo, test, or -- ARGS", file=sys.stderr)
        return 2
    log(" ".join(cmd))
    return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

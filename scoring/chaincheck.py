"""The hash chain checked by chaincheck.c (built with gcc on first use, loaded by ctypes).

`check` runs one C pass over a range of seqs; it stops at the first row it cannot pass with
certainty. scoring.logread.verify_chunk_native drives it, has the Python reference judge such
rows, and so gives verify_chunk's verdicts several times faster. Without the library (no gcc,
no headers, COMMANDHUB_NATIVE=0) `check` returns None and the caller uses the Python path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from scoring.drilllog import Responses

SOURCE = Path(__file__).with_name("chaincheck.c")
CC_OK, CC_MISSING, CC_LINK, CC_SUSPECT, CC_SQLITE = range(5)


class NativeUnavailable(Exception):
    """The C chain checker cannot be built or loaded here."""


class _Result(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_int64),
        ("seq", ctypes.c_int64),
        ("found", ctypes.c_int64),
        ("status", ctypes.c_int),
        ("first_prev", ctypes.c_char * 72),
        ("last_hash", ctypes.c_char * 72),
    ]


class _Responses(ctypes.Structure):
    _fields_ = [
        ("op", ctypes.c_char_p),
        ("last_seq", ctypes.c_int64),
        ("kinds", ctypes.POINTER(ctypes.c_char_p)),
        ("nkinds", ctypes.c_int),
        ("kind", ctypes.POINTER(ctypes.c_int8)),
        ("seq", ctypes.POINTER(ctypes.c_int64)),
        ("ts", ctypes.POINTER(ctypes.c_int64)),
        ("ids", ctypes.POINTER(ctypes.c_int32)),
        ("n", ctypes.c_int64),
        ("cap", ctypes.c_int64),
        ("text", ctypes.POINTER(ctypes.c_char)),
        ("ends", ctypes.POINTER(ctypes.c_int64)),
        ("nstr", ctypes.c_int64),
        ("capstr", ctypes.c_int64),
        ("ntext", ctypes.c_int64),
        ("captext", ctypes.c_int64),
        ("slots", ctypes.POINTER(ctypes.c_int32)),
        ("nslots", ctypes.c_int64),
    ]


NEED_CID = 64  # chaincheck.c: the command id is left to the Python reference


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "commandhub"


def library_path() -> Path:
    """Where the built library for this source (and this platform) lives."""
    where = f"{sys.platform} {platform.machine()}".encode()
    tag = hashlib.sha256(SOURCE.read_bytes() + where).hexdigest()[:16]
    return cache_dir() / f"chaincheck-{tag}.so"


def build() -> Path:
    """Build the library if it is not built yet; raise NativeUnavailable with gcc's words."""
    out = library_path()
    if out.is_file():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        raise NativeUnavailable(f"cannot write {out.parent}: {exc}") from exc
    cmd = ["gcc", "-O2", "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lsqlite3", "-lcrypto"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        os.unlink(tmp)
        raise NativeUnavailable(f"{' '.join(cmd)}: {exc}") from exc
    if done.returncode != 0:
        os.unlink(tmp)
        raise NativeUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    os.replace(tmp, out)  # atomic: a concurrent build of the same source writes the same bytes
    return out


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_why: str | None = None


def library() -> ctypes.CDLL | None:
    """The loaded library, or None (why: `unavailable_reason()`)."""
    global _lib, _why
    if os.environ.get("COMMANDHUB_NATIVE", "1") == "0":
        return None
    with _lock:
        if _lib is None and _why is None:
            try:
                lib = ctypes.CDLL(str(build()))
            except (NativeUnavailable, OSError) as exc:
                _why = str(exc)
            else:
                lib.cc_verify.argtypes = [
                    ctypes.c_char_p,
                    ctypes.c_int64,
                    ctypes.c_int64,
                    ctypes.c_char_p,
                    ctypes.POINTER(_Result),
                    ctypes.POINTER(_Responses),
                ]
                lib.cc_verify.restype = ctypes.c_int
                lib.cc_free.argtypes = [ctypes.POINTER(_Responses)]
                lib.cc_free.restype = None
                _lib = lib
        return _lib


def unavailable_reason() -> str | None:
    if os.environ.get("COMMANDHUB_NATIVE", "1") == "0":
        return "turned off (COMMANDHUB_NATIVE=0)"
    return None if library() is not None else _why


class Range:
    """What C found over lo..hi: rows verified up to a stop (or the end)."""

    __slots__ = ("count", "first_prev", "found", "gathered", "last_hash", "seq", "status")

    def __init__(self, r: _Result, gathered: Responses | None) -> None:
        self.status, self.count, self.seq, self.found = r.status, r.count, r.seq, r.found
        self.first_prev = r.first_prev.decode() or None
        self.last_hash = r.last_hash.decode() or None
        # `gathered`: kind holds NEED_CID on rows whose command id C left to the caller ("")
        self.gathered = gathered


def _take(g: _Responses) -> Responses:
    n = g.n
    if n == 0:
        return Responses.empty()
    kind = np.ctypeslib.as_array(g.kind, (n,)).copy()
    seq = np.ctypeslib.as_array(g.seq, (n,)).copy()
    ts = np.ctypeslib.as_array(g.ts, (n,)).copy()
    ids = np.ctypeslib.as_array(g.ids, (2 * n,)).tolist()
    ends = np.ctypeslib.as_array(g.ends, (g.nstr,)).tolist()
    text = ctypes.string_at(g.text, g.ntext)
    distinct = [text[a:b].decode() for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    out = [distinct[i] for i in ids]
    return Responses(kind, seq, ts, out[0::2], out[1::2])


def check(
    uri: str,
    lo: int,
    hi: int,
    expect_prev: str | None,
    op: str | None = None,
    last_seq: int = 0,
    kinds: tuple[str, ...] = (),
) -> Range | None:
    """One C pass over lo..hi (None: no library). It stops at the first row it cannot pass.
    With `op`, the verified rows of that operation (seq <= last_seq) whose kind is one of
    `kinds` are gathered."""
    lib = library()
    if lib is None:
        return None
    r = _Result()
    g = _Responses()
    keep = [k.encode() for k in kinds]
    if op is not None:
        g.op, g.last_seq = op.encode(), last_seq
        g.kinds, g.nkinds = (ctypes.c_char_p * len(keep))(*keep), len(keep)
    prev = None if expect_prev is None else expect_prev.encode()
    try:
        lib.cc_verify(uri.encode(), lo, hi, prev, ctypes.byref(r), ctypes.byref(g))
        return Range(r, _take(g) if op is not None else None)
    finally:
        lib.cc_free(ctypes.byref(g))


__all__ = [
    "NEED_CID",
    "NativeUnavailable",
    "Range",
    "build",
    "check",
    "library",
    "unavailable_reason",
]

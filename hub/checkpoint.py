"""Signed checkpoints of the event log: an Ed25519 key in the data folder signs log heads, kept
in an append-only sidecar (`events.db.heads`) that survives a cut of the log's tail.

Standard library and `cryptography` only (no hub server or media code), so scoring and audit
tools can import it. The sidecar holds one JSON object per line; each line is signed on its own:

    {"hash": "<64 hex>", "key_fingerprint": "<64 hex>", "public_key": "<base64, 32 bytes>",
     "reason": "periodic", "seq": 1234, "signature": "<base64, 64 bytes>", "ts_us": 1800000000000000,
     "v": 1}

The signature covers `SIGNED_PREFIX` + canonical JSON of {v, seq, hash, ts_us, reason,
key_fingerprint}; the fingerprint is the SHA-256 (hex) of the raw 32-byte public key. A line
proves "the log's event `seq` had hash `hash`", so a log that ends before it, or has another
hash there, is not the log that was signed.

Typical use:

    signer = HeadSigner.load_or_create(data_dir)             # the hub
    append_signed_head(log_path, signer.sign(head, now_us, "periodic"))

    pin = KeyPin.parse(fingerprint_or_pem_file)               # an auditor, key handed over
    verdict = verify_log(log_path, key=pin)                   # whole chain + every signed head
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.logformat import (
    COLUMNS,
    ChainError,
    Head,
    HeadMismatchError,
    canonical_json,
    iter_rows,
    open_readonly,
    stored_hash,
    verify_rows,
)

__all__ = [
    "HEADS_SUFFIX",
    "KEY_FILE",
    "CheckpointError",
    "HeadMismatchError",
    "HeadSigner",
    "HeadsFile",
    "HeadsFileError",
    "KeyFileError",
    "KeyPin",
    "LogVerdict",
    "NoSignedHeadError",
    "SignatureError",
    "SignedHead",
    "TailVerdict",
    "UnknownKeyError",
    "append_signed_head",
    "check_log_extends",
    "heads_path",
    "latest_signed_head",
    "read_signed_heads",
    "verify_log",
    "verify_tail",
]

KEY_FILE = "head-key.pem"  # in the data folder, 0600
# Reasons of heads signed at a hub's start, once the chain up to them was verified (or the
# operator skipped that, logged): the next start verifies from the last of them.
START_REASONS = ("start", "start_unverified")
HEADS_SUFFIX = ".heads"  # beside the log: events.db.heads
SIGNED_PREFIX = b"commandhub signed log head v1\n"
VERSION = 1


class CheckpointError(Exception):
    """A signed head cannot be trusted or used (bad file, bad signature, unknown key)."""


class KeyFileError(CheckpointError):
    """The signing key or a public key handed over cannot be read."""


class HeadsFileError(CheckpointError):
    """A line of the heads file is not a signed head; `line` is its 1-based number."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class SignatureError(HeadsFileError):
    """A line's signature does not verify (edited, or signed by another key than it names)."""


class UnknownKeyError(HeadsFileError):
    """A line is signed by a key other than the pinned one (or the file mixes keys)."""


class NoSignedHeadError(CheckpointError):
    """A key was pinned, but the log has no signed head to check it against."""


def fingerprint_of(public_raw: bytes) -> str:
    """SHA-256 hex of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()


def heads_path(log_path: str | Path) -> Path:
    """The sidecar of a log: `events.db` -> `events.db.heads`."""
    p = Path(log_path)
    return p.with_name(p.name + HEADS_SUFFIX)


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The log's event `seq` had hash `hash` at `ts_us` (hub clock), signed by the key whose
    fingerprint is `key_fingerprint`. `reason`: start, start_unverified, periodic,
    operation_end or stop (see docs/events.md)."""

    seq: int
    hash: str
    ts_us: int
    key_fingerprint: str
    signature: str  # base64 of the 64-byte Ed25519 signature
    public_key: str = ""  # base64 of the raw 32-byte public key
    reason: str = ""

    @property
    def head(self) -> Head:
        return Head(self.seq, self.hash)

    def signed_bytes(self) -> bytes:
        return signed_message(self.seq, self.hash, self.ts_us, self.reason, self.key_fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {"v": VERSION, "seq": self.seq, "hash": self.hash, "ts_us": self.ts_us,
                "reason": self.reason, "key_fingerprint": self.key_fingerprint,
                "public_key": self.public_key, "signature": self.signature}

    def to_line(self) -> str:
        return canonical_json(self.to_dict()) + "\n"

    @classmethod
    def from_dict(cls, d: Any) -> SignedHead:
        """Parse (not verify) one signed head; ValueError says what is wrong."""
        if not isinstance(d, dict) or d.get("v") != VERSION:
            raise ValueError(f"not a signed head of version {VERSION}")
        seq, h, ts = d.get("seq"), d.get("hash"), d.get("ts_us")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq: an integer >= 0")
        if not _is_hex64(h):
            raise ValueError("hash: 64 hex digits")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise ValueError("ts_us: an integer")
        fp, pub, sig, reason = (d.get(k) for k in ("key_fingerprint", "public_key", "signature",
                                                   "reason"))
        if not _is_hex64(fp):
            raise ValueError("key_fingerprint: 64 hex digits")
        if not all(isinstance(x, str) for x in (pub, sig, reason)):
            raise ValueError("public_key, signature, reason: strings")
        return cls(seq, h, ts, fp, sig, pub, reason)  # type: ignore[arg-type]

    def verify(self, pin: KeyPin | None = None) -> None:
        """Check the signature against the public key it carries, that key against its
        fingerprint and, if given, against the pinned key. Raise SignatureError/UnknownKeyError
        (with line 0: the caller knows the line)."""
        try:
            raw = base64.b64decode(self.public_key, validate=True)
            sig = base64.b64decode(self.signature, validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise SignatureError(Path("-"), 0, f"bad public key or signature encoding: {exc}") \
                from exc
        if fingerprint_of(raw) != self.key_fingerprint:
            raise SignatureError(Path("-"), 0, "public key does not match its fingerprint")
        if pin is not None and not pin.matches(raw):
            raise UnknownKeyError(Path("-"), 0, f"signed by key {self.key_fingerprint[:16]}..., "
                                  f"not the pinned key {pin.fingerprint[:16]}...")
        try:
            key.verify(sig, self.signed_bytes())
        except InvalidSignature as exc:
            raise SignatureError(Path("-"), 0, f"signature of head {self.seq} does not verify") \
                from exc


def signed_message(seq: int, head_hash: str, ts_us: int, reason: str, fingerprint: str) -> bytes:
    """The exact bytes an Ed25519 signature of a head covers."""
    body = {"v": VERSION, "seq": seq, "hash": head_hash, "ts_us": ts_us, "reason": reason,
            "key_fingerprint": fingerprint}
    return SIGNED_PREFIX + canonical_json(body).encode("utf-8")


def _is_hex64(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


# -- keys ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeyPin:
    """The key a verifier trusts: a fingerprint, optionally with the public key itself."""

    fingerprint: str
    public_raw: bytes | None = None

    def matches(self, public_raw: bytes) -> bool:
        return fingerprint_of(public_raw) == self.fingerprint

    @classmethod
    def parse(cls, text: str) -> KeyPin:
        """A PEM public key file (or the private key file), or a fingerprint: 64 hex digits,
        optionally written `sha256:...` or with colons. Raise KeyFileError."""
        path = Path(text)
        if path.is_file():
            return cls.from_pem(path.read_bytes(), str(path))
        fp = text.strip().lower().removeprefix("sha256:").replace(":", "")
        if not _is_hex64(fp):
            raise KeyFileError(f"--key {text!r}: neither a PEM key file nor a fingerprint "
                               "(64 hex digits)")
        return cls(fp)

    @classmethod
    def from_pem(cls, pem: bytes, where: str = "key") -> KeyPin:
        key: Any
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(pem, password=None).public_key()
            except (ValueError, TypeError) as exc:
                raise KeyFileError(f"{where}: not a PEM Ed25519 key ({exc})") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{where}: not an Ed25519 key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(fingerprint_of(raw), raw)


class HeadSigner:
    """Signs log heads with the data folder's Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public_raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._fingerprint = fingerprint_of(self._public_raw)

    @classmethod
    def load_or_create(cls, data_dir: str | Path) -> HeadSigner:
        """DATA/head-key.pem, created (mode 0600, never overwritten) on first use."""
        folder = Path(data_dir)
        path = folder / KEY_FILE
        if path.exists():
            return cls.load(path)
        key = Ed25519PrivateKey.generate()
        tmp = folder / f".{KEY_FILE}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # complete or absent, never half-written; never replaced
            except FileExistsError:
                return cls.load(path)  # another process made it first: use theirs
            _fsync_dir(folder)
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot create the signing key: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return cls(key)

    @classmethod
    def load(cls, path: str | Path) -> HeadSigner:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: cannot read the signing key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 private key")
        return cls(key)

    def sign(self, head: Head, ts_us: int, reason: str = "") -> SignedHead:
        fp = self._fingerprint
        sig = self._key.sign(signed_message(head.seq, head.hash, ts_us, reason, fp))
        return SignedHead(head.seq, head.hash, ts_us, fp, base64.b64encode(sig).decode(),
                          base64.b64encode(self._public_raw).decode(), reason)

    def public_key_pem(self) -> str:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def fingerprint(self) -> str:
        return self._fingerprint

    def pin(self) -> KeyPin:
        return KeyPin(self._fingerprint, self._public_raw)


# -- the heads file ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeadsFile:
    """The signed heads of a log, in file (= signing) order, each signature verified.

    `torn_tail`: the file ended in a partial line (a crash while appending); it is ignored.
    """

    path: Path
    heads: tuple[SignedHead, ...]
    torn_tail: bool = False

    @property
    def latest(self) -> SignedHead | None:
        return self.heads[-1] if self.heads else None

    @classmethod
    def load(cls, log_path: str | Path, key: KeyPin | None = None, *,
             last_only: bool = False, since_start: bool = False) -> HeadsFile:
        """Read and verify the sidecar of `log_path` (missing: no heads).

        With `key`, every line must be signed by it (UnknownKeyError); without, all lines must
        be signed by one key (a file mixing keys raises UnknownKeyError). `last_only`: only
        the last complete line; `since_start`: only the lines from the last start head on
        (what the hub's start needs); both are faster than verifying every line.
        """
        path = heads_path(log_path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path, ())
        except OSError as exc:
            raise HeadsFileError(path, 0, f"cannot read: {exc}") from exc
        lines = data.split(b"\n")
        torn = lines[-1] != b""
        lines = lines[:-1]
        parsed = [(n, _parse_line(path, n, raw)) for n, raw in enumerate(lines, 1)]
        if last_only:
            parsed = parsed[-1:]
        elif since_start:
            starts = [i for i, (_, h) in enumerate(parsed) if h.reason in START_REASONS]
            parsed = parsed[starts[-1]:] if starts else parsed
        heads: list[SignedHead] = []
        first_fp: str | None = None
        for n, head in parsed:
            try:
                head.verify(key)
            except HeadsFileError as exc:
                raise type(exc)(path, n, exc.reason) from exc
            if key is None:
                if first_fp is None:
                    first_fp = head.key_fingerprint
                elif head.key_fingerprint != first_fp:
                    raise UnknownKeyError(path, n, "the file mixes signing keys "
                                          f"({first_fp[:16]}..., {head.key_fingerprint[:16]}...): "
                                          "pin the right one with --key")
            heads.append(head)
        return cls(path, tuple(heads), torn)


def _parse_line(path: Path, n: int, raw: bytes) -> SignedHead:
    try:
        return SignedHead.from_dict(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise HeadsFileError(path, n, f"not a signed head: {exc}") from exc


def read_signed_heads(log_path: str | Path, key: KeyPin | None = None) -> list[SignedHead]:
    """Every signed head of a log, oldest first, each signature verified (see HeadsFile.load)."""
    return list(HeadsFile.load(log_path, key).heads)


def latest_signed_head(log_path: str | Path, key: KeyPin | None = None) -> SignedHead | None:
    """The last signed head (only that line is verified), or None if there is none."""
    return HeadsFile.load(log_path, key, last_only=True).latest


def append_signed_head(log_path: str | Path, head: SignedHead) -> None:
    """Append one signed head to the sidecar and fsync it. A partial last line left by a crash
    is cut off first, so the file stays one complete signed head per line."""
    path = heads_path(log_path)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _cut_torn_tail(fd)
        os.lseek(fd, 0, os.SEEK_END)
        line = head.to_line().encode("utf-8")
        if os.write(fd, line) != len(line):
            raise OSError(f"{path}: short write")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _cut_torn_tail(fd: int, window: int = 65536) -> None:
    """Truncate a partial last line (no newline) back to the end of the last complete one."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    start = max(0, size - window)
    os.lseek(fd, start, os.SEEK_SET)
    tail = os.read(fd, size - start)
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    if cut >= 0:
        os.ftruncate(fd, start + cut + 1)
    elif start == 0:
        os.ftruncate(fd, 0)  # only a partial first line
    # else: a "line" longer than the window is not ours; the reader reports it


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- checking a log against heads ---------------------------------------------------------------

Rows = Iterable[tuple[Any, ...]]


def check_log_extends(log: str | Path | sqlite3.Connection | Rows, head: Head | SignedHead) -> None:
    """Raise HeadMismatchError unless the log reaches `head.seq` with `head.hash` there.

    Given a path or a connection, only the event at `head.seq` is read (its content must
    hash to its stored hash): fast, but it says nothing about the chain before it; use
    `verify_log` for that. Given rows (oldest first, from seq 1), the whole chain is verified
    too (ChainError at the first bad seq).
    """
    want = head.head if isinstance(head, SignedHead) else head
    if want.seq == 0:
        return
    if isinstance(log, str | Path):
        conn = open_readonly(log)
        try:
            _check_row(conn, want)
        finally:
            conn.close()
    elif isinstance(log, sqlite3.Connection):
        _check_row(log, want)
    else:
        verify_rows(log, checkpoints=[want])


def _check_row(conn: sqlite3.Connection, want: Head) -> None:
    row = conn.execute(f"SELECT {COLUMNS} FROM events WHERE seq = ?", (want.seq,)).fetchone()
    if row is None:
        last = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        raise HeadMismatchError(last + 1, f"log ends at seq {last}, before the checkpoint seq "
                                f"{want.seq} (truncated)", want, truncated=True)
    seq, ts, mono, op, opk, role, dept, kind, payload, prev, h = row
    if h != want.hash:
        raise HeadMismatchError(seq, f"hash differs from the checkpoint {want}", want,
                                truncated=False)
    if stored_hash(prev, seq, ts, mono, op, opk, role, dept, kind, payload) != h:
        raise ChainError(seq, "content does not match its hash (edited or reordered)")


@dataclass(frozen=True)
class LogVerdict:
    """What `verify_log` established: the whole chain up to `head` holds and extends every
    signed head (`latest` the newest of them; `heads_checked` how many) and the `--head`."""

    head: Head
    latest: SignedHead | None
    heads_checked: int
    key_fingerprint: str | None
    key_pinned: bool
    torn_tail: bool


def verify_log(log_path: str | Path, *, key: KeyPin | None = None,
               head: Head | None = None) -> LogVerdict:
    """Verify the whole chain and every signed head of the sidecar, plus `head` if given.

    Raise ChainError (the chain is broken: exit 1 in the CLI), HeadMismatchError (the log
    ends before a signed head or `head`, or differs from it), CheckpointError (the heads
    cannot be trusted; NoSignedHeadError if `key` is pinned but nothing was signed), and for
    a log that ends with events appended after the hub's final (`stop`) signed head,
    HeadMismatchError too: the hub writes nothing after that signature.
    """
    heads = HeadsFile.load(log_path, key)
    if key is not None and not heads.heads:
        raise NoSignedHeadError(f"{heads.path}: no signed head to check the pinned key against")
    conn = open_readonly(log_path)
    try:
        got = verify_rows(iter_rows(conn), head, checkpoints=[h.head for h in heads.heads])
    finally:
        conn.close()
    latest = heads.latest
    if latest is not None:
        _check_sealed(latest, got)
    fp = latest.key_fingerprint if latest is not None else (key.fingerprint if key else None)
    return LogVerdict(got, latest, len(heads.heads), fp, key is not None, heads.torn_tail)


def _check_sealed(latest: SignedHead, tail: Head) -> None:
    """A hub signs `stop` as its very last act: events after such a head were not written by
    a hub (a hub that starts again signs `start` first)."""
    if latest.reason == "stop" and tail.seq > latest.seq:
        raise HeadMismatchError(latest.seq + 1, f"{tail.seq - latest.seq} event(s) after the "
                                f"hub's final signed head {latest.head} (signed at stop): "
                                "appended by something other than the hub", latest.head,
                                truncated=False)


@dataclass(frozen=True)
class TailVerdict:
    """What `verify_tail` established: events `checkpoint.seq`..`head.seq` verify and extend
    the `heads_checked` signed heads signed since; `latest` is the newest signed head."""

    checkpoint: SignedHead | None  # the last start head verified from; None: from genesis
    head: Head
    events: int
    heads_checked: int
    latest: SignedHead | None


def verify_tail(conn: sqlite3.Connection, log_path: str | Path,
                key: KeyPin | None = None) -> TailVerdict:
    """The hub's start-up check, on an open connection: verify the chain from the last start
    head (the point up to which the previous start verified it; genesis if none) to the
    tail, and that it extends every head signed since (periodic, operation end, stop).
    Raise ChainError/HeadMismatchError/CheckpointError.

    Events before that start head are not re-read: a content edit there that leaves the
    stored hashes alone is only found by `verify_log`; one that re-hashes the chain changes
    the hash at the start head and is found here.
    """
    heads = HeadsFile.load(log_path, key, since_start=True).heads
    cp = heads[0] if heads and heads[0].reason in START_REASONS else None
    later = heads[1:] if cp is not None else heads
    start = cp.head if cp is not None else None
    rows = iter_rows(conn, after=start.seq - 1 if start is not None else 0)
    got = verify_rows(rows, start=start, checkpoints=[h.head for h in later])
    latest = heads[-1] if heads else None
    if latest is not None:
        _check_sealed(latest, got)
    first = start.seq if start is not None else 1
    return TailVerdict(cp, got, max(0, got.seq - first + 1), len(heads), latest)


def describe(head: SignedHead) -> dict[str, Any]:
    """A signed head as an event payload (`log.head_signed`)."""
    return {"seq": head.seq, "hash": head.hash, "ts_us": head.ts_us, "reason": head.reason,
            "key_fingerprint": head.key_fingerprint, "signature": head.signature}

"""`commandhub record verify`: every recording checked against the log's `media.recording` entries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import av

from hub.logformat import ChainError, LogFormatError, read_events, verify_file
from media.record import sha256_file

LOG_NAME = "events.db"
EXTENSIONS = (".webm", ".mkv")

# Matroska element ids (EBML): https://www.matroska.org/technical/elements.html
SEGMENT, CUES, CUE_POINT = 0x18538067, 0x1C53BB6B, 0xBB


class VerifyError(Exception):
    """The folder is not a data folder (or a recordings folder next to its log)."""


@dataclass
class FileReport:
    """One recording: what the log says, what the file holds, and what does not match."""

    path: str  # relative to the data folder when inside it
    status: str = "ok"  # ok | problem
    problems: list[str] = field(default_factory=list)
    seq: int | None = None  # the media.recording event
    session: str | None = None
    part: int | None = None
    codec: str | None = None  # as read from the file
    frames: int | None = None  # video packets in the file
    duration_s: float | None = None  # the file's own duration
    index: int | None = None  # key frames in its Cues (seek index); 0: none
    size: int | None = None
    sha256: str | None = None

    def problem(self, text: str) -> None:
        self.status = "problem"
        self.problems.append(text)


@dataclass
class Report:
    """The whole check: the log's chain, then one entry per file (logged or found)."""

    data_dir: str
    log: str
    log_events: int = 0
    log_problem: str | None = None
    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.log_problem is None and all(f.status == "ok" for f in self.files)

    def counts(self) -> dict[str, int]:
        out = {"files": len(self.files), "ok": sum(f.status == "ok" for f in self.files)}
        for f in self.files:
            for p in f.problems:
                key = p.split(":")[0]
                out[key] = out.get(key, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "data_dir": self.data_dir, "log": self.log,
                "log_events": self.log_events, "log_problem": self.log_problem,
                "counts": self.counts(), "files": [asdict(f) for f in self.files]}


def locate(folder: Path) -> tuple[Path, Path]:
    """(data folder, recordings folder) for a data folder or a recordings folder beside the log."""
    if (folder / LOG_NAME).is_file():
        return folder, folder / "recordings"
    if (folder.parent / LOG_NAME).is_file():
        return folder.parent, folder
    raise VerifyError(f"{folder}: no {LOG_NAME} here or in its parent (give the data folder, "
                      "or its recordings folder)")


def verify_recordings(folder: Path | str) -> Report:
    """Check the log's hash chain, then every logged and every found recording."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VerifyError(f"{folder}: not a folder")
    data, recordings = locate(folder)
    log = data / LOG_NAME
    report = Report(str(data), str(log))
    try:
        report.log_events = verify_file(log).seq
    except ChainError as exc:
        report.log_problem = f"the log's hash chain is broken: {exc}"
    except LogFormatError as exc:
        raise VerifyError(str(exc)) from exc
    logged: dict[Path, tuple[int, dict[str, Any]]] = {}
    for ev in read_events(log):
        if ev.kind == "media.recording" and isinstance(ev.payload.get("path"), str):
            logged[_resolve(data, recordings, ev.payload["path"])] = (ev.seq, dict(ev.payload))
    found = {p.resolve() for d in {recordings, *(p.parent for p in logged)} if d.is_dir()
             for p in d.iterdir() if p.suffix in EXTENSIONS and p.is_file()}
    for path in sorted(set(logged) | found):
        entry = logged.get(path)
        report.files.append(_check(data, path, entry))
    return report


def _resolve(data: Path, recordings: Path, logged_path: str) -> Path:
    """A logged path (relative to the data folder; absolute in older logs) on this machine."""
    p = Path(logged_path)
    if not p.is_absolute():
        return (data / p).resolve()
    if not p.exists() and (recordings / p.name).exists():
        return (recordings / p.name).resolve()  # an archived data folder, moved since
    return p.resolve()


def _check(data: Path, path: Path, entry: tuple[int, dict[str, Any]] | None) -> FileReport:
    rel = str(path.relative_to(data.resolve())) if path.is_relative_to(data.resolve()) else str(path)
    r = FileReport(rel)
    payload: dict[str, Any] = {}
    if entry is not None:
        r.seq, payload = entry[0], entry[1]
        r.session, r.part = payload.get("session"), payload.get("part")
    if not path.is_file():
        r.problem(f"missing: the log (seq {r.seq}) names a file that is not there")
        return r
    if entry is None:
        r.problem("unlogged: no media.recording entry in the log names this file")
    r.size, r.sha256 = path.stat().st_size, sha256_file(path)
    if entry is not None:
        if r.sha256 != payload.get("sha256"):
            r.problem(f"hash mismatch: sha256 {r.sha256[:16]}... differs from the log's (seq {r.seq})")
        elif "size" in payload and r.size != payload["size"]:
            r.problem(f"size mismatch: {r.size} bytes, the log says {payload['size']}")
    try:
        r.codec, r.frames, r.duration_s = read_media(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        r.problem(f"unreadable: {exc}")
        return r
    r.index = cue_points(path)
    if entry is not None and r.status == "ok":
        if payload.get("codec") and payload["codec"] != r.codec:
            r.problem(f"codec mismatch: the file holds {r.codec}, the log says {payload['codec']}")
        if "frames" in payload and payload["frames"] != r.frames:
            r.problem(f"frames mismatch: {r.frames} in the file, the log says {payload['frames']}")
        if not r.index:
            r.problem("no index: the file has no Cues (it was not closed properly)")
    return r


def read_media(path: Path) -> tuple[str, int, float]:
    """(codec, video frames, duration in s) read with PyAV (demuxed, not decoded)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        codec = str(stream.codec_context.name).upper()
        frames, end = 0, 0.0
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None and packet.time_base is not None:
                frames += 1
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        duration = container.duration / 1e6 if container.duration else end
    return codec, frames, round(duration, 3)


def cue_points(path: Path) -> int:
    """Number of CuePoints (key frames the file's own index lets a player seek to); 0: no Cues."""
    with path.open("rb") as f:
        ident, size = _element(f)
        f.seek(size, 1)  # the EBML header
        ident, size = _element(f)
        if ident != SEGMENT:
            return 0
        end = f.tell() + size if size >= 0 else None
        while end is None or f.tell() < end:
            try:
                ident, size = _element(f)
            except EOFError:
                return 0
            if size < 0:
                return 0  # an element of unknown size (a live stream): no index follows
            if ident == CUES:
                body, points, pos = f.read(size), 0, 0
                while pos < len(body):
                    child, length, pos = _parse(body, pos)
                    points += child == CUE_POINT
                    pos += length
                return points
            f.seek(size, 1)
    return 0


def _vint(first: int) -> int:
    """Length in bytes of an EBML variable-size integer from its first byte."""
    for n in range(8):
        if first & (0x80 >> n):
            return n + 1
    raise ValueError("bad EBML integer")


def _element(f: IO[bytes]) -> tuple[int, int]:
    head = f.read(1)
    if not head:
        raise EOFError
    n = _vint(head[0])
    ident = int.from_bytes(head + f.read(n - 1), "big")
    sb = f.read(1)
    if not sb:
        raise EOFError
    m = _vint(sb[0])
    raw = sb + f.read(m - 1)
    value = int.from_bytes(raw, "big") & ((1 << (7 * m)) - 1)
    return ident, -1 if value == (1 << (7 * m)) - 1 else value


def _parse(body: bytes, pos: int) -> tuple[int, int, int]:
    """(id, size, offset of its data) of the element at `pos` of an in-memory master element."""
    n = _vint(body[pos])
    ident = int.from_bytes(body[pos:pos + n], "big")
    pos += n
    m = _vint(body[pos])
    size = int.from_bytes(body[pos:pos + m], "big") & ((1 << (7 * m)) - 1)
    return ident, size, pos + m

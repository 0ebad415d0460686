"""YAML documents that remember where each value came from, for file:line:column errors.

Pure (PyYAML and the standard library only): the roster, rubrics and scenarios all load
through here, so every config error names the file, the line, the column and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml

Path_ = tuple[str | int, ...]


class YamlSourceError(Exception):
    """A config file is malformed; the message reads `file:line:col: key: why`."""

    def __init__(self, file: str, line: int, col: int, key: str, why: str) -> None:
        self.file, self.line, self.col, self.key, self.why = file, line, col, key, why
        where = f"{file}:{line}:{col}"
        super().__init__(f"{where}: {key}: {why}" if key else f"{where}: {why}")

    @classmethod
    def of(cls, exc: YamlSourceError) -> Self:
        """The same error as this subclass (e.g. a ScenarioError from a parse error)."""
        return cls(exc.file, exc.line, exc.col, exc.key, exc.why)


def key_path(path: Path_) -> str:
    """`('sections', 0, 'points')` -> `sections[0].points`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Doc:
    """A loaded YAML document: plain Python data plus the source position of every node."""

    data: Any
    file: str
    marks: dict[Path_, tuple[int, int]]

    def error(self, path: Path_, why: str) -> YamlSourceError:
        """An error pointing at `path` (or its nearest ancestor that has a position)."""
        p = tuple(path)
        while p and p not in self.marks:
            p = p[:-1]
        line, col = self.marks.get(p, (1, 1))
        return YamlSourceError(self.file, line, col, key_path(path), why)


def _convert(node: yaml.Node, path: Path_, marks: dict[Path_, tuple[int, int]], doc: str) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = str(knode.value) if isinstance(knode, yaml.ScalarNode) else str(knode.start_mark)
            line, col = knode.start_mark.line + 1, knode.start_mark.column + 1
            if key in out:
                raise YamlSourceError(doc, line, col, key_path((*path, key)), "duplicate key")
            out[key] = _convert(vnode, (*path, key), marks, doc)
            marks[(*path, key)] = (line, col)  # errors about a key point at the key itself
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, i), marks, doc) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


class Checker:
    """Shared checks for readers of a Doc: each failure names the value's file:line:col."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def err(self, path: Path_, why: str) -> YamlSourceError:
        return self.doc.error(path, why)

    def mapping(self, value: Any, path: Path_, keys: set[str]) -> Mapping[str, Any]:
        """`value` must be a mapping whose keys are all in `keys`."""
        if not isinstance(value, Mapping):
            raise self.err(path, "must be a mapping")
        for k in value:
            if k not in keys:
                raise self.err((*path, k), f"unknown key (expected one of {', '.join(sorted(keys))})")
        return value

    def duration(self, value: Any, path: Path_, most_s: float, most_text: str) -> float:
        """A duration (`90s`, `5m`, `1h`, or seconds) of at most `most_s`."""
        try:
            secs = parse_duration(value)
        except ValueError as exc:
            raise self.err(path, str(exc)) from exc
        if secs > most_s:
            raise self.err(path, f"at most {most_text}")
        return secs


def load_text(text: str, file: str) -> Doc:
    """Parse YAML text; syntax errors become YamlSourceError with the parser's position."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSourceError(file, line, col, "", f"YAML syntax: {exc.problem}") from exc
    marks: dict[Path_, tuple[int, int]] = {}
    if node is None:
        raise YamlSourceError(file, 1, 1, "", "empty document")
    return Doc(_convert(node, (), marks, file), file, marks)


def load_file(path: str | Path) -> Doc:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSourceError(str(p), 0, 0, "", f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise YamlSourceError(str(p), 1, 1, "", f"not UTF-8 text: {exc}") from exc
    return load_text(text, str(p))


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: Any) -> float:
    """`90s`, `5m`, `1h`, `1h30m`, or a bare number of seconds -> seconds (float, >= 0).

    Raise ValueError with a readable reason otherwise.
    """
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: write e.g. 90s, 5m, 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"bad duration {value!r}: must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + s
    raise ValueError(f"bad duration {value!r}: write e.g. 90s, 5m, 1h")

"""Request schemas: each message type's fields, their types and bounds; anything else is refused.

`Schema(...).validate(msg)` returns the fields with defaults filled in, or raises BadRequest
naming the field. A JSON `null` counts as absent. The envelope (`v`, `id`, `type`) is the
dispatcher's business, not the schema's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hub.api.errors import BadRequest

ENVELOPE = frozenset({"v", "id", "type"})


class FieldType(Protocol):
    def check(self, value: Any, name: str) -> Any:
        """The value, normalised; raise BadRequest naming `name` if it does not fit."""

    def describe(self) -> str:
        """A few words for the protocol table."""


@dataclass(frozen=True)
class Text:
    """A string of at most `max_len` characters; `nonblank`: not empty or only spaces."""

    max_len: int
    nonblank: bool = False
    pattern: str | None = None

    def check(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise BadRequest(f"{name}: a string")
        if len(value) > self.max_len:
            raise BadRequest(f"{name}: at most {self.max_len} characters")
        if self.nonblank and not value.strip():
            raise BadRequest(f"{name}: must not be empty")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise BadRequest(f"{name}: does not match {self.pattern}")
        return value

    def describe(self) -> str:
        return f"string ≤{self.max_len}"


@dataclass(frozen=True)
class Int:
    min: int | None = None
    max: int | None = None

    def check(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{name}: an integer")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise BadRequest(f"{name}: an integer in [{self.min}, {self.max}]")
        return value

    def describe(self) -> str:
        return "integer" + (f" ≥{self.min}" if self.min is not None else "")


@dataclass(frozen=True)
class Number:
    """A finite number in (above, max] or [min, max]."""

    min: float | None = None
    max: float | None = None
    above: float | None = None

    def check(self, value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{name}: a number")
        v = float(value)
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max) \
                or (self.above is not None and v <= self.above):
            low = f"({self.above}" if self.above is not None else f"[{self.min}"
            raise BadRequest(f"{name}: a number in {low}, {self.max}]")
        return v

    def describe(self) -> str:
        if self.above is not None:
            return f"number in ({self.above:g}, {self.max:g}]" if self.max is not None else "number"
        if self.min is not None:
            return f"number ≥{self.min:g}"
        return "number"


@dataclass(frozen=True)
class Flag:
    def check(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise BadRequest(f"{name}: true or false")
        return value

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]

    def check(self, value: Any, name: str) -> str:
        if value not in self.values:
            raise BadRequest(f"{name}: one of {', '.join(self.values)}")
        return str(value)

    def describe(self) -> str:
        return "/".join(self.values)


@dataclass(frozen=True)
class Items:
    """A list of `of`, at most `max_items` long."""

    of: FieldType
    max_items: int
    min_items: int = 0

    def check(self, value: Any, name: str) -> list[Any]:
        if not isinstance(value, list):
            raise BadRequest(f"{name}: a list")
        if not self.min_items <= len(value) <= self.max_items:
            raise BadRequest(f"{name}: {self.min_items} to {self.max_items} items")
        return [self.of.check(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def describe(self) -> str:
        return f"list of {self.of.describe()}"


@dataclass(frozen=True)
class OneOrMany:
    """A list of `of`, or one string of comma-separated values (`"fire,police"`)."""

    of: Text
    max_items: int

    def check(self, value: Any, name: str) -> list[str]:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list) or not value:
            raise BadRequest(f"{name}: a non-empty list (or comma-separated string)")
        return Items(self.of, self.max_items, 1).check(value, name)

    def describe(self) -> str:
        return f"list of {self.of.describe()} (or a,b)"


@dataclass(frozen=True)
class MapOf:
    """An object whose keys are `keys` (a Choice, or ids) and whose values are `values`."""

    keys: FieldType
    values: FieldType

    def check(self, value: Any, name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BadRequest(f"{name}: an object")
        return {self.keys.check(k, f"{name} key"): self.values.check(v, f"{name}.{k}")
                for k, v in value.items()}

    def describe(self) -> str:
        return f"{{{self.keys.describe()}: {self.values.describe()}}}"


@dataclass(frozen=True)
class Param:
    """One field of a request."""

    type: FieldType
    required: bool = False
    default: Any = None


class Schema:
    """The fields one message type takes; unknown fields are refused."""

    def __init__(self, **params: Param) -> None:
        self.params: dict[str, Param] = params

    def validate(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        extra = sorted(k for k in msg if k not in self.params and k not in ENVELOPE)
        if extra:
            raise BadRequest(f"{extra[0]}: not a field of {msg.get('type')} "
                             f"(fields: {', '.join(self.params) or 'none'})")
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            value = msg.get(name)
            if value is None:
                if p.required:
                    raise BadRequest(f"{name}: required")
                out[name] = p.default
            else:
                out[name] = p.type.check(value, name)
        return out

    def describe(self) -> str:
        """`name*` (required) `: type`, for the protocol table."""
        return ", ".join(f"`{n}{'*' if p.required else ''}` {p.type.describe()}"
                         for n, p in self.params.items())


NO_FIELDS = Schema()

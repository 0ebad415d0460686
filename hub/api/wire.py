"""Strict JSON for requests: no NaN/Infinity (nor numbers that overflow to them), nesting at most 32."""

from __future__ import annotations

import json
import math
from typing import Any

from hub.api.errors import HubError

MAX_DEPTH = 32


class WireError(HubError):
    """A request body or frame that is not acceptable JSON (`bad_json` or `bad_request`)."""


def _no_constant(name: str) -> Any:
    raise WireError("bad_request", f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireError("bad_request", f"number {text[:40]} is out of range")
    return value


def decode(text: str | bytes) -> Any:
    """Parse one request; raise WireError naming what is wrong."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except WireError:
        raise
    except RecursionError:
        raise WireError("bad_request", f"JSON nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise WireError("bad_json", str(exc)) from None
    if depth(value) > MAX_DEPTH:
        raise WireError("bad_request", f"JSON nested deeper than {MAX_DEPTH}")
    return value


def depth(value: Any) -> int:
    """How deep objects and arrays nest in `value` (a scalar is 0), iteratively."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        d += 1
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((c, d) for c in children)
    return deepest

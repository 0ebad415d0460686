"""Curves that turn a measured value into a fraction 0..1 (linear, steps, per_unit), vectorised."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class Linear:
    """1 at `full_at`, 0 at `zero_at`, a straight line between (either direction)."""

    full_at: float
    zero_at: float

    @property
    def better(self) -> Direction:
        return "lower" if self.full_at < self.zero_at else "higher"

    def __call__(self, x: F64) -> F64:
        span = self.zero_at - self.full_at
        out = np.clip((self.zero_at - x) / span, 0.0, 1.0)
        return np.asarray(np.where(np.isnan(x), 0.0, out), np.float64)


@dataclass(frozen=True)
class Steps:
    """Thresholds with fractions: lower-is-better uses `upto` (value <= t), higher `atleast`."""

    thresholds: tuple[tuple[float, float], ...]  # (threshold, fraction), in the order checked
    otherwise: float
    better: Direction

    def __call__(self, x: F64) -> F64:
        out = np.full(x.shape, self.otherwise, np.float64)
        done = np.isnan(x)
        for t, frac in self.thresholds:
            hit = (x <= t) if self.better == "lower" else (x >= t)
            hit &= ~done
            out[hit] = frac
            done |= hit
        out[np.isnan(x)] = 0.0
        return out


@dataclass(frozen=True)
class PerUnit:
    """1 up to `full_at`, then minus `minus` for each started `unit` beyond it, floor 0."""

    full_at: float
    unit: float
    minus: float

    better: Direction = "lower"

    def __call__(self, x: F64) -> F64:
        over = np.maximum(x - self.full_at, 0.0)
        units = np.ceil(np.round(over / self.unit, 9))
        out = np.clip(1.0 - self.minus * units, 0.0, 1.0)
        return np.asarray(np.where(np.isnan(x), 0.0, out), np.float64)


Curve = Linear | Steps | PerUnit


def apply(curve: Curve, values: F64) -> F64:
    """Fractions for `values` (NaN, meaning no value, gives 0)."""
    return curve(np.asarray(values, np.float64))


def zero_point(curve: Curve) -> float | None:
    """For lower-is-better curves, a value that scores 0 (or the floor): where a missing value goes.

    None for higher-is-better curves.
    """
    if curve.better != "lower":
        return None
    if isinstance(curve, Linear):
        return curve.zero_at
    if isinstance(curve, PerUnit):
        return curve.full_at + curve.unit * math.ceil(1.0 / curve.minus)
    last = curve.thresholds[-1][0] if curve.thresholds else 0.0
    return last + 1.0

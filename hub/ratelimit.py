"""TokenBucket: a rate limit driven by the caller's clock readings."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `take(now)` spends one if it can."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last: float | None = None

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

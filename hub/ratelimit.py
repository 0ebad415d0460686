"""Rate limits driven by the caller's clock readings: one TokenBucket, or one per key (token)."""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `take(now)` spends one if it can."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last: float | None = None

    def _refill(self, now: float) -> None:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def wait_s(self, now: float, cost: float = 1.0) -> float:
        """Seconds until `take(cost)` can succeed (0 if it can now)."""
        self._refill(now)
        return max(0.0, (cost - self.tokens) / self.rate)


class KeyedLimiter:
    """A TokenBucket per key (a token's jti), the `max_keys` most recently used kept."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def wait_s(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait_s(now)

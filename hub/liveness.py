"""WebSocket liveness: the hub pings every second; a peer is judged gone after three unanswered.

aiohttp's own heartbeat closes a connection whose pong is 1 s late (half its interval): on a
loaded machine a healthy department was cut off and replayed its open commands. Here any
frame from the peer answers, and a peer (or hub) that stalls for up to 3 s keeps its session,
while a dead one is still closed within 4 s of its last frame.
"""

from __future__ import annotations

PING_INTERVAL_S = 1.0
DEAD_AFTER_PINGS = 3


class Liveness:
    """Counts the hub's pings since the peer last sent anything (a pong or any other frame)."""

    def __init__(self, dead_after: int = DEAD_AFTER_PINGS) -> None:
        self.dead_after = dead_after
        self.unanswered = 0

    def heard(self) -> None:
        """The peer sent a frame."""
        self.unanswered = 0

    def due(self) -> bool:
        """At a ping tick: False if the peer is gone (`dead_after` pings unanswered), else
        count the ping about to be sent and return True."""
        if self.unanswered >= self.dead_after:
            return False
        self.unanswered += 1
        return True

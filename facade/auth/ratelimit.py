"""Per-client request rate limits: a sliding one-minute window in memory.

A client over its limit gets 429 with the seconds until a slot frees up. The window is per
process; a scaled-out deployment would move it to a shared store.
"""

from __future__ import annotations

from collections import defaultdict, deque

from facade.clock import Clock
from facade.errors import RateLimited

WINDOW_SECONDS = 60.0


class ClientRateLimits:
    def __init__(self, clock: Clock, per_minute: int):
        self._clock = clock
        self.per_minute = per_minute
        self._seen: defaultdict[str, deque[float]] = defaultdict(deque)

    def check(self, client_id: str) -> None:
        """Count one request of this client, or raise RateLimited."""
        if self.per_minute <= 0:
            return
        now = self._clock.monotonic()
        window = self._seen[client_id]
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        if len(window) >= self.per_minute:
            raise RateLimited(WINDOW_SECONDS - (now - window[0]))
        window.append(now)

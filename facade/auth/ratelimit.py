"""Per-client request rate limits: a sliding one-minute window.

A client over its limit gets 429 with the seconds until a slot frees up. One process keeps
the window in memory; on a database several processes share (PostgreSQL) it is counted
there, so the limit holds across replicas.
"""

from __future__ import annotations

from collections import defaultdict, deque

from facade.clock import Clock
from facade.errors import RateLimited
from facade.store.ledger import Ledger

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


class SharedRateLimits(ClientRateLimits):
    """The same limit, counted in the database (facade/store/ledger.py), so a client's
    requests to every replica of a deployment count against one window."""

    def __init__(self, ledger: Ledger, clock: Clock, per_minute: int):
        super().__init__(clock, per_minute)
        self._ledger = ledger

    def check(self, client_id: str) -> None:
        if self.per_minute <= 0:
            return
        now = self._clock.now().timestamp()
        with self._ledger.locked(f"client:{client_id}") as key:
            window = key.since(now - WINDOW_SECONDS, inclusive=False)
            if window.count >= self.per_minute and window.oldest is not None:
                raise RateLimited(WINDOW_SECONDS - (now - window.oldest))
            key.add(now)
            key.forget_before(now - WINDOW_SECONDS)

"""A bounded, time-limited cache of vendor responses, keyed by the exact request URL.

It lets the next page of a FHIR search reuse the vendor page it already fetched, and lets
practice-wide lookups (doctors, offices) be fetched once for many requests. It never
outlives its TTL and never grows past its size bound.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from facade.clock import Clock


class ResponseCache:
    def __init__(self, clock: Clock, max_entries: int = 512):
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, value = entry
        if self._clock.monotonic() >= expires:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (self._clock.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop one response, so the next request for it asks the vendor (a reader that must
        see the vendor as it is now, such as the mirror's sync)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

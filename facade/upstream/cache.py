"""A bounded, time-limited cache of vendor responses, keyed by the exact request URL.

It lets the next page of a FHIR search reuse the vendor page it already fetched, and lets
practice-wide lookups (doctors, offices) be fetched once for many requests. It never
outlives its TTL and never grows past its size bound. A request that asks for the vendor as
it is now (`Cache-Control: no-cache`) reads, within `fresh_answers()`, only what was kept
after it began: its own repeated asks are answered once, nothing older is.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from facade.clock import Clock

#: Within `fresh_answers`: the number of the first entry kept that may be read.
_fresh_since: ContextVar[int | None] = ContextVar("fresh_since", default=None)


class ResponseCache:
    def __init__(self, clock: Clock, max_entries: int = 512):
        self._clock = clock
        self._max_entries = max_entries
        #: key → (the entry's number, expiry in monotonic seconds, value).
        self._entries: OrderedDict[str, tuple[int, float, Any]] = OrderedDict()
        self._kept = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        kept, expires, value = entry
        if self._clock.monotonic() >= expires:
            del self._entries[key]
            self.misses += 1
            return None
        fresh_since = _fresh_since.get()
        if fresh_since is not None and kept < fresh_since:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        self._kept += 1
        self._entries[key] = (self._kept, self._clock.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop one response, so the next request for it asks the vendor (a reader that must
        see the vendor as it is now, such as the mirror's sync)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    @contextmanager
    def fresh_answers(self) -> Iterator[None]:
        """Within the block (and the tasks it awaits), only what is kept from now on is read."""
        token = _fresh_since.set(self._kept + 1)
        try:
            yield
        finally:
            _fresh_since.reset(token)

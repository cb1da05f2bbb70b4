"""DrChrono's request quota: an hourly budget per API app (reset on the hour) and a burst limit.

It only counts; the app decides which calls are charged (authenticated /api calls that were
not throttled). A test can also close an app's throttle for N seconds (`hold`), as any of
DRF's throttle windows would: every call until then is answered 429 with the time left.
It must never read the wall clock: every method takes `now`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

BURST_WINDOW_SECONDS = 1.0


def throttled_detail(wait_seconds: float) -> str:
    """The body text DRF prints, e.g. `Request was throttled. Expected available in 3.0 seconds.`"""
    return f"Request was throttled. Expected available in {float(math.ceil(wait_seconds))} seconds."


def retry_after(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))


@dataclass
class ApiThrottle:
    """Counts charged calls per client_id; `wait` says how long a new call must wait (or None)."""

    hourly_limit: int
    burst_per_second: int | None
    hourly_counts: dict[tuple[str, datetime], int] = field(default_factory=dict)
    recent_calls: dict[str, deque[datetime]] = field(default_factory=dict)
    held_until: dict[str, datetime] = field(default_factory=dict)

    def wait(self, client_id: str, now: datetime) -> float | None:
        """Seconds until the app may call again (the longest of its closed windows), or None."""
        waits: list[float] = []
        held = self.held_until.get(client_id)
        if held is not None and now < held:
            waits.append((held - now).total_seconds())
        hour = _hour_start(now)
        if self.hourly_counts.get((client_id, hour), 0) >= self.hourly_limit:
            waits.append((hour + timedelta(hours=1) - now).total_seconds())
        if self.burst_per_second is not None:
            recent = self._recent(client_id, now)
            if len(recent) >= self.burst_per_second:
                # Like DRF's SimpleRateThrottle: free again when the oldest call leaves the window.
                waits.append(BURST_WINDOW_SECONDS - (now - recent[0]).total_seconds())
        return max(waits) if waits else None

    def hold(self, client_id: str, now: datetime, seconds: float) -> None:
        """Throttle the app for `seconds` from `now` (a short vendor throttle, e.g. 7 s)."""
        self.held_until[client_id] = now + timedelta(seconds=seconds)

    def charge(self, client_id: str, now: datetime) -> None:
        key = (client_id, _hour_start(now))
        self.hourly_counts[key] = self.hourly_counts.get(key, 0) + 1
        self._recent(client_id, now).append(now)

    def used_this_hour(self, client_id: str, now: datetime) -> int:
        return self.hourly_counts.get((client_id, _hour_start(now)), 0)

    def _recent(self, client_id: str, now: datetime) -> deque[datetime]:
        recent = self.recent_calls.setdefault(client_id, deque())
        while recent and (now - recent[0]).total_seconds() >= BURST_WINDOW_SECONDS:
            recent.popleft()
        return recent


def _hour_start(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)

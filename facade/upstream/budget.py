"""The vendor call budget: how many calls are left this hour, pacing, and who spent them.

A budget never lets a call go out that it knows the vendor would refuse: when facade's own
hourly count is spent, until the hour turns; when the vendor answered 429, until the moment
it named (and then it asks again). Callers wait (up to their limit) or get UpstreamThrottled
with the time they really have to wait, and a message saying whose limit it is.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from facade.clock import Clock
from facade.errors import UpstreamThrottled
from facade.store.ledger import Ledger, Tally

_THROTTLE_SECONDS = re.compile(r"available in (\d+(?:\.\d+)?) second")


def parse_throttle_wait(detail: str) -> float | None:
    """Seconds to wait, from DRF's 'Request was throttled. Expected available in N seconds.'"""
    match = _THROTTLE_SECONDS.search(detail)
    return float(match.group(1)) if match else None


class WaitCause(StrEnum):
    """Why the next vendor call cannot go out now."""

    NONE = "none"
    #: The vendor answered 429 and named a time ("Expected available in N seconds").
    VENDOR = "vendor"
    #: facade's own count for this hour (FACADE_UPSTREAM_HOURLY_LIMIT) is spent.
    HOURLY_BUDGET = "hourly-budget"
    #: Pacing below the vendor's burst limit (at most 1.25 s).
    BURST = "burst"


@dataclass(frozen=True)
class Wait:
    seconds: float
    cause: WaitCause


_THROTTLE_MESSAGES = {
    WaitCause.VENDOR: "The EHR asked facade to wait before calling it again; retry after {} s.",
    WaitCause.HOURLY_BUDGET: "facade's hourly budget of EHR calls is spent; retry after {} s.",
}


def throttled(wait: Wait) -> UpstreamThrottled:
    """The error for a caller that cannot wait `wait.seconds`; its message names whose limit."""
    template = _THROTTLE_MESSAGES.get(wait.cause)
    seconds = max(1, int(wait.seconds + 0.999))  # as UpstreamThrottled rounds its Retry-After
    return UpstreamThrottled(wait.seconds, template.format(seconds) if template else None)


@dataclass
class CallRecord:
    endpoint: str
    status: int
    #: Why the call was made (the planner's rule), for benchmarks and audit.
    reason: str = ""


@dataclass
class CallMeter:
    """The vendor calls one FHIR interaction spent."""

    calls: list[CallRecord] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.calls)


_current_meter: ContextVar[CallMeter | None] = ContextVar("facade_call_meter", default=None)


@contextmanager
def metered() -> Iterator[CallMeter]:
    """Count the vendor calls made inside the block (by this task and the tasks it awaits)."""
    meter = CallMeter()
    token = _current_meter.set(meter)
    try:
        yield meter
    finally:
        _current_meter.reset(token)


def record_call(record: CallRecord) -> None:
    meter = _current_meter.get()
    if meter is not None:
        meter.calls.append(record)


#: The share of the vendor's declared burst rate facade paces at.
PACE_SHARE = 0.8


@dataclass(frozen=True)
class QuotaRule:
    """A vendor's quota window, declared by its vendor entry: `window_seconds` long, either
    aligned to the clock (`aligned`: an hourly quota resets at the top of each clock hour) or
    rolling (a call counts against the quota for `window_seconds` after it is made)."""

    window_seconds: float = 3600.0
    aligned: bool = True

    def window_start(self, moment: datetime) -> datetime:
        """The start of the clock-aligned window `moment` falls in."""
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (moment - midnight).total_seconds()
        return midnight + timedelta(seconds=elapsed - elapsed % self.window_seconds)


#: Calls per clock hour, reset at the top of the hour.
CLOCK_HOUR = QuotaRule()


class UpstreamBudget:
    """Calls per quota window (the vendor's QuotaRule; by default per clock hour, reset at
    the top of the hour) and a pace below the vendor's declared burst limit.

    The vendor counts a call when it arrives, facade when it sends it, and calls take longer
    or shorter to get there: pacing at exactly the declared rate meets the vendor's 429 as
    soon as one call arrives a little faster than the one ten before it. So facade sends at
    most `burst_per_second` calls in any 1 / PACE_SHARE seconds (10 in 1.25 s: 80% of the
    rate, and 250 ms of latency the network may vary by), still in bursts, so an interactive
    request of a few calls never waits."""

    def __init__(
        self,
        clock: Clock,
        hourly_limit: int,
        burst_per_second: int | None,
        quota: QuotaRule = CLOCK_HOUR,
    ):
        self._clock = clock
        self.quota = quota
        self._window = timedelta(seconds=quota.window_seconds)
        #: When each call still counting went out (rolling windows only).
        self._sent: deque[datetime] = deque()
        self.hourly_limit = hourly_limit
        #: The vendor's declared burst limit (calls in one second); None: no pacing.
        self.burst_per_second = burst_per_second
        self.pace_window = 1.0 / PACE_SHARE
        self._hour_start = quota.window_start(clock.now())
        self._used = 0
        self._blocked_until: datetime | None = None
        self._recent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.total_calls = 0

    def _roll(self) -> None:
        now = self._clock.now()
        if not self.quota.aligned:
            while self._sent and now - self._sent[0] >= self._window:
                self._sent.popleft()
            self._used = len(self._sent)
            return
        hour = self.quota.window_start(now)
        if hour != self._hour_start:
            self._hour_start = hour
            self._used = 0

    @property
    def remaining(self) -> int:
        self._roll()
        return max(0, self.hourly_limit - self._used)

    def seconds_until_reset(self) -> float:
        """Until the quota frees a call: the window's end, or (rolling) the oldest call's."""
        if not self.quota.aligned:
            self._roll()
            if not self._sent:
                return 0.0
            return max(0.0, (self._sent[0] + self._window - self._clock.now()).total_seconds())
        reset = self._hour_start + self._window
        return max(0.0, (reset - self._clock.now()).total_seconds())

    def next_call(self) -> Wait:
        """How long until the next call may go out (0 if now), and whose limit holds it."""
        self._roll()
        now = self._clock.now()
        waits = [Wait(0.0, WaitCause.NONE)]
        if self._blocked_until is not None and now < self._blocked_until:
            waits.append(Wait((self._blocked_until - now).total_seconds(), WaitCause.VENDOR))
        if self._used >= self.hourly_limit:
            waits.append(Wait(self.seconds_until_reset(), WaitCause.HOURLY_BUDGET))
        if self.burst_per_second:
            mono = self._clock.monotonic()
            while self._recent and mono - self._recent[0] >= self.pace_window:
                self._recent.popleft()
            if len(self._recent) >= self.burst_per_second:
                waits.append(Wait(self.pace_window - (mono - self._recent[0]), WaitCause.BURST))
        return max(waits, key=lambda wait: wait.seconds)

    def wait_needed(self) -> float:
        """Seconds until the next call may go out (0 if now)."""
        return self.next_call().seconds

    async def acquire(self, max_wait: float) -> None:
        """Wait for a call slot and take it, or raise UpstreamThrottled if that is too long."""
        async with self._lock:
            while True:
                wait = self.next_call()
                if wait.seconds <= 0:
                    break
                if wait.seconds > max_wait:
                    raise throttled(wait)
                await self._clock.sleep(wait.seconds)
            self._used += 1
            if not self.quota.aligned:
                self._sent.append(self._clock.now())
            self.total_calls += 1
            if self.burst_per_second:
                self._recent.append(self._clock.monotonic())

    def throttled_by_vendor(self, wait_seconds: float) -> None:
        """The vendor answered 429: nothing goes out until the moment it named; then facade
        asks again. Its wait says nothing about facade's own hourly count, which stays as it
        is: a short throttle must not turn into a refusal until the hour turns."""
        until = self._clock.now() + timedelta(seconds=max(0.0, wait_seconds))
        if self._blocked_until is None or until > self._blocked_until:
            self._blocked_until = until


class SharedBudget(UpstreamBudget):
    """The same budget, counted in the database so every process of a deployment (API
    replicas, workers) spends one quota: the hourly count, the burst pace and the vendor's
    429 wait are read and taken under the key's row lock (facade/store/ledger.py), so the
    processes together never send a call the vendor would refuse, and every process gives a
    client the same, true Retry-After. Times are on the wall clock all processes share."""

    def __init__(
        self,
        ledger: Ledger,
        key: str,
        clock: Clock,
        hourly_limit: int,
        burst_per_second: int | None,
        quota: QuotaRule = CLOCK_HOUR,
    ):
        super().__init__(clock, hourly_limit, burst_per_second, quota)
        self._ledger = ledger
        self.key = key

    def _window_low(self, now: datetime) -> float:
        """Where the quota's window starts: a call at that moment counts in an aligned window
        and has just left a rolling one (as the in-memory budget counts)."""
        if self.quota.aligned:
            return self.quota.window_start(now).timestamp()
        return now.timestamp() - self.quota.window_seconds

    def _wait(self, now: datetime, used: Tally, recent: Tally, blocked: float | None) -> Wait:
        at = now.timestamp()
        waits = [Wait(0.0, WaitCause.NONE)]
        if blocked is not None and at < blocked:
            waits.append(Wait(blocked - at, WaitCause.VENDOR))
        if used.count >= self.hourly_limit:
            waits.append(Wait(self._reset_after(now, used), WaitCause.HOURLY_BUDGET))
        if self.burst_per_second and recent.count >= self.burst_per_second and recent.oldest:
            waits.append(Wait(recent.oldest + self.pace_window - at, WaitCause.BURST))
        return max(waits, key=lambda wait: wait.seconds)

    def _reset_after(self, now: datetime, used: Tally) -> float:
        if self.quota.aligned:
            reset = self.quota.window_start(now) + self._window
            return max(0.0, (reset - now).total_seconds())
        if used.oldest is None:
            return 0.0
        return max(0.0, used.oldest + self.quota.window_seconds - now.timestamp())

    def _read(self) -> tuple[datetime, Tally, Tally, float | None]:
        now = self._clock.now()
        aligned = self.quota.aligned
        used, blocked = self._ledger.read(self.key, self._window_low(now), inclusive=aligned)
        recent, _ = self._ledger.read(self.key, now.timestamp() - self.pace_window, inclusive=False)
        return now, used, recent, blocked

    @property
    def remaining(self) -> int:
        _, used, _, _ = self._read()
        return max(0, self.hourly_limit - used.count)

    def seconds_until_reset(self) -> float:
        now, used, _, _ = self._read()
        return self._reset_after(now, used)

    def next_call(self) -> Wait:
        return self._wait(*self._read())

    def _take(self) -> Wait:
        """Record one call now if every limit allows it (Wait 0), else how long to wait."""
        now = self._clock.now()
        at = now.timestamp()
        with self._ledger.locked(self.key) as key:
            used = key.since(self._window_low(now), inclusive=self.quota.aligned)
            recent = key.since(at - self.pace_window, inclusive=False)
            wait = self._wait(now, used, recent, key.blocked_until)
            if wait.seconds <= 0:
                key.add(at)
                key.forget_before(at - max(self.quota.window_seconds, self.pace_window))
        return wait

    async def acquire(self, max_wait: float) -> None:
        async with self._lock:
            while True:
                wait = self._take()
                if wait.seconds <= 0:
                    break
                if wait.seconds > max_wait:
                    raise throttled(wait)
                await self._clock.sleep(wait.seconds)
            self.total_calls += 1

    def throttled_by_vendor(self, wait_seconds: float) -> None:
        until = self._clock.now().timestamp() + max(0.0, wait_seconds)
        with self._ledger.locked(self.key) as key:
            key.block_until(until)

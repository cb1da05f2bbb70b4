"""The clock a vendor sandbox reads: a plain callable, the wall clock unless a test moves it.

A sandbox never reads the wall clock itself; it calls the `Clock` it was built with. (facade's
own code takes a `facade.clock.Clock` object instead: the sandboxes stand in for the vendor and
share nothing with the code that calls them.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand; call it like `clock()` wherever a `Clock` is expected."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime (UTC)")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

"""The budget counts calls in the window its vendor declares (a QuotaRule): a clock-hour
quota frees everything at the top of the hour; a rolling one frees each call an hour after
it was made."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facade.clock import FakeClock
from facade.errors import UpstreamThrottled
from facade.upstream.budget import CLOCK_HOUR, QuotaRule, UpstreamBudget, WaitCause

START = datetime(2026, 6, 1, 12, 40, 0, tzinfo=UTC)


async def test_a_clock_hour_quota_resets_at_the_top_of_the_hour() -> None:
    clock = FakeClock(START)
    budget = UpstreamBudget(clock, 2, None, CLOCK_HOUR)
    await budget.acquire(0)
    await budget.acquire(0)
    assert budget.remaining == 0
    assert budget.next_call().cause is WaitCause.HOURLY_BUDGET
    assert budget.seconds_until_reset() == 20 * 60
    with pytest.raises(UpstreamThrottled):
        await budget.acquire(60)
    clock.advance(20 * 60)
    assert budget.remaining == 2


async def test_a_rolling_quota_frees_each_call_a_window_after_it() -> None:
    clock = FakeClock(START)
    budget = UpstreamBudget(clock, 2, None, QuotaRule(window_seconds=3600, aligned=False))
    await budget.acquire(0)
    clock.advance(600)
    await budget.acquire(0)
    assert budget.remaining == 0
    # Not at the top of the hour: the first call counts until 13:40.
    assert budget.seconds_until_reset() == 3000
    clock.advance(3000)
    assert budget.remaining == 1
    clock.advance(600)
    assert budget.remaining == 2


def test_a_clock_aligned_window_starts_on_the_clock() -> None:
    assert CLOCK_HOUR.window_start(START) == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    quarter = QuotaRule(window_seconds=900)
    assert quarter.window_start(START) == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)

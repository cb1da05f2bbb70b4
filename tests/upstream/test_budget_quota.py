"""The budget counts calls in the window its vendor declares (a QuotaRule): a clock-hour
quota frees everything at the top of the hour; a rolling one frees each call an hour after
it was made. Each rule holds for the in-memory budget and for the one counted in the
database (SQLite and PostgreSQL), which every process of a deployment shares."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facade.clock import Clock, FakeClock
from facade.errors import UpstreamThrottled
from facade.store.database import Database
from facade.store.ledger import Ledger
from facade.upstream.budget import (
    CLOCK_HOUR,
    QuotaRule,
    SharedBudget,
    UpstreamBudget,
    WaitCause,
)
from tests.store.test_database import (  # noqa: F401  (fixtures)
    database,
    database_url,
    postgres_database,
)

START = datetime(2026, 6, 1, 12, 40, 0, tzinfo=UTC)

MakeBudget = Callable[[Clock, int, "int | None", QuotaRule], UpstreamBudget]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def make_budget(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeBudget]:
    """Budgets of one deployment: in memory, or counted in a database (every budget made
    here shares that one count, as the processes of a deployment do)."""
    if request.param == "memory":
        yield UpstreamBudget
        return
    url = (
        f"sqlite:///{tmp_path / 'facade.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    db = Database(url)
    db.migrate()
    ledger = Ledger(db)
    key = f"vendor:{uuid.uuid4().hex}"  # the PostgreSQL database lives for the session

    def shared(clock: Clock, limit: int, burst: int | None, quota: QuotaRule) -> UpstreamBudget:
        return SharedBudget(ledger, key, clock, limit, burst, quota)

    yield shared
    db.dispose()


async def test_a_clock_hour_quota_resets_at_the_top_of_the_hour(make_budget: MakeBudget) -> None:
    clock = FakeClock(START)
    budget = make_budget(clock, 2, None, CLOCK_HOUR)
    await budget.acquire(0)
    await budget.acquire(0)
    assert budget.remaining == 0
    assert budget.next_call().cause is WaitCause.HOURLY_BUDGET
    assert budget.seconds_until_reset() == 20 * 60
    with pytest.raises(UpstreamThrottled):
        await budget.acquire(60)
    clock.advance(20 * 60)
    assert budget.remaining == 2


async def test_a_rolling_quota_frees_each_call_a_window_after_it(make_budget: MakeBudget) -> None:
    clock = FakeClock(START)
    budget = make_budget(clock, 2, None, QuotaRule(window_seconds=3600, aligned=False))
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


async def test_the_burst_pace_holds_back_the_next_call(make_budget: MakeBudget) -> None:
    clock = FakeClock(START)
    budget = make_budget(clock, 100, 2, CLOCK_HOUR)
    await budget.acquire(0)
    clock.advance(0.25)
    await budget.acquire(0)
    wait = budget.next_call()
    assert wait.cause is WaitCause.BURST
    assert wait.seconds == pytest.approx(1.0)  # 2 calls in any 1.25 s: the first frees at 1.25
    await budget.acquire(5)  # sleeps the pace on the fake clock
    assert clock.slept == [pytest.approx(1.0)]


async def test_a_vendor_429_holds_every_call_until_the_moment_it_named(
    make_budget: MakeBudget,
) -> None:
    clock = FakeClock(START)
    budget = make_budget(clock, 100, None, CLOCK_HOUR)
    budget.throttled_by_vendor(30)
    budget.throttled_by_vendor(10)  # a shorter wait does not shorten the first
    wait = budget.next_call()
    assert (wait.cause, wait.seconds) == (WaitCause.VENDOR, pytest.approx(30))
    with pytest.raises(UpstreamThrottled) as refused:
        await budget.acquire(5)
    assert refused.value.headers["Retry-After"] == "30"
    clock.advance(30)
    await budget.acquire(0)
    assert budget.remaining == 99


async def test_budgets_on_one_database_spend_one_quota(database: Database) -> None:  # noqa: F811
    """Two processes (two budgets, each with its own lock) on one database: the quota and
    a vendor's 429 seen by one hold for the other, and both report the same Retry-After."""
    clock = FakeClock(START)
    ledger = Ledger(database)
    a = SharedBudget(ledger, "vendor:test", clock, 3, None, CLOCK_HOUR)
    b = SharedBudget(ledger, "vendor:test", clock, 3, None, CLOCK_HOUR)
    other_practice = SharedBudget(ledger, "vendor:other", clock, 3, None, CLOCK_HOUR)
    await a.acquire(0)
    await b.acquire(0)
    await a.acquire(0)
    assert (a.remaining, b.remaining, other_practice.remaining) == (0, 0, 3)
    with pytest.raises(UpstreamThrottled) as refused:
        await b.acquire(0)
    assert refused.value.headers["Retry-After"] == str(20 * 60)
    assert a.next_call() == b.next_call()
    clock.advance(20 * 60)
    b.throttled_by_vendor(45)
    assert a.next_call().cause is WaitCause.VENDOR
    assert other_practice.next_call().cause is WaitCause.NONE


def test_processes_racing_for_the_last_calls_never_overspend(database: Database) -> None:  # noqa: F811
    """Four threads, each a process with its own budget and event loop, race for a quota of
    25 on one database: exactly 25 calls are granted, never one more."""
    ledger = Ledger(database)
    granted: list[int] = []

    def process() -> None:
        budget = SharedBudget(ledger, "vendor:race", Clock(), 25, None, CLOCK_HOUR)

        async def spend() -> int:
            calls = 0
            for _ in range(20):
                try:
                    await budget.acquire(0)
                except UpstreamThrottled:
                    continue
                calls += 1
            return calls

        granted.append(asyncio.run(spend()))

    threads = [threading.Thread(target=process) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 25
    tally, _ = ledger.read("vendor:race", 0)
    assert tally.count == 25

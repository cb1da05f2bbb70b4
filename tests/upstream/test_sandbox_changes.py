"""The pace every sandbox's change generator keeps: N steps an hour, evenly spaced on the
sandbox's clock, each run at its own moment, and a log of what they changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from facade.sandbox.changes import Change, ChangeSchedule
from facade.sandbox.clock import ManualClock

START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


class Recorder:
    """A step that changes one made-up record and notes the clock it ran at."""

    def __init__(self, clock: ManualClock | WallClock) -> None:
        self.clock = clock
        self.ran_at: list[datetime] = []

    async def __call__(self, step: int) -> list[Change]:
        self.ran_at.append(self.clock())
        return [Change(step, self.clock(), "modify", "things", str(step), None)]


class WallClock:
    """A clock the schedule may not move (as the real one), moved here by the test's sleep."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def test_a_simulated_hour_runs_exactly_the_rate_evenly_spaced() -> None:
    clock = ManualClock(START)
    step = Recorder(clock)
    schedule = ChangeSchedule(clock, 7, step)

    changes = await schedule.advance(3600)

    assert len(changes) == 7 == schedule.steps
    assert step.ran_at == [START + timedelta(seconds=3600 * k / 7) for k in range(1, 8)]
    assert clock() == START + timedelta(hours=1)
    assert schedule.log == changes
    assert len(await schedule.advance(1800)) == 3
    assert len(schedule.log) == 10


async def test_run_until_a_moment_between_steps_stops_the_clock_there() -> None:
    clock = ManualClock(START)
    schedule = ChangeSchedule(clock, 60, Recorder(clock))

    await schedule.run_until(START + timedelta(seconds=150))

    assert schedule.steps == 2
    assert clock() == START + timedelta(seconds=150)
    assert schedule.next_at == START + timedelta(seconds=180)


async def test_a_zero_rate_changes_nothing_and_a_negative_one_is_refused() -> None:
    clock = ManualClock(START)
    schedule = ChangeSchedule(clock, 0, Recorder(clock))

    assert await schedule.advance(86_400) == []
    assert schedule.next_at is None
    with pytest.raises(ValueError, match="may not be negative"):
        ChangeSchedule(clock, -1, Recorder(clock))


async def test_on_a_clock_it_cannot_move_it_runs_only_what_is_due() -> None:
    clock = WallClock(START)
    step = Recorder(clock)
    schedule = ChangeSchedule(clock, 120, step)

    assert await schedule.run_until(START + timedelta(hours=1)) == []
    clock.now = START + timedelta(seconds=95)
    assert len(await schedule.run_until(START + timedelta(hours=1))) == 3
    assert clock() == START + timedelta(seconds=95)


async def test_run_forever_sleeps_until_each_step_is_due() -> None:
    clock = WallClock(START)
    step = Recorder(clock)
    schedule = ChangeSchedule(clock, 4, step)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += timedelta(seconds=seconds)
        if len(slept) == 3:
            raise TimeoutError("the test has seen enough")

    with pytest.raises(TimeoutError):
        await schedule.run_forever(sleep)

    assert slept == [900.0, 900.0, 900.0]
    assert step.ran_at == [START + timedelta(seconds=900), START + timedelta(seconds=1800)]

"""The change log every sandbox's generator keeps: one INFO line per change, naming ids, kinds
and events only (never a value)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facade.sandbox.changes import LOGGER_NAME, Change, ChangeSchedule
from facade.sandbox.clock import ManualClock

START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


async def test_every_change_is_logged_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(START)

    async def touch(step: int) -> list[Change]:
        return [Change(step, clock(), "modify", "things", str(step), None)]

    schedule = ChangeSchedule(clock, 60, touch)
    nested = Change(1, START, "delete", "charts", "c-9", "p-1", "row removed", ("rows/7",))
    announced = Change(2, START, "create", "visits", "v-3", "p-1", events=("visit.changed",))

    with caplog.at_level("INFO", logger=LOGGER_NAME):
        await schedule.advance(120)

    assert [r.getMessage() for r in caplog.records] == [
        "modify things/1 (not announced)",
        "modify things/2 (not announced)",
    ]
    assert nested.describe() == "delete charts/c-9 [rows/7] (row removed) (not announced)"
    assert announced.describe() == "create visits/v-3 -> visit.changed"

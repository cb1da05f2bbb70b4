"""The pace of a sandbox's change generator and the log it keeps: a step every 1/N hour on the
sandbox's clock, and one `Change` per record a step touched.

Each vendor's generator decides what a step does; this module only says when, and how it is
written down. It never reads the wall clock itself, and a `Change` never carries PHI (ids,
times and names of fields only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from facade.sandbox.clock import Clock, ManualClock

Action = Literal["create", "modify", "delete"]
#: Where every change is logged at INFO, one line each.
LOGGER_NAME = "facade.sandbox.changes"
logger = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class Change:
    """One record a generator step created, modified or deleted.

    With `items` empty, `action` happened to the record itself. With `items` (nested rows,
    "<kind>/<id>"), it happened to those rows, and the record holding them was modified.
    """

    #: The generator step (1, 2, ...) that made it; one step may touch several records.
    step: int
    at: datetime
    action: Action
    #: The vendor listing that serves the record.
    endpoint: str
    record_id: str
    patient_id: str | None
    #: What changed, in a few words ("status cancelled", "signed"); never a value that is PHI.
    what: str = ""
    items: tuple[str, ...] = ()
    #: The webhook events the vendor sent about it; empty when the vendor announces nothing.
    events: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: "modify encounters/<id> [problems/7] (problem resolved) -> <event>"."""
        items = f" [{', '.join(self.items)}]" if self.items else ""
        what = f" ({self.what})" if self.what else ""
        events = f" -> {', '.join(self.events)}" if self.events else " (not announced)"
        return f"{self.action} {self.endpoint}/{self.record_id}{items}{what}{events}"


Step = Callable[[int], Awaitable[list[Change]]]


class ChangeSchedule:
    """Runs `step` `per_hour` times an hour, evenly spaced from the moment it was built, and
    keeps every `Change` the steps return in `log`.

    On a `ManualClock` it moves the clock to each step's moment before running it, so records
    and events carry the time the change happened; on any other clock it only runs the steps
    that are already due.
    """

    def __init__(self, clock: Clock, per_hour: float, step: Step) -> None:
        if per_hour < 0:
            raise ValueError("changes per hour may not be negative")
        self.clock = clock
        self.per_hour = per_hour
        self.step = step
        self.started = clock()
        self.steps = 0
        self.log: list[Change] = []

    @property
    def next_at(self) -> datetime | None:
        """When the next step is due (None when the rate is zero)."""
        if not self.per_hour:
            return None
        # Computed from the start, not accumulated, so N steps an hour are exactly N.
        return self.started + timedelta(seconds=3600 * (self.steps + 1) / self.per_hour)

    async def run_until(self, moment: datetime) -> list[Change]:
        """Run every step due by `moment` (by now, too, unless the clock is a ManualClock,
        which ends at `moment`); returns what they changed."""
        manual = self.clock if isinstance(self.clock, ManualClock) else None
        limit = moment if manual else min(moment, self.clock())
        done: list[Change] = []
        while (due := self.next_at) is not None and due <= limit:
            if manual:
                manual.now = max(manual.now, due)
            self.steps += 1
            changes = await self.step(self.steps)
            for change in changes:
                logger.info("%s", change.describe())
            self.log.extend(changes)
            done.extend(changes)
        if manual:
            manual.now = max(manual.now, moment)
        return done

    async def advance(self, seconds: float) -> list[Change]:
        """Move on `seconds` from now: a ManualClock moves with it."""
        return await self.run_until(self.clock() + timedelta(seconds=seconds))

    async def run_forever(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Wait for each step's moment on the clock and run it, until cancelled."""
        while (due := self.next_at) is not None:
            await sleep(max(0.0, (due - self.clock()).total_seconds()))
            await self.run_until(self.clock())

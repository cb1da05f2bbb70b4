"""The mirror's scheduler: the one background task that runs the sync's passes, so the mirror
follows the vendor without anyone asking.

Backfill first (resumable, so a restart goes on where it stopped), then, over and over: the
records webhooks announced, every `hint_seconds`; a poll for changes on its cadence; and a
reconcile round (every listing read whole, to find deletes) every `reconcile_seconds`. All of
it within the sync's share of the vendor quota (SyncShare), of which the long passes
(backfill, reconcile, poll) leave FRESH_RESERVE for what webhooks announce later in the
window. A pass the share stops waits until the window frees calls; a pass the vendor refuses
(429, 5xx, timeout) or that fails backs off, doubling up to a cap; nothing a pass does ever
ends the task or holds up an answer. `step()` does one round and says when it wants the next,
so tests drive it on a FakeClock; the task only sleeps on the clock between steps.
Log lines name passes, counts and error types, never a record, an id or a vendor message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import floor

from anyio import to_thread

from facade.clock import Clock
from facade.mirror.store import MirrorStore
from facade.mirror.sync import MirrorSync, SyncRun, SyncShare

log = logging.getLogger("facade.mirror.scheduler")

#: The share of the sync's calls that backfill, reconcile and poll leave untouched in each
#: quota window, for refreshing what the vendor's webhooks announce later in it.
FRESH_RESERVE = 0.2
#: Polls are spaced so that, on average, they spend at most this part of what the long passes
#: may spend: a reconcile round always moves on.
POLL_PORTION = 0.5

#: The passes, in the order a step runs them.
HINTED, BACKFILL, POLL, RECONCILE = "hinted", "backfill", "poll", "reconcile"


@dataclass(frozen=True)
class Cadence:
    """How often each pass runs (FACADE_MIRROR_* settings) and how failures back off."""

    poll_seconds: float = 60.0
    reconcile_seconds: float = 21600.0
    hint_seconds: float = 5.0
    first_backoff_seconds: float = 30.0
    max_backoff_seconds: float = 900.0


@dataclass(frozen=True)
class PassResult:
    """What one pass did (for status and logs: counts and reasons, nothing of a record)."""

    name: str
    started_at: datetime
    calls: int = 0
    written: int = 0
    deleted: int = 0
    #: Why it stopped before its end ("" when it finished): the share spent, or the vendor's
    #: or facade's error type.
    paused: str = ""
    #: The share stopped it (it goes on when the window frees calls), not a failure.
    share_spent: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.paused) and not self.share_spent


@dataclass(frozen=True)
class Step:
    """One round of the scheduler: the passes it ran, and when it wants the next round."""

    passes: tuple[PassResult, ...]
    #: Seconds until the next round.
    wait: float
    #: What the next round is for: "hints" (the regular look for announced records), "poll",
    #: "reconcile", "share" (the share is spent until the window frees calls) or "backoff".
    next: str


@dataclass(frozen=True)
class SchedulerStatus:
    """The scheduler's side of `facade mirror status` (the store's side is progress.py)."""

    running: bool
    backfilled: bool
    #: The sync's calls counted in the current quota window, and how many it may make.
    calls_this_window: int
    calls_allowed: int
    #: The last result of each pass, by name.
    last: dict[str, PassResult]
    next_poll: datetime | None
    next_reconcile: datetime | None
    #: When the reconcile round under way started (None: none is).
    reconcile_started: datetime | None
    #: How long the last whole reconcile round took (the deletion bound's second half).
    last_reconcile_seconds: float | None
    reconcile_rounds: int
    #: Failed passes in a row (0 once one succeeds).
    failures: int


def reserve(share: SyncShare) -> int:
    """The calls of each window the long passes leave for webhook refreshes."""
    return floor(share.allowed * FRESH_RESERVE)


def long_pass_calls_per_window(allowed: int) -> int:
    """What backfill and reconcile may spend per quota window (the backfill ETA's rate)."""
    return allowed - floor(allowed * FRESH_RESERVE)


@dataclass
class MirrorScheduler:
    """Runs one connection's sync passes on a cadence, within the sync's share."""

    #: The sync, built on first use (it needs the practice context, a few vendor calls that
    #: may fail while the vendor is down: the scheduler then backs off and asks again).
    sync: Callable[[], Awaitable[MirrorSync]]
    store: MirrorStore
    connection: str
    share: SyncShare
    clock: Clock
    cadence: Cadence = field(default_factory=Cadence)
    last: dict[str, PassResult] = field(default_factory=dict)
    backfilled: bool = False
    next_poll: datetime | None = None
    next_reconcile: datetime | None = None
    reconcile_started: datetime | None = None
    last_reconcile_seconds: float | None = None
    #: Whole reconcile rounds finished since the process started.
    reconcile_rounds: int = 0
    failures: int = 0
    _backoff_until: datetime | None = field(default=None, repr=False)
    #: Per long pass, when the share has calls for it again.
    _resume_at: dict[str, datetime] = field(default_factory=dict, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    # -- the task --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the background task (once)."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=f"mirror-{self.connection}")

    async def stop(self) -> None:
        """Cancel the task and wait for it: a pass cut short resumes from its watermarks."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            step = await self.step()
            await self.clock.sleep(step.wait)

    # -- one round -------------------------------------------------------------------------

    async def step(self) -> Step:
        """Run the passes that are due, in order: announced records, backfill (until it is
        complete), poll, reconcile; never raises (a failure backs off)."""
        now = self.clock.now()
        if self._backoff_until is not None and now < self._backoff_until:
            return Step((), (self._backoff_until - now).total_seconds(), "backoff")
        try:
            sync = await self.sync()
        except Exception as exc:  # the practice context could not be loaded
            return self._failed((), PassResult("start", now, paused=type(exc).__name__))
        try:
            return await self._step(sync, now)
        except Exception as exc:  # the store between passes (each pass catches its own)
            return self._failed((), PassResult("step", now, paused=type(exc).__name__))

    async def _step(self, sync: MirrorSync, now: datetime) -> Step:
        done: list[PassResult] = []
        hints = await to_thread.run_sync(self.store.pending_hints, self.connection)
        if hints and self._free(HINTED, now):
            result = await self._pass(HINTED, sync.refresh_hinted, held_back=0)
            done.append(result)
            if result.failed:
                return self._failed(tuple(done), result)
        for name, due, run in self._long_passes(sync):
            if not due:
                continue
            result = await self._pass(name, run, held_back=reserve(self.share))
            done.append(result)
            if result.failed:
                return self._failed(tuple(done), result)
            self._after(name, result)
            if result.share_spent:
                break  # the next long pass would stop at once
        return self._next(tuple(done))

    def _long_passes(
        self, sync: MirrorSync
    ) -> list[tuple[str, bool, Callable[[], Awaitable[SyncRun]]]]:
        now = self.clock.now()

        def free(name: str) -> bool:
            return self._free(name, now)

        round_due = self.reconcile_started is not None or (
            self.next_reconcile is not None and self.next_reconcile <= now
        )
        return [
            (BACKFILL, not self.backfilled and free(BACKFILL), sync.backfill),
            (
                POLL,
                self.backfilled
                and self.next_poll is not None
                and self.next_poll <= now
                and free(POLL),
                sync.poll,
            ),
            (RECONCILE, self.backfilled and round_due and free(RECONCILE), sync.reconcile),
        ]

    def _free(self, name: str, now: datetime) -> bool:
        """The share has calls for the pass again (or never stopped it)."""
        return self._resume_at.get(name, now) <= now

    async def _pass(
        self, name: str, run: Callable[[], Awaitable[SyncRun]], *, held_back: int
    ) -> PassResult:
        started = self.clock.now()
        if name == RECONCILE and self.reconcile_started is None:
            self.reconcile_started = started
        try:
            with self.share.holding_back(held_back):
                result = await run()
                spent = result.share_spent or (bool(result.paused) and self.share.left < 1)
                # A pass may stop with calls left that it keeps for others (a rotation keeps
                # some for hinted refreshes): it waits for the window to free another.
                wait = self.share.seconds_until_free(another=True) if spent else 0.0
        except Exception as exc:  # a bug or the database: logged by type, retried later
            outcome = PassResult(name, started, paused=type(exc).__name__)
        else:
            outcome = PassResult(
                name,
                started,
                calls=result.calls,
                written=result.written,
                deleted=result.deleted,
                paused=result.paused,
                share_spent=spent,
            )
            if spent:
                self._resume_at[name] = self.clock.now() + timedelta(seconds=wait)
        self.last[name] = outcome
        if outcome.calls or outcome.paused:
            log.info(
                "mirror %s %s: %d vendor calls, %d written, %d deleted%s",
                self.connection,
                name,
                outcome.calls,
                outcome.written,
                outcome.deleted,
                f", stopped: {outcome.paused}" if outcome.paused else "",
            )
        return outcome

    def _after(self, name: str, result: PassResult) -> None:
        """What a pass that did not fail changes in the cadence."""
        now = self.clock.now()
        self.failures = 0
        if result.paused:
            return
        if name == BACKFILL:
            self.backfilled = True
            # The backfill holds what the vendor had when each listing started: poll now.
            self.next_poll = now
            self.next_reconcile = now + timedelta(seconds=self.cadence.reconcile_seconds)
        elif name == POLL:
            self.next_poll = now + timedelta(seconds=self.poll_interval(result.calls))
        elif name == RECONCILE:
            started = self.reconcile_started or result.started_at
            self.last_reconcile_seconds = (now - started).total_seconds()
            self.next_reconcile = max(
                now, started + timedelta(seconds=self.cadence.reconcile_seconds)
            )
            self.reconcile_started = None
            self.reconcile_rounds += 1

    def poll_interval(self, calls: int) -> float:
        """The floor cadence, or longer when polls at it would spend more than POLL_PORTION
        of what the long passes may spend per window."""
        window = self.share.window_seconds
        budget = long_pass_calls_per_window(self.share.allowed) * POLL_PORTION
        if budget <= 0:
            return max(self.cadence.poll_seconds, window)
        return max(self.cadence.poll_seconds, calls * window / budget)

    def _failed(self, done: tuple[PassResult, ...], failure: PassResult) -> Step:
        """Back off: `first_backoff_seconds`, doubling per failure in a row up to the cap,
        and never before the vendor said it would answer again."""
        self.failures += 1
        self.last[failure.name] = failure
        wait = min(
            self.cadence.max_backoff_seconds,
            self.cadence.first_backoff_seconds * 2 ** (self.failures - 1),
        )
        wait = max(wait, self.share.vendor_wait())
        self._backoff_until = self.clock.now() + timedelta(seconds=wait)
        log.warning(
            "mirror %s %s failed (%s), %d in a row; next try in %.0f s",
            self.connection,
            failure.name,
            failure.paused,
            self.failures,
            wait,
        )
        return Step(done if failure in done else (*done, failure), wait, "backoff")

    def _next(self, done: tuple[PassResult, ...]) -> Step:
        """When the next round is due: the hint cadence, or sooner when a pass is due."""
        now = self.clock.now()
        due = {"hints": self.cadence.hint_seconds}

        def after_share(name: str, moment: datetime) -> float:
            """Seconds until the pass is due and the share has calls for it again."""
            return (max(moment, self._resume_at.get(name, moment)) - now).total_seconds()

        if self.backfilled and self.next_poll is not None:
            due["poll"] = after_share(POLL, self.next_poll)
        if self.reconcile_started is None and self.next_reconcile is not None:
            due["reconcile"] = after_share(RECONCILE, self.next_reconcile)
        for name, moment in self._resume_at.items():
            if moment > now and (name != BACKFILL or not self.backfilled):
                due.setdefault("share", (moment - now).total_seconds())
        reason = min(due, key=lambda k: due[k])
        return Step(done, max(0.0, due[reason]), reason)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> SchedulerStatus:
        return SchedulerStatus(
            running=self.running,
            backfilled=self.backfilled,
            calls_this_window=self.share.spent,
            calls_allowed=self.share.allowed,
            last=dict(self.last),
            next_poll=self.next_poll,
            next_reconcile=self.next_reconcile,
            reconcile_started=self.reconcile_started,
            last_reconcile_seconds=self.last_reconcile_seconds,
            reconcile_rounds=self.reconcile_rounds,
            failures=self.failures,
        )

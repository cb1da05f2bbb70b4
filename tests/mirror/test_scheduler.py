"""The mirror's scheduler through the transport sandwich, on the test clock: it backfills,
then keeps the mirror at the vendor's state while the vendor's change generator runs; it never
spends more than the sync's share of a quota window; a vendor that fails or holds it off
makes it back off and then go on; and it is there only when the mirror is on, started and
stopped with the app. Each test drives `step()` and moves the clock by the wait it asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from facade.app import create_app
from facade.clock import FakeClock
from facade.mirror.runtime import Mirror
from facade.mirror.scheduler import BACKFILL, MirrorScheduler, Step, reserve
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.changes import ChangeGenerator
from tests.mirror import test_hinted, test_sync, test_webhooks
from tests.mirror.test_hinted import _hinted
from tests.mirror.test_webhooks import SECRET
from tests.mirror.vendor_state import assert_exact as _assert_exact
from tests.mirror.vendor_state import vendor_now as _vendor_now
from tests.vendors import VENDORS, change_generator, hold, vendor_calls

#: After the sandboxes' own change times, as the sync's tests need (vendor_state says why).
clock = test_sync.clock
#: The DrChrono sandbox with its webhook pointing at facade's app, verified.
drchrono = test_hinted.drchrono
app_transport = test_webhooks.app_transport


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The mirror on, with a reconcile round every half hour (the default is 6 h), and the
    webhook route on."""
    return settings.with_overrides(
        mirror=True, mirror_reconcile_seconds=1800.0, webhook_secret=SECRET
    )


def _mirror(runtime: Runtime) -> Mirror:
    assert runtime.mirror is not None
    return runtime.mirror


async def _run_until(
    scheduler: MirrorScheduler, clock: FakeClock, done: Callable[[], bool], rounds: int = 2000
) -> list[Step]:
    """Steps, the clock moved by the wait each asks for, until `done()` (checked right after
    a step, so the vendor can be compared with the mirror at the moment of the last pass)."""
    steps: list[Step] = []
    for _ in range(rounds):
        if done():
            return steps
        step = await scheduler.step()
        steps.append(step)
        if done():
            return steps
        clock.advance(step.wait)
    raise AssertionError(f"not done after {rounds} rounds; last: {steps[-1]}")


@VENDORS
async def test_it_backfills_then_keeps_the_mirror_at_the_vendor_state_as_records_change(
    runtime: Runtime, sandbox: Any, clock: FakeClock
) -> None:
    mirror = _mirror(runtime)
    scheduler = mirror.scheduler

    await _run_until(scheduler, clock, lambda: scheduler.backfilled)

    sync = await mirror.sync()
    await _assert_exact(runtime, sync)
    progress = mirror.progress()
    assert progress.complete and progress.eta is None
    changes = change_generator(sandbox, 120, seed=4)
    for _ in range(120):  # an hour of changes, a round every 30 s
        clock.advance(30)
        await changes.run_until(clock.now())
        step = await scheduler.step()
        assert not [p for p in step.passes if p.failed]
    assert {c.action for c in changes.log} >= {"create", "modify", "delete"}
    assert scheduler.reconcile_rounds >= 1  # a round every half hour
    # A round that starts after the last change ends with the vendor's state, deletes too.
    rounds = scheduler.reconcile_rounds
    await _run_until(scheduler, clock, lambda: scheduler.reconcile_rounds >= rounds + 2)
    await _assert_exact(runtime, sync)
    status = (await mirror.status()).scheduler
    assert status.failures == 0 and status.last_reconcile_seconds is not None
    assert {"backfill", "reconcile"} <= set(status.last)
    assert 0 < status.calls_this_window <= status.calls_allowed


async def test_drchrono_what_its_webhooks_announce_is_in_the_mirror_one_hint_round_later(
    drchrono: Any, runtime: Runtime, clock: FakeClock
) -> None:
    """Polls and reconcile rounds held off: only the hint pass can bring the changes in."""
    mirror = _mirror(runtime)
    scheduler = mirror.scheduler
    await _run_until(scheduler, clock, lambda: scheduler.backfilled)
    scheduler.cadence = replace(scheduler.cadence, poll_seconds=86400.0)
    await scheduler.step()  # the poll right after the backfill; the next one is a day away
    scheduler.next_reconcile = clock.now() + timedelta(days=1)
    changes = ChangeGenerator(drchrono, changes_per_hour=360, seed=4)
    announced: set[tuple[str, str, str | None]] = set()
    for _ in range(120):  # ten minutes, a hint round every 5 s
        clock.advance(scheduler.cadence.hint_seconds)
        await changes.run_until(clock.now())
        await drchrono.webhooks.deliver_due()
        hinted = _hinted(runtime)
        announced |= hinted

        step = await scheduler.step()

        assert [p.name for p in step.passes] == (["hinted"] if hinted else [])
        assert step.next == "hints" and step.wait == scheduler.cadence.hint_seconds
        assert mirror.store.pending_hints(mirror.connection) == 0
    assert len(announced) > 10
    sync = await mirror.sync()
    at_vendor = 0
    for listing in sync.listings:
        for record in await _vendor_now(runtime, listing):
            key = str(record["id"])
            if any(e == listing.endpoint and i == key for e, i, _ in announced):
                held = mirror.store.get(mirror.connection, listing.endpoint, key)
                assert held is not None, listing.endpoint
                assert _unsigned(held.body) == _unsigned(record), listing.endpoint
                at_vendor += 1
    assert at_vendor > 10


def _unsigned(value: Any) -> Any:
    """A record without its pre-signed file links' signatures, which change with the clock."""
    if isinstance(value, dict):
        return {k: _unsigned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsigned(v) for v in value]
    if isinstance(value, str) and "X-Amz-Signature" in value:
        return value.split("?", 1)[0]
    return value


@VENDORS
async def test_it_never_spends_more_than_its_share_of_a_quota_window(
    runtime: Runtime, sandbox: Any, clock: FakeClock, tmp_path: Any
) -> None:
    # 20 calls a window, half of them the sync's: the backfill takes several windows.
    small = await build_runtime(
        runtime.settings.with_overrides(upstream_hourly_limit=20, data_dir=tmp_path / "small"),
        sandbox=sandbox,
        clock=clock,
    )
    try:
        await _within_the_share(runtime, small, sandbox, clock)
    finally:
        await small.aclose()


async def _within_the_share(
    runtime: Runtime, small: Runtime, sandbox: Any, clock: FakeClock
) -> None:
    mirror = _mirror(small)
    scheduler = mirror.scheduler
    share = mirror.share
    await small.service.context()  # the practice context's calls are not the sync's
    assert share.allowed == 10 and reserve(share) == 2
    quota = small.client.budget.quota
    before = len(vendor_calls(sandbox))
    spent: list[tuple[datetime, int]] = []
    estimates = []

    def backfilled() -> bool:
        if not scheduler.backfilled:
            estimates.append(mirror.progress().eta)
        return scheduler.backfilled

    for step in await _run_until(scheduler, clock, backfilled):
        spent += [(p.started_at, p.calls) for p in step.passes if p.calls]

    assert sum(n for _, n in spent) == len(vendor_calls(sandbox)) - before
    assert len({quota.window_start(t) for t, _ in spent}) > 1, "the backfill took one window"
    window = timedelta(seconds=quota.window_seconds)
    for moment, _ in spent:
        if quota.aligned:
            counted = [n for t, n in spent if quota.window_start(t) == quota.window_start(moment)]
        else:
            counted = [n for t, n in spent if moment - window < t <= moment]
        assert sum(counted) <= share.allowed - reserve(share)  # the long passes leave 2
    # While it was under way, status estimated the calls and time it still needed.
    assert any(e is not None and e.calls > 0 and e.seconds > 0 for e in estimates)
    await _assert_exact(runtime, await mirror.sync(), bodies=False)


@VENDORS
async def test_a_vendor_failing_mid_pass_makes_it_back_off_then_finish(
    runtime: Runtime, sandbox: Any, clock: FakeClock
) -> None:
    scheduler = _mirror(runtime).scheduler
    await runtime.service.context()
    retries = runtime.settings.upstream_retries
    sandbox.fail_next(retries + 1, "500")  # the first page, and every retry of it

    failed = await scheduler.step()

    assert [p.name for p in failed.passes] == [BACKFILL]
    assert failed.passes[0].failed and failed.next == "backoff" and failed.wait >= 30
    assert scheduler.failures == 1
    assert (await scheduler.step()).passes == ()  # still backing off: nothing is asked
    clock.advance(failed.wait)
    await _run_until(scheduler, clock, lambda: scheduler.backfilled)
    assert scheduler.failures == 0
    await _assert_exact(runtime, await _mirror(runtime).sync())


@VENDORS
async def test_a_vendor_holding_it_off_makes_it_wait_as_long_as_the_vendor_said(
    runtime: Runtime, sandbox: Any, clock: FakeClock
) -> None:
    scheduler = _mirror(runtime).scheduler
    await runtime.service.context()
    hold(sandbox, 600)

    held = await scheduler.step()

    assert held.passes and held.passes[-1].failed and held.next == "backoff"
    assert held.wait >= 600 - 1
    clock.advance(held.wait)
    await _run_until(scheduler, clock, lambda: scheduler.backfilled)
    await _assert_exact(runtime, await _mirror(runtime).sync())


async def test_a_pass_that_raises_is_logged_by_type_and_retried(
    runtime: Runtime, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = _mirror(runtime)
    sync = await mirror.sync()
    real = sync.backfill

    async def broken() -> Any:
        raise RuntimeError("a record body that must not be logged")

    sync.backfill = broken  # type: ignore[method-assign]
    failed = await mirror.scheduler.step()
    sync.backfill = real  # type: ignore[method-assign]

    assert failed.passes[-1].paused == "RuntimeError" and failed.next == "backoff"
    assert "must not be logged" not in caplog.text and "RuntimeError" in caplog.text
    clock.advance(failed.wait)
    await _run_until(mirror.scheduler, clock, lambda: mirror.scheduler.backfilled)


async def test_the_app_starts_the_scheduler_and_stops_it_and_so_does_closing_the_runtime(
    runtime: Runtime,
) -> None:
    scheduler = _mirror(runtime).scheduler
    app = create_app(runtime.settings, runtime)
    async with app.router.lifespan_context(app):
        assert scheduler.running
    assert not scheduler.running

    await scheduler.start()
    await runtime.aclose()
    assert not scheduler.running


async def test_with_the_mirror_off_there_is_no_mirror_and_the_webhooks_still_keep_hints(
    tmp_path: Any, sandbox: Any, clock: FakeClock
) -> None:
    settings = Settings(
        data_dir=tmp_path / "off",
        upstream_burst_per_second=0,
        webhook_secret="9f4c1e7a2b6d8035c1e9a7f2b4d6c8e0",
    )
    assert settings.mirror is False
    runtime = await build_runtime(settings, sandbox=sandbox, clock=clock)
    try:
        assert runtime.mirror is None and runtime.webhooks is not None
        app = create_app(settings, runtime)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/health/live")).status_code == 200
    finally:
        await runtime.aclose()


async def test_the_mirror_uses_the_store_and_connection_the_webhook_receiver_keeps_hints_in(
    tmp_path: Any, sandbox: Any, clock: FakeClock
) -> None:
    settings = Settings(
        data_dir=tmp_path / "on",
        upstream_burst_per_second=0,
        webhook_secret="9f4c1e7a2b6d8035c1e9a7f2b4d6c8e0",
        mirror=True,
    )
    runtime = await build_runtime(settings, sandbox=sandbox, clock=clock)
    try:
        mirror = _mirror(runtime)
        assert runtime.webhooks is not None and runtime.webhooks.store is mirror.store
        assert mirror.connection == runtime.webhooks.connection == settings.vendor
        assert mirror.share.allowed == int(settings.upstream_hourly_limit * 0.5)
        assert mirror.sync_if_built is None  # nothing asked of the vendor yet
        listings = await mirror.listings()
        assert listings and (await mirror.sync()).listings is listings
        assert mirror.sync_if_built is await mirror.sync()
        # Every listing is in status from the start, with an estimate of what is left.
        progress = mirror.progress()
        assert {e.endpoint for e in progress.endpoints} == {x.endpoint for x in listings}
        assert progress.eta is not None and progress.eta.at_least
    finally:
        await runtime.aclose()


async def test_a_vendor_down_before_the_sync_is_built_delays_the_mirror_only(
    runtime: Runtime, sandbox: Any, clock: FakeClock
) -> None:
    """The practice context the sync needs cannot be loaded: back off, then build it."""
    mirror = _mirror(runtime)
    sandbox.fail_next(100, "500")

    failed = await mirror.scheduler.step()

    assert [p.name for p in failed.passes] == ["start"] and failed.next == "backoff"
    assert mirror.sync_if_built is None
    sandbox.clear_faults()
    clock.advance(failed.wait)
    await _run_until(mirror.scheduler, clock, lambda: mirror.scheduler.backfilled)
    assert mirror.sync_if_built is not None


@pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)
async def test_a_rotation_the_share_stops_waits_for_the_window_without_backing_off(
    runtime: Runtime, sandbox: Any, clock: FakeClock, tmp_path: Any
) -> None:
    """CareCloud's re-read rotation stops with calls left, kept for hinted refreshes: that is
    the share at work, not a failure, so the scheduler neither backs off (which would hold
    up the hint rounds too) nor logs a warning; it goes on as the window frees calls."""
    small = await build_runtime(
        runtime.settings.with_overrides(upstream_hourly_limit=40, data_dir=tmp_path / "small"),
        sandbox=sandbox,
        clock=clock,
    )
    try:
        scheduler = _mirror(small).scheduler
        await small.service.context()
        await _run_until(scheduler, clock, lambda: scheduler.backfilled)
        steps = []
        until = clock.now() + timedelta(hours=3)
        for _ in range(5000):  # a round every hint round (5 s) at the least: 2,160
            if clock.now() >= until:
                break
            step = await scheduler.step()
            steps.append(step)
            clock.advance(step.wait)
        assert clock.now() >= until, f"rounds without the clock moving: {steps[-1]}"
    finally:
        await small.aclose()
    polls = [p for step in steps for p in step.passes if p.name == "poll"]
    assert any(p.share_spent and p.calls for p in polls), "the share stopped the rotation"
    assert not [p for step in steps for p in step.passes if p.failed]
    assert all(step.next != "backoff" for step in steps) and scheduler.failures == 0
    assert len({p.started_at for p in polls if p.calls}) >= 3, "it went on, window by window"

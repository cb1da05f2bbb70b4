"""The mirror's sync through the transport sandwich: backfill to the vendor's exact records,
resume after a crash without asking again, poll and reconcile back to the vendor's state after
an hour of changes, and never more than the sync's share of the hour's calls."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet

from facade.clock import FakeClock
from facade.core.vendor import Record
from facade.mirror import MirrorStore
from facade.mirror.sync import MirrorSync, SyncListing, SyncShare, plan_sync, vendor_key
from facade.runtime import Runtime
from tests.vendors import VENDORS, change_generator, vendor_calls

CONNECTION = "practice"


@pytest.fixture
def clock() -> FakeClock:
    """A month after the suites' usual start: the DrChrono sandbox stamps two future
    appointments `updated_at` with their own June dates, and the store (rightly) refuses to
    replace a record with one stamped earlier, so a change made before those dates would be
    refused. No vendor stamps a change in the future; the generated dataset does."""
    return FakeClock(datetime(2026, 7, 1, 12, tzinfo=UTC))


@pytest.fixture
def mirror(runtime: Runtime, clock: FakeClock) -> MirrorStore:
    return MirrorStore(runtime.database, Fernet.generate_key(), clock)


async def _sync(
    runtime: Runtime, mirror: MirrorStore, share: SyncShare | None = None
) -> MirrorSync:
    ctx = await runtime.service.context()
    client = runtime.client
    clock = mirror.clock
    return MirrorSync(
        mirror,
        client,
        ctx,
        plan_sync(runtime.service.registry, ctx, client.wire),
        connection=CONNECTION,
        clock=clock,
        share=share or SyncShare(client.budget, clock),
    )


async def _vendor_now(runtime: Runtime, listing: SyncListing) -> list[Record]:
    """What the vendor lists for `listing` now, read through facade's client (patient by
    patient where the vendor lists it so, over the patients it lists now)."""
    client = runtime.client
    if not listing.patient_param:
        return await client.list_all(listing.endpoint, dict(listing.params), reason="test")
    patients = await client.list_all(listing.patient_endpoint, {}, reason="test")
    records: list[Record] = []
    for patient in patients:
        params = {**listing.params, listing.patient_param: str(patient["id"])}
        records += await client.list_all(listing.endpoint, params, reason="test")
    return records


async def _assert_exact(runtime: Runtime, sync: MirrorSync, *, bodies: bool = True) -> None:
    """Every synced endpoint holds exactly the vendor's records, and (`bodies`) each as the
    vendor lists it now. Hours later a body differs in what the vendor signs for the hour
    (a file's download URL), so a test that lets hours pass compares ids."""
    by_endpoint: dict[str, dict[str, Record]] = {}
    for listing in sync.listings:
        for position, record in enumerate(await _vendor_now(runtime, listing)):
            by_endpoint.setdefault(listing.endpoint, {})[vendor_key(record, position)] = record
    assert by_endpoint
    for endpoint in {listing.endpoint for listing in sync.listings}:
        held = {r.vendor_id: r.body for r in sync.store.scan(sync.connection, endpoint)}
        vendor = by_endpoint.get(endpoint, {})
        assert held.keys() == vendor.keys(), endpoint
        if bodies:
            assert held == vendor, endpoint


def _successful_urls(sandbox: Any, start: int) -> Counter[str]:
    """The vendor URLs answered 200 from the `start`th API call on, and how often."""
    calls = vendor_calls(sandbox)[start:]
    return Counter(f"{e.path}?{e.query}" for e in calls if e.status == 200)


@VENDORS
async def test_backfill_holds_exactly_the_vendor_records_with_keys_and_progress(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any
) -> None:
    sync = await _sync(runtime, mirror)
    before = len(vendor_calls(sandbox))

    run = await sync.backfill()

    assert run.finished and run.written > 0
    assert run.calls == len(vendor_calls(sandbox)) - before
    await _assert_exact(runtime, sync)
    status = {s.endpoint: s for s in mirror.status(CONNECTION)}
    assert set(status) == {listing.endpoint for listing in sync.listings}
    assert all(s.complete and s.synced_through is not None for s in status.values())
    assert sum(s.calls_spent for s in status.values()) == run.calls
    assert {e: s.calls_spent for e, s in status.items()} == run.calls_by_endpoint
    for listing in sync.listings:
        for record in mirror.scan(CONNECTION, listing.endpoint):
            if listing.is_patient:
                assert record.patient_id == record.vendor_id
            elif listing.patient_param or listing.patient_fields:
                assert record.patient_id is not None, listing.endpoint
        if listing.change_times:  # the mappings' declared change time, as the vendor's time
            held = mirror.scan(CONNECTION, listing.endpoint)
            assert any(r.vendor_updated_at is not None for r in held), listing.endpoint
    # Done is done: a second backfill asks nothing.
    assert (await sync.backfill()).calls == 0


@VENDORS
async def test_a_crash_mid_backfill_resumes_without_asking_for_a_finished_page_again(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any
) -> None:
    retries = runtime.settings.upstream_retries
    crash_at = 6
    sync = await _sync(runtime, mirror)
    start = len(vendor_calls(sandbox))  # the practice context is loaded: the sync's calls next
    for nth in range(crash_at, crash_at + retries + 1):
        sandbox.fail_call(nth, "500")  # the sixth page fails, and every retry of it
    first = await sync.backfill()
    assert first.paused and first.calls == crash_at + retries
    held = sum(s.records for s in mirror.status(CONNECTION))
    assert held > 0

    # A new process: only the watermarks carry over.
    second = await (await _sync(runtime, mirror)).backfill()

    assert second.finished
    repeated = {url: n for url, n in _successful_urls(sandbox, start).items() if n > 1}
    assert repeated == {}
    await _assert_exact(runtime, await _sync(runtime, mirror))


@VENDORS
async def test_the_sync_never_spends_more_than_its_share_of_the_hour(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    limit = runtime.client.budget.hourly_limit
    # Four calls an hour: the backfill takes several hours.
    share = SyncShare(runtime.client.budget, clock, 4 / limit)
    sync = await _sync(runtime, mirror, share)
    runs = []
    while True:
        before = len(vendor_calls(sandbox))
        run = await sync.backfill()
        assert len(vendor_calls(sandbox)) - before == run.calls <= 4
        runs.append(run)
        if run.finished:
            break
        assert run.calls == 4 and "share" in run.paused
        assert (await sync.backfill()).calls == 0  # the same hour: nothing left
        clock.advance(3600)
    assert len(runs) > 2
    await _assert_exact(runtime, sync, bodies=False)


async def _an_hour_of_changes(sandbox: Any, clock: FakeClock, per_hour: int = 120) -> list[Any]:
    """An hour of the vendor's change generator on facade's test clock (the sandbox cannot
    move it, so the test does, a change's worth at a time)."""
    changes = change_generator(sandbox, per_hour, seed=4)
    for _ in range(per_hour):
        clock.advance(3600 / per_hour)
        await changes.run_until(clock.now())
    log: list[Any] = changes.log
    assert {c.action for c in log} >= {"create", "modify"}
    return log


async def test_after_an_hour_of_changes_a_poll_keeps_every_change_the_vendor_filters_by_time(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    sync = await _sync(runtime, mirror)
    assert (await sync.backfill()).finished
    log = await _an_hour_of_changes(sandbox, clock)
    before = len(vendor_calls(sandbox))

    run = await sync.poll()

    assert run.finished and run.calls == len(vendor_calls(sandbox)) - before
    polled = {x.endpoint for x in sync.listings if x.since}
    assert polled and set(run.calls_by_endpoint) == polled
    assert run.calls == len(polled)  # an hour's changes fit one page per listing
    changed = {(c.endpoint, c.record_id) for c in log if c.action != "delete"}
    checked = 0
    for listing in sync.listings:
        if listing.endpoint not in polled:
            continue
        for record in await _vendor_now(runtime, listing):
            if (listing.endpoint, str(record["id"])) in changed:
                held = mirror.get(CONNECTION, listing.endpoint, str(record["id"]))
                assert held is not None and held.body == record
                checked += 1
    assert checked > 10
    marks = {s.endpoint: s for s in mirror.status(CONNECTION)}
    assert all(marks[e].synced_through == clock.now() for e in polled)


@VENDORS
async def test_poll_and_reconcile_reach_the_vendor_state_again_after_an_hour_of_changes(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    """Deletes announce nothing: only a reconcile finds them. (A vendor without a change-time
    filter is not polled; its reconcile re-reads every listing.)"""
    sync = await _sync(runtime, mirror)
    backfill = await sync.backfill()
    assert backfill.finished
    held = {(x.endpoint, i) for x in sync.listings for i in mirror.ids(CONNECTION, x.endpoint)}
    log = await _an_hour_of_changes(sandbox, clock)
    deleted = {(c.endpoint, c.record_id) for c in log if c.action == "delete" and not c.items}
    poll = await sync.poll()

    run = await sync.reconcile()

    assert run.finished
    assert run.deleted == len(deleted & held)
    status = mirror.status(CONNECTION)
    assert sum(s.calls_spent for s in status) == backfill.calls + poll.calls + run.calls
    assert all(s.synced_through == clock.now() for s in status)
    await _assert_exact(runtime, sync)
    for endpoint, record_id in deleted:
        assert mirror.get(CONNECTION, endpoint, record_id) is None


async def test_a_reconcile_cut_short_by_the_share_deletes_nothing_it_did_not_read_whole(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    sync = await _sync(runtime, mirror)
    assert (await sync.backfill()).finished
    await _an_hour_of_changes(sandbox, clock)
    before = {x.endpoint: mirror.ids(CONNECTION, x.endpoint) for x in sync.listings}
    share = SyncShare(runtime.client.budget, clock, 5 / runtime.client.budget.hourly_limit)
    short = await _sync(runtime, mirror, share)

    cut = await short.reconcile()

    assert cut.paused and cut.calls == 5
    unread = set(before) - set(cut.calls_by_endpoint)
    assert unread
    for endpoint in unread:
        assert mirror.ids(CONNECTION, endpoint) == before[endpoint], endpoint
    for _hour in range(20):  # the round goes on where it stopped, five calls an hour
        clock.advance(3600)
        if (await short.reconcile()).finished:
            break
    else:
        raise AssertionError("the reconcile round never ended")
    await _assert_exact(runtime, sync, bodies=False)

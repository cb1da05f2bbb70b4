"""The mirror's bounded re-reads, through the transport sandwich, of the listings a vendor
cannot filter by change time (CareCloud's, all of them): after the vendor's changes one full
rotation holds exactly the vendor's state; the rotation goes on after a pause or a restart
with the next patient, stalest first, each patient once a cycle; it never spends more than
the sync's share; and a patient's deleted record is gone once that patient is re-read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from facade.clock import FakeClock
from facade.mirror import MirrorStore
from facade.mirror.sync import MirrorSync, SyncListing, SyncShare
from facade.runtime import Runtime
from tests.mirror.vendor_state import (
    CONNECTION,
    after_todays_visits,
    an_hour_of_changes,
    assert_exact,
    mirror_sync,
)
from tests.vendors import VENDORS, change_generator, vendor_calls

#: Long enough that no practice list falls due again while a test watches the rotation.
NOT_TODAY = timedelta(days=1)


@pytest.fixture
def vendor_name(request: pytest.FixtureRequest) -> str:
    """CareCloud (it has no change-time filter: poll re-reads), or each vendor (VENDORS)."""
    return str(getattr(request, "param", "carecloud"))


@pytest.fixture
def clock() -> FakeClock:
    return after_todays_visits()


def _rotated(sync: MirrorSync) -> SyncListing:
    """The listing the vendor has only patient by patient (CareCloud's encounters)."""
    (listing,) = [x for x in sync.listings if x.patient_param]
    return listing


def _relisted(sandbox: Any, start: int, listing: SyncListing) -> list[str]:
    """The patients whose listing the vendor answered from its `start`th call on, in order."""
    calls = vendor_calls(sandbox)[start:]
    return [
        e.query[listing.patient_param]
        for e in calls
        if e.endpoint == listing.endpoint and e.status == 200
    ]


def _stalest_first(mirror: MirrorStore, listing: SyncListing) -> list[str]:
    """The mirrored patients in the order a new cycle re-reads them: by when their records
    were last fetched (none kept: first), then by key."""
    last = mirror.fetched_by_patient(CONNECTION, listing.endpoint)
    patients = mirror.ids(CONNECTION, listing.patient_endpoint)
    never = min(last.values())
    return [p for _, p in sorted((last.get(p, never - timedelta(days=1)), p) for p in patients)]


async def test_after_an_hour_of_changes_one_rotation_holds_exactly_the_vendor_state(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    sync = await mirror_sync(runtime, mirror)
    assert (await sync.backfill()).finished
    listing = _rotated(sync)
    log = await an_hour_of_changes(sandbox, clock)
    # Records deleted, and chart rows taken out of the encounters that nest them.
    assert any(c.action == "delete" for c in log)
    deleted = {(c.endpoint, c.record_id) for c in log if c.action == "delete" and not c.items}
    before = len(vendor_calls(sandbox))

    run = await sync.poll()

    assert run.finished and run.calls == len(vendor_calls(sandbox)) - before
    relisted = _relisted(sandbox, before, listing)
    patients = mirror.ids(CONNECTION, listing.patient_endpoint)
    assert sorted(relisted) == sorted(patients)  # each patient once, registered ones too
    # Practice lists once each, then one call a patient: nothing else.
    practice = [x for x in sync.listings if not x.patient_param]
    assert set(run.calls_by_endpoint) == {x.endpoint for x in sync.listings}
    assert run.calls_by_endpoint[listing.endpoint] == len(patients)
    await assert_exact(runtime, sync)
    for endpoint, record_id in deleted:
        assert mirror.get(CONNECTION, endpoint, record_id) is None
    # The cycle ended: the listing holds every change made before it began.
    mark = mirror.watermark(CONNECTION, listing.endpoint, listing.key)
    assert mark is not None and mark.synced_through == clock.now()
    assert all(
        s.synced_through == clock.now()
        for s in mirror.status(CONNECTION)
        if s.endpoint in {x.endpoint for x in practice}
    )
    # At the same moment the next cycle has begun: a patient with records was just re-read,
    # so only those with none kept (no fetch time tells when they were read) are due.
    again = len(vendor_calls(sandbox))
    run = await sync.poll()
    empty = {p for p in patients if not mirror.for_patient(CONNECTION, listing.endpoint, p)}
    assert sorted(_relisted(sandbox, again, listing)) == sorted(empty)
    assert run.calls == len(empty)


async def test_the_rotation_goes_on_after_a_pause_or_a_restart_with_the_next_patient(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    """Five patients an hour, each hour a new process (only the watermarks carry over): the
    stalest patients first, none of a cycle twice, every one of them once, including the
    newly registered with no record yet (no fetch time says when they were read)."""
    per_hour = 5
    limit = runtime.client.budget.hourly_limit
    changes = change_generator(sandbox, 1, seed=4)
    for _new in range(2):
        assert await changes.register_patient()
    assert (await (await mirror_sync(runtime, mirror)).backfill()).finished
    clock.advance(3600)
    listing = _rotated(await mirror_sync(runtime, mirror))
    order = _stalest_first(mirror, listing)
    assert len(order) > 2 * per_hour
    assert not mirror.for_patient(CONNECTION, listing.endpoint, order[0])
    relisted: list[str] = []
    passes = 0
    while len(relisted) < len(order):
        share = SyncShare(runtime.client.budget, clock, per_hour / limit)
        sync = await mirror_sync(runtime, mirror, share, whole_every=NOT_TODAY)
        before = len(vendor_calls(sandbox))
        run = await sync.poll()
        assert run.calls == len(vendor_calls(sandbox)) - before <= per_hour
        this_pass = _relisted(sandbox, before, listing)
        assert this_pass, "a pass re-read no patient"
        # Each pass picks up where the last one stopped, not at the start of the cycle (and
        # the next cycle's order is this one's: the first re-read are now the stalest).
        assert this_pass == (order * 2)[len(relisted) : len(relisted) + len(this_pass)]
        relisted += this_pass
        passes += 1
        if len(relisted) < len(order):
            assert run.paused and "share" in run.paused
        clock.advance(3600)
    assert passes > 2
    assert relisted[: len(order)] == order  # every patient once, stalest first
    # The next cycle begins with the patients this one re-read first.
    assert relisted[len(order) :] == order[: len(relisted) - len(order)]
    await assert_exact(runtime, sync, bodies=False)


async def test_a_patients_deleted_record_is_gone_once_that_patient_is_re_read(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    assert (await (await mirror_sync(runtime, mirror)).backfill()).finished
    listing = _rotated(await mirror_sync(runtime, mirror))
    order = _stalest_first(mirror, listing)
    # The last patient a cycle reaches that has a record: others are re-read before it.
    patient = next(
        p for p in reversed(order) if mirror.for_patient(CONNECTION, listing.endpoint, p)
    )
    (gone, *_) = mirror.for_patient(CONNECTION, listing.endpoint, patient)
    assert sandbox.dataset.remove(listing.endpoint, gone.vendor_id) is not None
    limit = runtime.client.budget.hourly_limit
    reached = False
    for _hour in range(len(order)):
        clock.advance(3600)
        share = SyncShare(runtime.client.budget, clock, 2 / limit)
        sync = await mirror_sync(runtime, mirror, share, whole_every=NOT_TODAY)
        before = len(vendor_calls(sandbox))
        run = await sync.poll()
        held = mirror.get(CONNECTION, listing.endpoint, gone.vendor_id)
        if patient in _relisted(sandbox, before, listing):
            assert held is None and run.deleted == 1
            reached = True
            break
        assert held is not None, "deleted before its patient was re-read"
        assert run.deleted == 0
    assert reached


@VENDORS
async def test_a_reread_brings_every_listing_it_re_reads_to_the_vendor_state(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    """`reread` on its own, for any vendor (one with a change-time filter polls the rest):
    after an hour of changes the listings no filter serves are the vendor's again, within
    the share, and nothing else is asked."""
    sync = await mirror_sync(runtime, mirror)
    assert (await sync.backfill()).finished
    await an_hour_of_changes(sandbox, clock)
    unfiltered = {x.endpoint for x in sync.listings if not x.since}
    assert unfiltered and not unfiltered & {x.endpoint for x in sync.listings if x.since}
    before = len(vendor_calls(sandbox))

    run = await sync.reread()

    assert run.finished
    assert run.calls == len(vendor_calls(sandbox)) - before <= sync.share.allowed
    assert set(run.calls_by_endpoint) == unfiltered
    await assert_exact(runtime, sync, endpoints=unfiltered)


async def test_the_rotation_leaves_a_reserve_to_hints_and_a_hinted_patient_counts_as_re_read(
    runtime: Runtime, mirror: MirrorStore, sandbox: Any, clock: FakeClock
) -> None:
    """A rotation would spend the whole share, and a change a webhook announced would then
    wait for the window: it leaves a tenth. The hinted patient's re-list is then one the
    cycle does not repeat."""
    assert (await (await mirror_sync(runtime, mirror)).backfill()).finished
    clock.advance(3600)
    limit = runtime.client.budget.hourly_limit
    listing = _rotated(await mirror_sync(runtime, mirror))
    order = _stalest_first(mirror, listing)
    share = SyncShare(runtime.client.budget, clock, 10 / limit)
    sync = await mirror_sync(runtime, mirror, share, whole_every=NOT_TODAY)
    before = len(vendor_calls(sandbox))

    run = await sync.poll()

    assert sync.hint_reserve == 1
    assert run.paused and run.calls == share.allowed - sync.hint_reserve
    relisted = _relisted(sandbox, before, listing)
    patient = order[-1]  # not reached yet
    (record, *_) = mirror.for_patient(CONNECTION, listing.endpoint, patient)
    mirror.add_hints(CONNECTION, [(listing.endpoint, record.vendor_id, patient, "signed")])
    before = len(vendor_calls(sandbox))
    hinted = await sync.refresh_hinted()
    assert hinted.finished and hinted.calls == 1
    assert _relisted(sandbox, before, listing) == [patient]
    while len(relisted) < len(order) - 1:
        clock.advance(3600)
        before = len(vendor_calls(sandbox))
        await sync.poll()
        relisted += _relisted(sandbox, before, listing)
    cycle = relisted[: len(order) - 1]
    assert sorted(cycle) == sorted(set(order) - {patient})

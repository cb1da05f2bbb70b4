"""What the sync suites share: the sync over the test's vendor (into the `mirror` fixture,
tests/mirror/conftest.py), their clock, an hour of the vendor's changes, what the vendor
holds now (read through facade's own client), and the check that the mirror holds exactly
that: the end state every sync test (backfill, poll, reconcile, re-reads) must reach."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from facade.clock import FakeClock
from facade.core.vendor import Record
from facade.mirror import MirrorStore
from facade.mirror.sync import MirrorSync, SyncListing, SyncShare, plan_sync, vendor_key
from facade.runtime import Runtime
from tests.vendors import change_generator

CONNECTION = "practice"


def after_todays_visits() -> FakeClock:
    """A clock two days after the suites' usual start, for a suite whose vendor makes changes.
    CareCloud's generated dataset treats the reference day as its "today": that day's visits
    are stamped through the afternoon and their lab results the next morning, after the usual
    start (8:00 in the practice), and the store (rightly) keeps the later-stamped of two
    versions, so a change made before those stamps would be refused. No vendor stamps a
    change in the future; that generator does. (DrChrono's no longer does.)"""
    return FakeClock(datetime(2026, 6, 3, 12, tzinfo=UTC))


async def mirror_sync(
    runtime: Runtime, mirror: MirrorStore, share: SyncShare | None = None, **options: Any
) -> MirrorSync:
    """The sync of the whole plan into `mirror`; a new one is a new process (only the
    watermarks carry over). `options` go to MirrorSync (whole_every, overlap)."""
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
        **options,
    )


async def an_hour_of_changes(sandbox: Any, clock: FakeClock, per_hour: int = 120) -> list[Any]:
    """An hour of the vendor's change generator on facade's test clock (the sandbox cannot
    move it, so the test does, a change's worth at a time)."""
    changes = change_generator(sandbox, per_hour, seed=4)
    for _ in range(per_hour):
        clock.advance(3600 / per_hour)
        await changes.run_until(clock.now())
    log: list[Any] = changes.log
    assert {c.action for c in log} >= {"create", "modify"}
    return log


async def vendor_now(runtime: Runtime, listing: SyncListing) -> list[Record]:
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


async def assert_exact(
    runtime: Runtime, sync: MirrorSync, *, bodies: bool = True, endpoints: set[str] | None = None
) -> None:
    """Every synced endpoint (or each of `endpoints`) holds exactly the vendor's records, and
    (`bodies`) each as the vendor lists it now. Hours later a body differs in what the vendor
    signs for the hour (a file's download URL), so a test that lets hours pass compares ids."""
    checked = endpoints or {listing.endpoint for listing in sync.listings}
    by_endpoint: dict[str, dict[str, Record]] = {}
    for listing in sync.listings:
        if listing.endpoint not in checked:
            continue
        for position, record in enumerate(await vendor_now(runtime, listing)):
            by_endpoint.setdefault(listing.endpoint, {})[vendor_key(record, position)] = record
    assert by_endpoint
    for endpoint in checked:
        held = {r.vendor_id: r.body for r in sync.store.scan(sync.connection, endpoint)}
        vendor = by_endpoint.get(endpoint, {})
        assert held.keys() == vendor.keys(), endpoint
        if bodies:
            assert held == vendor, endpoint

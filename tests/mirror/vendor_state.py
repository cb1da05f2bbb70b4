"""What the vendor holds now, read through facade's own client, and the check that the
mirror holds exactly that: the end state every sync test (backfill, poll, reconcile, the
bounded re-reads) must reach."""

from __future__ import annotations

from facade.core.vendor import Record
from facade.mirror.sync import MirrorSync, SyncListing, vendor_key
from facade.runtime import Runtime


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


async def assert_exact(runtime: Runtime, sync: MirrorSync, *, bodies: bool = True) -> None:
    """Every synced endpoint holds exactly the vendor's records, and (`bodies`) each as the
    vendor lists it now. Hours later a body differs in what the vendor signs for the hour
    (a file's download URL), so a test that lets hours pass compares ids."""
    by_endpoint: dict[str, dict[str, Record]] = {}
    for listing in sync.listings:
        for position, record in enumerate(await vendor_now(runtime, listing)):
            by_endpoint.setdefault(listing.endpoint, {})[vendor_key(record, position)] = record
    assert by_endpoint
    for endpoint in {listing.endpoint for listing in sync.listings}:
        held = {r.vendor_id: r.body for r in sync.store.scan(sync.connection, endpoint)}
        vendor = by_endpoint.get(endpoint, {})
        assert held.keys() == vendor.keys(), endpoint
        if bodies:
            assert held == vendor, endpoint
